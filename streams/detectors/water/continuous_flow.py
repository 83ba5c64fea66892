"""water.continuous_flow: a leak behind the meter -- water flows without a still hour for 24 h."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import continuous_flow
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold

__all__ = ["ContinuousFlow"]

NAN = np.nan


class ContinuousFlow(Detector):
    declaration = Declaration(
        name="water.continuous_flow", domain="water",
        purpose="Find leaks behind a meter (a running toilet, a burst garden pipe): water flows without a single "
                "still hour for 24 hours, the rule of smart meters' own LEAK alarm, so the customer can be told "
                "before the bill arrives.",
        legal_basis="Public task of operating the water network and the supply contract (GDPR Art. 6(1)(b), (e)). "
                    "Leak notices serve the household itself, so it may object to them (GDPR Art. 21(1)).",
        reads=("id (pseudonymised)", "dateObserved", "waterConsumption"),
        recipients="customer service (leak notices)", alert_topic="alerts.v1", severity="warning",
        subject_kind="water_meter", retention="alerts kept 90 days",
        human_oversight="customer service checks the consumption curve before writing to the customer",
        alarm_name="alarmFlowPersistence", objection_allowed=True,
        owner="Water utility, customer service",
        logic="It looks at each household meter's hourly readings. If water has flowed in every single hour for 24 "
              "hours (by default), there is probably a leak, such as a running toilet or a dripping pipe, because a "
              "household always has hours without use, at night. Customer service checks the consumption curve and "
              "writes to the customer before the bill arrives.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        continuous_after_s: float = threshold(
            86400.0, "s", "The meters' LEAK rule: a whole day without one still hour; households sleep, so "
                          "normal use always leaves still hours in a day.", above=0)
        max_interval_s: float = threshold(
            5400.0, "s", "An interval between two readings longer than this (a missed hourly report) could "
                         "hide a still hour, so it restarts the count instead of extending it.", above=0)

    columns = ("waterConsumption",)
    reading_facts = ("new", "prev_ts", "prev_index")      # the meter's previous reading, kept once by the tracker
    # ``cf_seen`` (1 byte) instead of a copy of the previous reading: a household may object to this
    # detector, and the consent gate then resets its state here; once the objection is withdrawn the
    # first reading it is shown is a fresh baseline again (as before), and the interval since a
    # reading taken while the household objected is never judged.
    subject_fields = (("cf_seen", np.int8, 0), ("cf_flow_since", np.float64, NAN), ("cf_since", np.float64, NAN))

    def update(self, state, readings):
        t = self.thresholds
        f = readings.facts
        codes, starts = continuous_flow(
            readings.slots, readings.ts, readings.columns["waterConsumption"], f["prev_ts"], f["prev_index"], f["new"],
            t.continuous_after_s, t.max_interval_s, state.subject("cf_seen"), state.subject("cf_flow_since"),
            state.subject("cf_since"))
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)

    def definitional_delay_s(self) -> float:
        return self.thresholds.continuous_after_s
