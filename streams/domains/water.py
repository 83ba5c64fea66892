"""The water domain: household meters reporting a cumulative index (m3).

Besides the index a reading may carry the peak flow of its interval
(``maxFlowLastHour``, m3/h), the meter's nominal flow Q3 (``nominalFlow``, m3/h),
its ``district`` (a group: night flow is judged per district) and the meter's own
alarm (``deviceAlarm``, codes in :data:`kernels.water_flow.DEVICE_ALARMS`).
"""

from __future__ import annotations

import numpy as np

import kernels
from streams.domains.base import Column, Domain
from streams.detectors._cadence import CadenceTracker
from streams.detectors.feed.gateway_outage import GatewayOutage
from streams.detectors.water.meter_silent import MeterSilent
from streams.detectors.water.no_use_24h import NoUse24h
from streams.detectors.water.continuous_flow import ContinuousFlow
from streams.detectors.water.burst import Burst
from streams.detectors.water.backflow import Backflow
from streams.detectors.water.night_flow import NightFlow
from streams.detectors.water.device_alarm import DeviceAlarm
from streams.detectors.water.routine_change import RoutineChange
from kernels.water_flow import DEVICE_ALARM_CODES

__all__ = ["WATER", "WaterTracker"]

NAN = np.nan


class WaterTracker:
    """Shared meter state the absence detectors read: last reading, last index, last use, gateway,
    and the meters' and gateways' reporting cadence (learnt before a batch is folded in)."""

    subject_fields = (("last_seen", np.float64, NAN), ("last_index", np.float64, NAN),
                      ("last_use", np.float64, NAN), ("gateway", np.int32, -1))
    group_fields = {"gateway": (("last_seen", np.float64, NAN),)}
    cadence = CadenceTracker(groups=("gateway",))

    def prepare(self, state) -> None:
        state.subjects.ensure_all(self.subject_fields)
        state.group("gateway").ensure_all(self.group_fields["gateway"])
        self.cadence.prepare(state)

    def update(self, state, readings) -> np.ndarray:
        self.cadence.update(state, readings)
        return kernels.apply_meter_readings(
            readings.slots, readings.ts, readings.columns["waterConsumption"], readings.groups["gateway"],
            state.subject("last_seen"), state.subject("last_index"), state.subject("last_use"),
            state.subject("gateway"), state.group_column("gateway", "last_seen"))


def _simulate(**scenario):
    from streams.simulate import WaterScenario, simulate_water

    return simulate_water(WaterScenario(**scenario))


WATER = Domain(
    name="water", schema="water-reading", reading_type="WaterConsumptionObserved", subject_kind="water_meter",
    columns=(Column("waterConsumption"), Column("maxFlowLastHour"), Column("nominalFlow"),
             Column("deviceAlarm", codes=DEVICE_ALARM_CODES)),
    groups=(("district", "district"),),
    subject_pseudonym="wm",
    tracker=WaterTracker(),
    # gateways first: their outages hold back meter alerts; routine_change ships dormant (runs once activated)
    detectors=(GatewayOutage, MeterSilent, NoUse24h, ContinuousFlow, Burst, Backflow, NightFlow, DeviceAlarm,
               RoutineChange),
    incident_detectors={"no_use": "water.no_use_24h", "meter_silent": "water.meter_silent",
                        "gateway_outage": "feed.gateway_outage", "continuous_flow": "water.continuous_flow",
                        "burst": "water.burst", "backflow": "water.backflow", "night_flow": "water.night_flow",
                        "device_alarm": "water.device_alarm", "routine_change": "water.routine_change"},
    simulate=_simulate,
)
