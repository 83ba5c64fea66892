"""water.device_alarm: alarms the meters raise themselves (leak, burst, dry, reverse, tamper).

The codes are :data:`kernels.water_flow.DEVICE_ALARMS`, carried in a reading's ``deviceAlarm``.
One episode per alarm code: it opens on the first reading carrying the code and closes when
the meter stops reporting it (another code, or ``clear_after_readings`` readings without one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import device_alarm
from kernels.water_flow import ALARM_CLEARED, ALARM_RAISED, DEVICE_ALARMS
from streams.detectors.base import Declaration, Detector, Transition, threshold

__all__ = ["DeviceAlarm"]

NAN = np.nan


class DeviceAlarm(Detector):
    declaration = Declaration(
        name="water.device_alarm", domain="water",
        purpose="Pass on the alarms meters raise themselves (leak, burst, dry pipe, reverse flow, tampering) as "
                "alerts with a lifecycle, so they are handled like the network's own findings.",
        legal_basis="Public task of operating the water network and the supply contract (GDPR Art. 6(1)(b), (e)). "
                    "No objection: the meter's own alarms (faults, tampering) are part of metering under the "
                    "supply contract.",
        reads=("id (pseudonymised)", "dateObserved", "deviceAlarm"),
        recipients="metering maintenance and network operations", alert_topic="alerts.v1", severity="warning",
        subject_kind="water_meter", retention="alerts kept 90 days",
        human_oversight="maintenance staff check the meter's alarm history before a visit",
        alarm_name="alarmInProgress",
        owner="Water utility, metering",
        logic="It passes on the alarms the meters raise themselves (leak, burst, dry pipe, water flowing backwards, "
              "tampering) to metering maintenance and network operations, with a start and an end. The alarm ends "
              "after two readings in a row without it (by default). Maintenance staff check the meter's alarm "
              "history before a visit.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        clear_after_readings: float = threshold(
            2.0, "readings", "An alarm ends after two readings in a row without it: one report lost or glitched "
                             "between two alarms does not close and reopen the episode.", minimum=1)

    columns = ("deviceAlarm",)
    reading_facts = ("new",)      # whether a reading is later than the meter's previous one (the tracker's)
    subject_fields = (("da_code", np.int8, 0), ("da_quiet", np.float64, 0.0), ("da_since", np.float64, NAN))

    def update(self, state, readings):
        codes, cleared, raised = device_alarm(
            readings.slots, readings.ts, readings.columns["deviceAlarm"], readings.facts["new"],
            self.thresholds.clear_after_readings, state.subject("da_code"), state.subject("da_quiet"),
            state.subject("da_since"))
        keys, name, result = state.subjects.keys, self.declaration.name, []
        for i in np.flatnonzero(codes):
            subject, time = keys[readings.slots[i]], float(readings.ts[i])
            if codes[i] & ALARM_CLEARED:
                result.append(Transition(name, subject, "cleared", float(cleared[i]), time))
            if codes[i] & ALARM_RAISED:
                alarm = DEVICE_ALARMS[int(readings.columns["deviceAlarm"][i])]
                result.append(Transition(name, subject, "raised", float(raised[i]), time, {"alarmCode": alarm}))
        return result
