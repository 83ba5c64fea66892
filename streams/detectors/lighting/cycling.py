"""lighting.cycling: a lamp switching on and off while it should be steady."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import update_cycling
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold
from streams.detectors.lighting import _sun

__all__ = ["Cycling"]


class Cycling(Detector):
    declaration = Declaration(
        name="lighting.cycling", domain="lighting",
        purpose="Find street lamps that go on and off repeatedly at night (end-of-life lamp, overheating "
                "driver, loose contact): a failure announcing itself.",
        legal_basis="Public task of operating the public lighting network (GDPR Art. 6(1)(e)); no personal data.",
        reads=("id", "type", "dateObserved", "powerConsumption", "powerState"),
        recipients="public lighting maintenance", alert_topic="alerts.v1", severity="warning",
        subject_kind="streetlight", retention="alerts kept 90 days",
        human_oversight="a maintenance planner schedules the lamp's replacement with the next round",
        alarm_name="cyclingFailure",
        owner="Public lighting maintenance",
        logic="It counts how often each street lamp switches on and off during the night (switching around sunset "
              "and sunrise does not count). Four switches within two hours (by default) means the lamp is about to "
              "fail: maintenance is told and plans its replacement with the next round. The alert ends after a "
              "whole day without switching.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        latitude_deg: float = _sun.latitude()
        longitude_deg: float = _sun.longitude()
        horizon_deg: float = _sun.horizon()
        twilight_margin_s: float = threshold(
            1800.0, "s", "Switching this close to sunrise or sunset is the photocell's job and does not count "
                         "(same tolerance as lighting.day_burner and lighting.lamp_failure).", minimum=0)
        lit_above_w: float = threshold(
            3.0, "W", "Burning: at or above this draw; readings without metered power fall back to powerState.", above=0)
        window_s: float = threshold(
            7200.0, "s", "Transitions are counted within two hours of the first one: a steady lamp makes none "
                         "there at all.", above=0)
        min_transitions: int = threshold(
            4, "transitions", "Two off-on cycles within the window: one off and back on can be a supply dip.", minimum=2)
        steady_for_s: float = threshold(
            86400.0, "s", "Cleared after a whole day without a transition, so a lamp that cycles every night "
                          "stays one episode instead of one per night.", above=0)

    columns = ("kind", "powerConsumption", "powerState")
    reading_facts = ("new",)      # whether a lamp reading is newer than the lamp's last one: kept once by the tracker
    subject_fields = (("cycling_last_lit", np.int8, -1),
                      ("cycling_window_start", np.float64, np.nan), ("cycling_transitions", np.int32, 0),
                      ("cycling_last_transition", np.float64, np.nan), ("cycling_since", np.float64, np.nan))

    def update(self, state, readings):
        if not len(readings):
            return []
        t = self.thresholds
        c = readings.columns
        codes, starts = update_cycling(
            readings.slots, readings.ts, c["kind"], c["powerConsumption"], c["powerState"], readings.facts["new"],
            t.latitude_deg, t.longitude_deg, t.horizon_deg, t.twilight_margin_s, t.lit_above_w,
            t.window_s, t.min_transitions, t.steady_for_s,
            state.subject("cycling_last_lit"),
            state.subject("cycling_window_start"), state.subject("cycling_transitions"),
            state.subject("cycling_last_transition"), state.subject("cycling_since"))
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)
