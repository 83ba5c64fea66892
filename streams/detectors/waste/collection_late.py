"""waste.collection_late: a bin full for a day and still not emptied (a sweep)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import sweep_collection_late, update_collection_late
from streams.detectors._transitions import tick_transitions
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold

__all__ = ["CollectionLate"]


class CollectionLate(Detector):
    declaration = Declaration(
        name="waste.collection_late", domain="waste",
        purpose="Show waste operations the bins that have been full for a day without being emptied "
                "(a missed or late collection round).",
        legal_basis="Public task of municipal waste collection and contract monitoring (GDPR Art. 6(1)(e)); "
                    "no personal data is read.",
        reads=("id", "dateObserved", "fillingLevel"), recipients="waste collection planning and contract management",
        alert_topic="alerts.v1", severity="warning", subject_kind="waste_container",
        retention="alerts kept 90 days on the alert topic; contract monitoring records are kept by waste "
                  "collection services, outside this system",
        human_oversight="a planner checks the round's log before any contractual penalty",
        owner="Waste collection services",
        logic="It notes when a bin became full (three quarters of its height, by default). If it is still full a "
              "day later without having been emptied, collection planning is told that a round was probably missed. "
              "A planner checks the round's log before any penalty for the contractor.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        full_level: float = threshold(
            0.75, "fraction of bin height", "The level at which a bin is due for collection; normal bins are "
                                            "collected below 60%, so only a missed round leaves one here.", minimum=0, maximum=1)
        late_after_s: float = threshold(
            86400.0, "s", "One day (N = 1 day): daily rounds come back within a day, so a bin full for longer "
                          "was skipped.", above=0)

    columns = ("fillingLevel",)
    reading_facts = ("new", "prev_fill")      # the bin's previous reading (its fill level), kept once by the tracker
    subject_fields = (("late_full_since", np.float64, np.nan), ("late_since", np.float64, np.nan))

    def update(self, state, readings):
        if not len(readings):
            return []
        codes, starts = update_collection_late(
            readings.slots, readings.ts, readings.columns["fillingLevel"], readings.facts["new"],
            readings.facts["prev_fill"], self.thresholds.full_level, state.subject("late_full_since"),
            state.subject("late_since"))
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)

    multi_tick = True

    def sweep_ticks(self, state, ticks):
        since = state.subject("late_since")
        return tick_transitions(self.declaration.name, state.subjects.keys, since, ticks,
                                lambda raised_at: sweep_collection_late(ticks, self.thresholds.late_after_s,
                                                                        state.subject("late_full_since"), since,
                                                                        raised_at=raised_at))

    def definitional_delay_s(self) -> float:
        return self.thresholds.late_after_s
