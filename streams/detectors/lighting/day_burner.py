"""lighting.day_burner: a lamp burning in daylight, past the photocells' tolerance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import update_day_burner
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold
from streams.detectors.lighting import _sun

__all__ = ["DayBurner"]


class DayBurner(Detector):
    declaration = Declaration(
        name="lighting.day_burner", domain="lighting",
        purpose="Find street lamps that burn in daylight (stuck relay, failed photocell, wrong schedule): "
                "wasted energy and a sign of a control fault.",
        legal_basis="Public task of operating the public lighting network (GDPR Art. 6(1)(e)); no personal data.",
        reads=("id", "type", "dateObserved", "powerConsumption", "powerState"),
        recipients="public lighting maintenance and energy management", alert_topic="alerts.v1",
        severity="info", subject_kind="streetlight", retention="alerts kept 90 days",
        human_oversight="a maintenance planner checks the lamp's control (photocell, relay, schedule) remotely "
                        "before any field visit",
        alarm_name="lampUnexpectedOn",
        owner="Public lighting maintenance",
        logic="It compares each lamp's power use with the times of sunrise and sunset in the city. A lamp still "
              "burning in daylight, more than half an hour (by default) after sunrise or before sunset, over two "
              "readings in a row, is reported to maintenance; a planner checks its light sensor, relay or schedule "
              "remotely before anyone goes out.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        latitude_deg: float = _sun.latitude()
        longitude_deg: float = _sun.longitude()
        horizon_deg: float = _sun.horizon()
        day_margin_s: float = threshold(
            1800.0, "s", "Photocell tolerance: a lamp may still burn this long after sunrise and already burn "
                         "this long before sunset (photocells switch within about 10 min of the computed times; "
                         "a 15-min reporting interval and slack are added; overcast evenings switch early).", minimum=0)
        lit_above_w: float = threshold(
            3.0, "W", "Burning: at or above this draw (above a driver's standby, below the smallest dimmed lamp); "
                      "readings without metered power fall back to powerState.", above=0)
        confirm_s: float = threshold(
            900.0, "s", "Lit by day over two consecutive 15-min readings: a single lit reading can be a "
                        "maintenance test.", above=0)

    columns = ("kind", "powerConsumption", "powerState")
    reading_facts = ("new",)      # whether a lamp reading is newer than the lamp's last one: kept once by the tracker
    subject_fields = (("day_burner_lit_since", np.float64, np.nan), ("day_burner_since", np.float64, np.nan))

    def update(self, state, readings):
        if not len(readings):
            return []
        t = self.thresholds
        codes, starts = update_day_burner(
            readings.slots, readings.ts, readings.columns["kind"], readings.columns["powerConsumption"],
            readings.columns["powerState"], readings.facts["new"], t.latitude_deg, t.longitude_deg, t.horizon_deg,
            t.day_margin_s, t.lit_above_w, t.confirm_s, state.subject("day_burner_lit_since"),
            state.subject("day_burner_since"))
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)

    def definitional_delay_s(self) -> float:
        return self.thresholds.confirm_s
