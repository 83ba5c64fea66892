"""water.backflow: the meter's cumulative index goes down -- water flows back into the network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import backflow
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold

__all__ = ["Backflow"]

NAN = np.nan


class Backflow(Detector):
    declaration = Declaration(
        name="water.backflow", domain="water",
        purpose="Find water flowing back from a property into the network (a missing or failed check valve, a "
                "pressure drop in the main): a contamination risk for the neighbours.",
        legal_basis="Public task of supplying safe drinking water (GDPR Art. 6(1)(e)) and the legal obligation of "
                    "the drinking-water regulations on backflow prevention (Art. 6(1)(c)). No objection: "
                    "backflow endangers the neighbours' drinking water.",
        reads=("id (pseudonymised)", "dateObserved", "waterConsumption"),
        recipients="water quality team and network operations", alert_topic="alerts.v1", severity="warning",
        subject_kind="water_meter", retention="alerts kept 90 days",
        human_oversight="the water quality team inspects the connection before any measure",
        alarm_name="alarmWaterQuality",
        owner="Water utility, drinking-water quality",
        logic="It watches each household meter's running total, which can only go up while water flows into the "
              "property. If it goes down by two litres or more (by default), water has flowed back from the "
              "property into the public pipes, which can spoil the neighbours' drinking water. The water quality "
              "team inspects the connection before taking any measure. A very large drop (a replaced meter starting "
              "again from zero) is not counted.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        min_drop_m3: float = threshold(
            0.002, "m3", "Two litres: twice the 1 L resolution of household meters, so rounding never looks "
                         "like water going back.", above=0)
        replacement_drop_m3: float = threshold(
            5.0, "m3", "A fall this large in one interval is a replaced meter starting again from zero (a "
                       "household meter cannot run 5 m3 backwards in an hour), not backflow: only the baseline "
                       "moves.", above=0)

    columns = ("waterConsumption",)
    reading_facts = ("new", "prev_ts", "prev_index")      # the meter's previous reading, kept once by the tracker
    subject_fields = (("bf_since", np.float64, NAN),)

    def update(self, state, readings):
        t = self.thresholds
        f = readings.facts
        codes, starts = backflow(readings.slots, readings.ts, readings.columns["waterConsumption"], f["prev_ts"],
                                 f["prev_index"], f["new"], t.min_drop_m3, t.replacement_drop_m3,
                                 state.subject("bf_since"))
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)
