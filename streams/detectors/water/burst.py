"""water.burst: flow above a share of the meter's nominal flow (Q3) for 30 minutes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import burst
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold

__all__ = ["Burst"]

NAN = np.nan


class Burst(Detector):
    declaration = Declaration(
        name="water.burst", domain="water",
        purpose="Find pipe bursts behind a meter: a flow close to the meter's nominal flow that lasts, which no "
                "household use does, so the supply can be shut before the flat floods.",
        legal_basis="Public task of operating the water network; vital interests where a flood threatens "
                    "(GDPR Art. 6(1)(d), (e)). No objection: a burst behind one meter floods neighbouring homes and "
                    "drains the network, grounds that override a household's objection (GDPR Art. 21(1)).",
        reads=("id (pseudonymised)", "dateObserved", "waterConsumption", "maxFlowLastHour", "nominalFlow"),
        recipients="network operations (field crews)", alert_topic="alerts.v1", severity="critical",
        subject_kind="water_meter", retention="alerts kept 90 days",
        human_oversight="an operator calls the customer or sends a crew; nothing is shut off automatically",
        owner="Water utility, network operations",
        logic="It watches how fast water flows through each household meter. A flow above half of what the meter is "
              "built for, lasting 30 minutes (by default), is more than any household uses: probably a burst pipe. "
              "Network operations call the customer or send a crew; the water is never shut off automatically.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        nominal_share: float = threshold(
            0.5, "ratio of nominal flow Q3", "Half of Q3 (1.25 m3/h on a 2.5 m3/h household meter): taps and "
                                             "showers together stay below, a burst pipe does not.", above=0)
        min_duration_s: float = threshold(
            1800.0, "s", "Thirty minutes: a bath or a garden hose is high but short or low; a burst keeps going.", above=0)
        max_interval_s: float = threshold(
            5400.0, "s", "Over a longer interval (missed reports) a day's normal use could add up to the burst "
                         "volume, so such intervals are not judged.", above=0)

    columns = ("maxFlowLastHour", "nominalFlow", "waterConsumption")
    reading_facts = ("new", "prev_ts", "prev_index")      # the meter's previous reading, kept once by the tracker
    subject_fields = (("bu_nominal", np.float64, NAN), ("bu_high_since", np.float64, NAN), ("bu_since", np.float64, NAN))

    def update(self, state, readings):
        t = self.thresholds
        c = readings.columns
        codes, starts = burst(
            readings.slots, readings.ts, c["waterConsumption"], c["maxFlowLastHour"], c["nominalFlow"],
            readings.facts["prev_ts"], readings.facts["prev_index"], readings.facts["new"],
            t.nominal_share, t.min_duration_s, t.max_interval_s, state.subject("bu_nominal"),
            state.subject("bu_high_since"), state.subject("bu_since"))
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)

    def definitional_delay_s(self) -> float:
        return self.thresholds.min_duration_s
