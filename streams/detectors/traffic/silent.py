"""traffic.silent: a traffic detector that stops reporting.

Silent after ``max(silent_after_s, missed_reports x the detector's learnt reporting cadence)``
(:mod:`streams.detectors._cadence`): a 5-minute loop after 20 min, a radar reporting every 15 min
after an hour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streams.detectors._cadence import SILENCE_READS, gap_margin_threshold, subject_silence
from streams.detectors.base import Declaration, Detector, threshold

__all__ = ["TrafficSilent"]


class TrafficSilent(Detector):
    declaration = Declaration(
        name="traffic.silent", domain="traffic",
        purpose="Find traffic detectors (loops, radars) that stopped reporting, so they can be repaired and "
                "their road is not believed empty.",
        legal_basis="Public task of managing road traffic (GDPR does not apply: no personal data).",
        reads=("id", "dateObserved"), recipients="traffic control room, detector maintenance",
        alert_topic="alerts.v1", severity="warning", subject_kind="traffic_detector",
        retention="alerts kept 90 days", human_oversight="an operator checks the controller before a field visit",
        owner="Traffic management centre",
        logic="It notes when each traffic sensor last reported. One that has said nothing for 20 minutes (by "
              "default; longer if it usually reports less often or has had such gaps before, never more than 6 "
              "hours) is reported, so it is repaired and its road is not taken for empty. An operator checks the "
              "sensor's controller before a field visit.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        silent_after_s: float = threshold(
            1200.0, "s", "The floor: four missed 5-minute intervals (one to three can be radio loss or a controller "
                         "restart); a detector whose cadence is not learnt yet is judged by it alone.", above=0.0)
        missed_reports: float = threshold(
            4.0, "reports", "Silent after this many of the detector's own learnt reporting intervals when longer "
                            "than the floor (a radar reporting every 15 min after an hour); four, as for the floor.", minimum=0.0)
        gap_margin: float = gap_margin_threshold()
        gap_ceiling_s: float = threshold(
            21600.0, "s", "A detector is silent after 6 h whatever its dropouts: traffic control "
                          "needs a dead loop known within a shift.", above=0.0)

    state_reads = SILENCE_READS
    subject_fields = (("silent_since", np.float64, np.nan),)

    multi_tick = True

    def sweep_ticks(self, state, ticks):
        return subject_silence(self, state, ticks)

    def definitional_delay_s(self) -> float:
        return self.thresholds.silent_after_s
