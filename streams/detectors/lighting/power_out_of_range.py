"""lighting.power_out_of_range: a burning lamp drawing far from its rated power at its dimming level."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import update_power_out_of_range
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold

__all__ = ["PowerOutOfRange"]


class PowerOutOfRange(Detector):
    declaration = Declaration(
        name="lighting.power_out_of_range", domain="lighting",
        purpose="Find burning lamps whose power draw is far from rated power x dimming level (ageing or "
                "failing driver, wrong lamp fitted, dimming not applied): wasted energy or failure to come.",
        legal_basis="Public task of operating the public lighting network (GDPR Art. 6(1)(e)); no personal data.",
        reads=("id", "type", "dateObserved", "powerConsumption", "powerRating", "illuminanceLevel"),
        recipients="public lighting maintenance and energy management", alert_topic="alerts.v1",
        severity="info", subject_kind="streetlight", retention="alerts kept 90 days",
        human_oversight="a maintenance planner compares the lamp's inventory (fitted lamp, driver) with the "
                        "readings before ordering work",
        alarm_name="lampPowerTooHigh | lampPowerTooLow",   # TALQ 2.7.1 LampMonitorFunction events
        owner="Public lighting maintenance",
        logic="For lamps that are on, it compares the power they draw with what they should draw at the brightness "
              "they are set to. A lamp drawing more than a quarter (by default) more or less than that, over two "
              "readings in a row, is reported to maintenance; a planner checks which lamp and driver are fitted "
              "before ordering work.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        lit_above_w: float = threshold(
            3.0, "W", "Only burning lamps are judged (a dark lamp is lighting.lamp_failure's case).", above=0)
        tolerance: float = threshold(
            0.25, "ratio", "Outside the band when |power / (rating x level) - 1| exceeds this: LED drivers draw "
                           "within about 10% of nominal across dimming levels and mains voltage; 25% leaves room.", above=0)
        clear_tolerance: float = threshold(
            0.15, "ratio", "Back in range only within this narrower band (hysteresis), so a lamp near the edge "
                           "cannot raise and clear at every reading.", above=0)
        confirm_s: float = threshold(
            900.0, "s", "Outside over two consecutive 15-min readings: one reading can catch a lamp warming up "
                        "or a dimming step.", above=0)

    columns = ("illuminanceLevel", "kind", "powerConsumption", "powerRating")
    reading_facts = ("new",)      # whether a lamp reading is newer than the lamp's last one: kept once by the tracker
    subject_fields = (("power_range_outside_since", np.float64, np.nan), ("power_range_since", np.float64, np.nan))

    def update(self, state, readings):
        if not len(readings):
            return []
        t = self.thresholds
        c = readings.columns
        codes, starts = update_power_out_of_range(
            readings.slots, readings.ts, c["kind"], c["powerConsumption"], c["powerRating"], c["illuminanceLevel"],
            readings.facts["new"], t.lit_above_w, t.tolerance, t.clear_tolerance, t.confirm_s,
            state.subject("power_range_outside_since"),
            state.subject("power_range_since"))
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)

    def definitional_delay_s(self) -> float:
        return self.thresholds.confirm_s
