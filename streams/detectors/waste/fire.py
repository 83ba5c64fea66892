"""waste.fire: a bin whose temperature is that of a fire (absolute level or sudden rise)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import update_fire
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold

__all__ = ["Fire"]


class Fire(Detector):
    declaration = Declaration(
        name="waste.fire", domain="waste",
        purpose="Warn the fire service and waste operations of a bin fire (a hot or suddenly heating bin, "
                "or one whose sensor reports status burning).",
        legal_basis="Public task of fire prevention and municipal waste collection (GDPR Art. 6(1)(e)); "
                    "no personal data is read.",
        reads=("id", "dateObserved", "temperature", "status"), recipients="control room and fire service liaison",
        alert_topic="alerts.v1", severity="critical", subject_kind="waste_container",
        retention="alerts kept 90 days on the alert topic; incident records are kept by the control room, "
                  "outside this system",
        human_oversight="the control-room operator checks (camera, patrol) before calling out the fire service",
        owner="Waste collection services",
        logic="It reads the temperature reported by each bin's sensor. A bin at 60 degrees Celsius or more, one "
              "that warms by 15 degrees or more between two readings (by default), or a sensor reporting that the "
              "bin is burning, raises an alert in the control room, which checks by camera or patrol before calling "
              "the fire service. The alert ends when the bin is back below 30 degrees.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        fire_c: float = threshold(
            60.0, "degC", "Sun on a dark lid warms a bin to 45-50 degC at most; 60 degC inside is combustion.", above=0)
        jump_c: float = threshold(
            15.0, "degC", "Ambient temperature moves at most ~3 degC per hour; a 15 degC rise between two "
                          "readings is a fire starting, even before it reaches fire_c.", above=0)
        jump_within_s: float = threshold(
            10800.0, "s", "A rise counts as sudden only against a previous reading at most 3 h old "
                          "(hourly and two-hourly sensors; one lost reading allowed).", above=0)
        clear_c: float = threshold(
            30.0, "degC", "Hysteresis: the fire is over when the bin is back to ambient, well below the "
                          "raising levels, so a cooling bin does not flap.", minimum=-273.15)

    columns = ("status", "temperature")
    reading_facts = ("new",)      # whether a reading is newer than the bin's last one: kept once by the tracker
    # fire_last_temp / fire_last_temp_ts stay the detector's own: the newest reading *with a temperature*
    # (an optional field), not the bin's previous reading -- a different fact, and only fire reads it.
    subject_fields = (("fire_last_temp", np.float64, np.nan), ("fire_last_temp_ts", np.float64, np.nan),
                      ("fire_since", np.float64, np.nan))

    def update(self, state, readings):
        if not len(readings):
            return []
        t = self.thresholds
        codes, starts = update_fire(readings.slots, readings.ts, readings.columns["temperature"],
                                    readings.columns["status"], readings.facts["new"], t.fire_c, t.jump_c,
                                    t.jump_within_s, t.clear_c, state.subject("fire_last_temp"),
                                    state.subject("fire_last_temp_ts"), state.subject("fire_since"))
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)
