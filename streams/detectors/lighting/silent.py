"""lighting.silent: a lamp controller or a control cabinet that stops reporting.

Subjects are every id that reports on the lighting topic: lamps (``Streetlight``, every 15 min)
and control cabinets (``StreetlightControlCabinet``, hourly). Each is silent after
``max(silent_after_s, missed_reports x its own learnt reporting cadence)``
(:mod:`streams.detectors._cadence`): a lamp after two hours, a cabinet after four, whatever the
mix under one topic. A lamp that says nothing is one no other lighting detector can judge
(dark at night, burning by day), so its silence is a fault of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streams.detectors._cadence import SILENCE_READS, gap_margin_threshold, subject_silence
from streams.detectors.base import Declaration, Detector, threshold

__all__ = ["LightingSilent"]


class LightingSilent(Detector):
    declaration = Declaration(
        name="lighting.silent", domain="lighting",
        purpose="Find lamp controllers and control cabinets that stopped reporting (failed radio or node, "
                "lost supply, a cabinet meter down), so they are repaired: while a lamp says nothing, a dark "
                "street or a lamp burning by day goes unseen by every other lighting detector.",
        legal_basis="Public task of operating the public lighting network (GDPR Art. 6(1)(e)); no personal data.",
        reads=("id", "type", "dateObserved"), recipients="public lighting maintenance",
        alert_topic="alerts.v1", severity="warning", subject_kind="streetlight",
        retention="alerts kept 90 days",
        human_oversight="a maintenance planner checks the cabinet and its neighbours' reports before sending a "
                        "crew (a whole cabinet silent is one visit, not one per lamp)",
        owner="Public lighting maintenance",
        logic="It notes when each lamp and each lighting control cabinet last reported. One that has said nothing "
              "for two hours (by default; longer if it usually reports less often or has had such gaps before, "
              "never more than a day) is reported to maintenance, because a lamp that says nothing cannot be "
              "checked at all. A planner checks the cabinet and the neighbouring lamps before sending a crew.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        silent_after_s: float = threshold(
            7200.0, "s", "The floor, for lamps (15 min) and cabinets (hourly) alike: eight missed lamp reports, "
                         "or a second missed cabinet report (one missed report is radio loss). A lamp or cabinet "
                         "whose cadence is not learnt yet (fewer than 4 intervals) is judged by it alone.", above=0.0)
        missed_reports: float = threshold(
            4.0, "reports", "Silent after this many of the subject's own learnt reporting intervals when longer "
                            "than the floor: an hourly cabinet after 4 h (with the floor, a lamp after 8 of its "
                            "15-minute reports).", minimum=0.0)
        gap_margin: float = gap_margin_threshold()
        gap_ceiling_s: float = threshold(
            86400.0, "s", "A lamp or cabinet is silent after a day whatever its dropouts: one "
                          "night's patrol sees it.", above=0.0)

    state_reads = SILENCE_READS
    subject_fields = (("silent_since", np.float64, np.nan),)

    multi_tick = True

    def sweep_ticks(self, state, ticks):
        return subject_silence(self, state, ticks)

    def definitional_delay_s(self) -> float:
        return self.thresholds.silent_after_s   # at least: a cabinet (hourly) waits longer
