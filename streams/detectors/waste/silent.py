"""waste.silent: a bin's fill-level sensor that stops reporting.

Silent after ``max(silent_after_s, missed_reports x the bin's own learnt reporting cadence)``
(:mod:`streams.detectors._cadence`): an hourly bin after 5 h (the floor), a two-hourly one after
6 h. A bin that says nothing can overflow unseen and is planned on stale data.

Episodes open in the sweep and close on the reading path, at the time of the bin's next reading
(:func:`kernels.close_absence`): a district gateway's hourly envelope carries readings taken over
most of the hour, later than the allowed lateness, so a sweep would see some of them only at a
later tick and the clear time would depend on how messages were batched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import close_absence
from streams.detectors._cadence import SILENCE_READS, gap_margin_threshold, subject_silence
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold

__all__ = ["WasteSilent"]


class WasteSilent(Detector):
    declaration = Declaration(
        name="waste.silent", domain="waste",
        purpose="Find bin sensors that stopped reporting (flat battery, lost radio link, a sensor torn off or "
                "a bin moved), so they are repaired and the bin's collection is not planned on stale levels.",
        legal_basis="Public task of municipal waste collection and of operating the city's sensor network "
                    "(GDPR Art. 6(1)(e)); no personal data is read.",
        reads=("id", "dateObserved"), recipients="sensor maintenance, waste collection planning",
        alert_topic="alerts.v1", severity="info", subject_kind="waste_container",
        retention="alerts kept 90 days",
        human_oversight="maintenance staff decide on a repair visit; planners treat the bin as unmonitored "
                        "(collected on schedule) meanwhile",
        owner="Waste collection services",
        logic="It notes when each bin's sensor last reported. One that has said nothing for five hours (by default; "
              "longer if it usually reports less often or has had such gaps before, never more than two days) is "
              "reported to maintenance. Meanwhile the bin is collected on its normal schedule.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        silent_after_s: float = threshold(
            18000.0, "s", "The floor, for hourly and two-hourly bins alike: four missed hourly reports, or one "
                          "missed two-hourly report with an hour's slack (radio loss under a metal lid is common; "
                          "bins are not urgent). A bin whose cadence is not learnt yet (fewer than 4 intervals) "
                          "is judged by it alone.", above=0.0)
        missed_reports: float = threshold(
            3.0, "reports", "Silent after this many of the bin's own learnt reporting intervals when longer than "
                            "the floor: a two-hourly bin after 6 h, a bin reporting every 4 h after 12 h.", minimum=0.0)
        gap_margin: float = gap_margin_threshold()
        gap_ceiling_s: float = threshold(
            172800.0, "s", "A bin is silent after two days whatever its dropouts: bins are not "
                           "urgent, collection rounds are.", above=0.0)

    state_reads = SILENCE_READS
    subject_fields = (("silent_since", np.float64, np.nan),)

    def update(self, state, readings):
        if not len(readings):
            return []
        codes, starts = close_absence(readings.slots, readings.ts, state.subject("silent_since"))
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)

    multi_tick = True

    def sweep_ticks(self, state, ticks):
        return subject_silence(self, state, ticks)

    def definitional_delay_s(self) -> float:
        return self.thresholds.silent_after_s   # at least: a two-hourly bin waits longer
