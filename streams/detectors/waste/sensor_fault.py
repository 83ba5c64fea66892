"""waste.sensor_fault: a level sensor stuck on one value (a dead ultrasonic echo)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import update_stuck_level
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold

__all__ = ["SensorFault"]


class SensorFault(Detector):
    declaration = Declaration(
        name="waste.sensor_fault", domain="waste",
        purpose="Find fill-level sensors stuck on one value (a live ultrasonic echo always jitters by a few "
                "millimetres), so they are repaired and their bins are not planned on frozen data.",
        legal_basis="Public task of operating the city's sensor network (GDPR Art. 6(1)(e)); "
                    "no personal data is read.",
        reads=("id", "dateObserved", "fillingLevel"), recipients="sensor maintenance",
        alert_topic="alerts.v1", severity="info", subject_kind="waste_container",
        retention="alerts kept 90 days", human_oversight="maintenance staff decide on a repair visit",
        owner="Waste collection services",
        logic="A working fill-level sensor's readings always vary by a few millimetres. When one reports exactly "
              "the same level six times in a row (by default), maintenance is told the sensor is probably stuck, so "
              "the bin is not planned on frozen figures.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        stuck_readings: int = threshold(
            6, "readings", "Six identical readings in a row: two live readings repeat to the millimetre ~3% of "
                           "the time, six in a row about once in 10^7 - never by accident in a city of bins.", minimum=2)

    columns = ("fillingLevel",)
    reading_facts = ("new", "prev_fill")      # the bin's previous reading (its fill level), kept once by the tracker
    subject_fields = (("stuck_run", np.int32, 0), ("stuck_run_start", np.float64, np.nan),
                      ("stuck_since", np.float64, np.nan))

    def update(self, state, readings):
        if not len(readings):
            return []
        codes, starts = update_stuck_level(
            readings.slots, readings.ts, readings.columns["fillingLevel"], readings.facts["new"],
            readings.facts["prev_fill"], self.thresholds.stuck_readings, state.subject("stuck_run"),
            state.subject("stuck_run_start"), state.subject("stuck_since"))
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)

    def definitional_delay_s(self) -> float:
        return (self.thresholds.stuck_readings - 1) * 3600.0   # hourly sensors: the run must last this long
