"""waste.overflow: a bin at or above its overflow level, until it is emptied."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import update_overflow
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold

__all__ = ["Overflow"]


class Overflow(Detector):
    declaration = Declaration(
        name="waste.overflow", domain="waste",
        purpose="Send a crew to a bin that is (nearly) overflowing, before litter spreads around it.",
        legal_basis="Public task of municipal waste collection and street cleanliness (GDPR Art. 6(1)(e)); "
                    "no personal data is read.",
        reads=("id", "dateObserved", "fillingLevel"), recipients="waste collection dispatch",
        alert_topic="alerts.v1", severity="warning", subject_kind="waste_container",
        retention="alerts kept 90 days", human_oversight="a dispatcher decides whether to send an extra pickup",
        owner="Waste collection services",
        logic="It reads the fill level reported by each bin's sensor. When a bin is 90% full (by default), dispatch "
              "is told and decides whether to send an extra pickup. The alert ends when the bin has been emptied "
              "(below 70%).",
    )

    @dataclass(frozen=True)
    class Thresholds:
        raise_at: float = threshold(
            0.9, "fraction of bin height", "Above 90% the next bag no longer fits; ultrasonic noise (+-2.5%) "
                                           "cannot carry a bin that is normally collected below 60% up here.", minimum=0, maximum=1)
        clear_below: float = threshold(
            0.7, "fraction of bin height", "Hysteresis: the episode ends only when the level is clearly down "
                                           "(an emptying), not when noise dips below 90%.", minimum=0, maximum=1)

    columns = ("fillingLevel",)
    reading_facts = ("new",)      # whether a reading is newer than the bin's last one: kept once by the tracker
    subject_fields = (("overflow_since", np.float64, np.nan),)

    def update(self, state, readings):
        if not len(readings):
            return []
        t = self.thresholds
        codes, starts = update_overflow(readings.slots, readings.ts, readings.columns["fillingLevel"],
                                        readings.facts["new"], t.raise_at, t.clear_below,
                                        state.subject("overflow_since"))
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)
