"""traffic.stuck: a detector that repeats itself or reports what cannot be."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import update_stuck
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold

__all__ = ["TrafficStuck"]


class TrafficStuck(Detector):
    """Two faults, one episode:

    * *flat*: exactly the same (intensity, occupancy, speed) reported again and again while
      vehicles are counted. Live counts, occupancies and mean speeds practically never repeat
      to the last digit for half an hour; a frozen controller or a stuck buffer does. A run of
      zero counts is what a quiet road at night looks like, so it is not counted as flat (a
      detector dead at zero all day is left to ``traffic.anomaly_score``).
    * *impossible*: a mean speed (> 0 km/h) reported with no vehicle counted, for a while (a
      speed sensor and a counter that disagree: one of them is broken). Occupancy above 1 is
      refused by the schema already.
    """

    declaration = Declaration(
        name="traffic.stuck", domain="traffic",
        purpose="Find traffic detectors whose values are frozen or impossible, so their data are not trusted "
                "(by the incident test, by signal plans) until repaired.",
        legal_basis="Public task of managing road traffic (GDPR does not apply: no personal data).",
        reads=("id", "dateObserved", "intensity", "occupancy", "averageVehicleSpeed"),
        recipients="traffic control room, detector maintenance",
        alert_topic="alerts.v1", severity="warning", subject_kind="traffic_detector",
        retention="alerts kept 90 days", human_oversight="maintenance staff inspect the detector before repair",
        owner="Traffic management centre",
        logic="It looks for traffic sensors whose readings cannot be real traffic: exactly the same figures for 25 "
              "minutes while vehicles pass, or a speed reported with no vehicle counted for 15 minutes (by "
              "default). The control room and maintenance are told, and the sensor's data are not trusted until it "
              "is repaired.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        flat_after_s: float = threshold(
            1500.0, "s", "Six identical 5-minute readings in a row (25 min): live traffic with vehicles counted "
                         "never repeats count, occupancy and speed exactly for that long.", above=0)
        impossible_after_s: float = threshold(
            900.0, "s", "Four readings (15 min) of a speed with no vehicle: one can be a counter glitch at an "
                        "interval boundary, a quarter of an hour cannot.", above=0)

    columns = ("averageVehicleSpeed", "intensity", "occupancy")
    # the detector's previous reading (its time, its occupancy) is kept once, by the tracker
    reading_facts = ("new", "prev_ts", "prev_occupancy")
    # stuck_prev_intensity / stuck_prev_speed stay this detector's own: no other detector reads the previous
    # reading's intensity or speed, so a tracker copy would save nothing.
    subject_fields = (("stuck_prev_intensity", np.float64, np.nan), ("stuck_prev_speed", np.float64, np.nan),
                      ("stuck_flat_since", np.float64, np.nan), ("stuck_impossible_since", np.float64, np.nan),
                      ("stuck_since", np.float64, np.nan), ("stuck_ended", np.float64, np.nan))

    def update(self, state, readings):
        if not len(readings):
            return []
        t = self.thresholds
        c = readings.columns
        codes, starts = update_stuck(
            readings.slots, readings.ts, c["intensity"], c["occupancy"], c["averageVehicleSpeed"],
            readings.facts["new"], readings.facts["prev_ts"], readings.facts["prev_occupancy"],
            t.flat_after_s, t.impossible_after_s, state.subject("stuck_prev_intensity"),
            state.subject("stuck_prev_speed"), state.subject("stuck_flat_since"),
            state.subject("stuck_impossible_since"), state.subject("stuck_since"), state.subject("stuck_ended"))
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)

    def definitional_delay_s(self) -> float:
        return min(self.thresholds.flat_after_s, self.thresholds.impossible_after_s)
