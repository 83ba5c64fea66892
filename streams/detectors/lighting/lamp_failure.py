"""lighting.lamp_failure: a lamp that stays dark although the astronomical schedule says it must burn."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import update_lamp_failure
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold
from streams.detectors.lighting import _sun

__all__ = ["LampFailure"]


class LampFailure(Detector):
    declaration = Declaration(
        name="lighting.lamp_failure", domain="lighting",
        purpose="Find street lamps that stay dark at night (burnt-out lamp, failed driver or fuse) so a crew "
                "can replace them before residents report a dark street.",
        legal_basis="Public task of operating the public lighting network (GDPR Art. 6(1)(e)); no personal data.",
        reads=("id", "type", "dateObserved", "powerConsumption"),
        recipients="public lighting maintenance", alert_topic="alerts.v1", severity="warning",
        subject_kind="streetlight", retention="alerts kept 90 days",
        human_oversight="a maintenance planner checks the lamp's history before sending a crew",
        alarm_name="lampFailure",
        owner="Public lighting maintenance",
        logic="It compares each lamp's power use with the times of sunset and sunrise in the city. A lamp that "
              "draws almost no power in the middle of the night (from half an hour after sunset to half an hour "
              "before sunrise, by default) over two readings in a row is reported to maintenance, who check the "
              "lamp's history and send a crew to repair it.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        latitude_deg: float = _sun.latitude()
        longitude_deg: float = _sun.longitude()
        horizon_deg: float = _sun.horizon()
        night_margin_s: float = threshold(
            1800.0, "s", "A lamp must burn from this long after sunset to this long before sunrise: photocells "
                         "switch within about 10 min of the computed times, and one 15-min reporting interval "
                         "plus slack is added so a late-switching lamp is never taken for a dead one.", minimum=0)
        dark_below_w: float = threshold(
            3.0, "W", "Dark: below the smallest burning lamp (a 30 W LED dimmed to 50% draws 15 W) and above a "
                      "driver's standby draw (under 1 W).", above=0)
        confirm_s: float = threshold(
            900.0, "s", "Dark at night over two consecutive 15-min readings: one dark reading can be a driver "
                        "restarting.", above=0)
        max_gap_s: float = threshold(
            1350.0, "s", "Dark readings are consecutive only when at most 1.5 reporting intervals (15 min) apart: "
                         "after a longer gap a report was missed, which may have been lit (a cycling lamp's "
                         "on-reading), so the dark run starts again at the reading after the gap.", above=0)

    columns = ("kind", "powerConsumption")
    reading_facts = ("new", "prev_ts")      # the lamp's previous lamp reading, kept once by the tracker
    subject_fields = (("lamp_failure_dark_since", np.float64, np.nan), ("lamp_failure_since", np.float64, np.nan))

    def update(self, state, readings):
        if not len(readings):
            return []
        t = self.thresholds
        codes, starts = update_lamp_failure(
            readings.slots, readings.ts, readings.columns["kind"], readings.columns["powerConsumption"],
            readings.facts["new"], readings.facts["prev_ts"], t.latitude_deg, t.longitude_deg, t.horizon_deg,
            t.night_margin_s, t.dark_below_w, t.confirm_s, t.max_gap_s, state.subject("lamp_failure_dark_since"),
            state.subject("lamp_failure_since"))
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)

    def definitional_delay_s(self) -> float:
        return self.thresholds.confirm_s
