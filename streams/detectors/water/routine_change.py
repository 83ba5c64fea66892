"""water.routine_change: a household's daily rhythm of water use changes (ships dormant).

Per household (a pseudonymised meter), the routine is the share of a day's water use in each
four-hour bin of the UTC day (00-04, 04-08, ... 20-24 h; the city clock is UTC, so these are not
local hours and a "day" ends at midnight UTC). The usual routine is learnt over weeks (a half-life
of 14 days), the recent one over the last few days; a day whose recent routine is far from the
usual one -- further than the household's own days usually are, and by a Hellinger distance of at
least ``min_distance`` -- is unusual, and three unusual days in a row open an episode for the
welfare team. The first day that is not unusual closes it. The days of an episode do not teach the
usual routine, but two weeks of unusual days in a row are a new routine: it becomes the usual one,
and the episode closes. Days with less than 20 L of use or less than 20 h of
readings are skipped (no rhythm to compare). The rule is :mod:`kernels.routine`.

It is more intrusive than the 24-hour welfare rule (``water.no_use_24h``): it learns when a
household is up, away and asleep. So it ships ``dormant`` and runs only while an audited
activation (``glasscity detectors activate``) switches it on; it is declared for enrolled households
only (``requires_enrolment``), and its alerts say nothing beyond "the routine changed" (no hours, no
volumes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import routine_change
from kernels.config import ROUTINE_BINS
from kernels.routine import BIN_FIELDS, SLOT_FIELDS, field_fill
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold

__all__ = ["RoutineChange"]

PREFIX = "routine_"


def _bin_names(kind: str) -> tuple[str, ...]:
    return tuple(f"{PREFIX}{kind}{b}" for b in range(ROUTINE_BINS))


class RoutineChange(Detector):
    declaration = Declaration(
        name="water.routine_change", domain="water",
        purpose="Welfare: tell the welfare team when an enrolled resident's daily rhythm of water use changes "
                "for several days (getting up, washing or cooking at very different hours), which can be an "
                "early sign of illness, confusion or a change at home that a visit or a call should follow up.",
        legal_basis="Explicit consent of the enrolled resident (GDPR Art. 6(1)(a) and 9(2)(a)); it may be "
                    "withdrawn at any time.",
        reads=("id (pseudonymised)", "dateObserved", "waterConsumption"),
        recipients="welfare team only (restricted topic)",
        alert_topic="alerts.welfare.v1", severity="warning", subject_kind="water_meter",
        retention="alerts kept 30 days, then deleted; the learnt routine is deleted with the enrolment",
        human_oversight="a welfare officer re-identifies the household, looks at the context (holidays, visitors, "
                        "a new job) and decides whether to call; the alert alone never triggers a visit",
        status="dormant",
        owner="Social care department (welfare team)",
        logic="Learns at what hours of the day the household usually uses water; if on three days in a row the "
              "pattern of the last days differs strongly from the usual one (more than the household's days "
              "usually differ), the welfare team is told that the routine changed. Days with very little use or "
              "with missing readings are not judged.",
        requires_enrolment=True, absence_holds=True, objection_allowed=True, retention_s=30 * 86400.0,
    )

    @dataclass(frozen=True)
    class Thresholds:
        half_life_days: float = threshold(
            14.0, "days", "The usual routine is an average over days that halves a day's weight every two weeks: "
                          "long enough to span two weekly cycles, short enough to follow a routine that drifts with "
                          "the seasons.", above=0.0)
        warmup_days: float = threshold(
            14.0, "days", "No day is judged before the usual routine holds two weeks of usable days (two of each "
                          "weekday).", minimum=1.0)
        spread_after_days: float = threshold(
            7.0, "days", "From the eighth usable day on, each day also teaches how far the household's recent "
                         "routine usually is from its usual one (its spread); must not exceed warmup_days.",
            minimum=0.0)
        recent_weight: float = threshold(
            0.5, "weight per day", "The recent routine gives the newest day half its weight: one odd day (a visit, "
                                   "a late night) moves it half-way, three days of a new rhythm almost fully "
                                   "(7/8); at most 1.", above=0.0)
        spread_days: float = threshold(
            30.0, "days", "The spread (mean and standard deviation of the distance) averages about a month of "
                          "days that were not unusual.", minimum=1.0)
        unusual_spread: float = threshold(
            3.0, "standard deviations", "A day is unusual when its distance exceeds the household's mean by three "
                                        "of its own standard deviations: a loose routine is judged by its own "
                                        "looseness, a regular one by its regularity. On the real DAIAD households "
                                        "2.5 raises four times as often (1.7 instead of 0.4 per 1,000 household-days) "
                                        "and finds about half again as many of the shifts we injected there.",
            minimum=0.0)
        min_distance: float = threshold(
            0.2, "Hellinger distance (0-1)", "... and is at least 0.2 (a twelfth of the use moved to hours it never "
                                             "falls at): a very regular household's tiny spread does not make small "
                                             "shifts unusual.", minimum=0.0)
        consecutive_days: float = threshold(
            3.0, "days", "Three unusual days in a row open an episode: longer than a weekend or a single "
                         "late night.", minimum=1.0)
        adapt_days: float = threshold(
            14.0, "days", "The days of an episode do not teach the usual routine (so the return from a week of "
                          "another rhythm is not a change), but 14 unusual days in a row are a new routine: it "
                          "becomes the usual one and the episode closes. At least consecutive_days.", minimum=1.0)
        min_daily_use_m3: float = threshold(
            0.02, "m3", "A day with less than 20 L of use (away, or nearly so) has no rhythm to compare: skipped "
                        "(a day without any use is water.no_use_24h's).", above=0.0)
        min_coverage_s: float = threshold(
            72000.0, "s", "A day is judged only when 20 h of it are covered by readings at most max_interval_s "
                          "apart (an hourly meter may miss two reports): after a silence the hours of the use "
                          "are not known.", minimum=0.0)
        max_interval_s: float = threshold(
            5400.0, "s", "An interval between two readings longer than this (a missed hourly report) does not "
                         "tell at what hours its water was used: it is not filed.", above=0.0)

    columns = ("waterConsumption",)
    subject_fields = (*((f"{PREFIX}{name}", np.float64, field_fill(name)) for name in SLOT_FIELDS),
                      *((name, np.float64, 0.0) for kind in BIN_FIELDS for name in _bin_names(kind)))

    def _state(self, state) -> tuple:
        return (tuple(state.subject(f"{PREFIX}{name}") for name in SLOT_FIELDS),
                *(tuple(state.subject(name) for name in _bin_names(kind)) for kind in BIN_FIELDS))

    def update(self, state, readings):
        t = self.thresholds
        codes, starts, _distances = routine_change(
            readings.slots, readings.ts, readings.columns["waterConsumption"], t.half_life_days, t.warmup_days,
            t.spread_after_days, t.recent_weight, t.spread_days, t.unusual_spread, t.min_distance,
            t.consecutive_days, t.adapt_days, t.min_daily_use_m3, t.min_coverage_s, t.max_interval_s, *self._state(state))
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)

    def definitional_delay_s(self) -> float:
        return self.thresholds.consecutive_days * 86400.0   # the days of the run must have ended
