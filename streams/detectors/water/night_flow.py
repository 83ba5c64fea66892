"""water.night_flow: a district's minimum night flow rises above its rolling level (new leaks, a main leak).

Per district, each night's minimum night flow (MNF) is the lowest of the hourly mean
flows per reporting meter in the night window (02:00-04:00 of the city clock by
default): a mean per meter, so a gateway outage or silent meters do not look like a
fall. The level is the median MNF of the last 7 normal nights. Warm-up: the level is
used from ``min_nights`` nights on (2 by default), so a 3-day run can already judge
its third night; nights of an open episode do not enter the level.

A district's meters must reach one partition (the readings' partition key is the
district or a gateway serving a single district), as its night is summed there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import night_flow_accumulate, sweep_night_flow
from kernels.water_flow import DAY_S, HOUR_S, NIGHT_BINS, NIGHT_HISTORY
from streams.detectors._transitions import transitions
from streams.detectors.base import Declaration, Detector, threshold

__all__ = ["NightFlow"]

NAN = np.nan
BINS = tuple(f"nf_sum{b}" for b in range(NIGHT_BINS)), tuple(f"nf_count{b}" for b in range(NIGHT_BINS))
HISTORY = tuple(f"nf_night{k}" for k in range(NIGHT_HISTORY))


class NightFlow(Detector):
    declaration = Declaration(
        name="water.night_flow", domain="water",
        purpose="Find new leakage in a district: its minimum night flow, when almost nobody uses water, rises "
                "above its usual level for the district's nights.",
        legal_basis="Public task of operating the water network and limiting water losses (GDPR Art. 6(1)(e)); "
                    "only district totals leave the detector.",
        reads=("id (pseudonymised)", "dateObserved", "waterConsumption", "district"),
        recipients="network operations (leakage team)", alert_topic="alerts.v1", severity="warning",
        subject_kind="district", retention="alerts kept 90 days on the alert topic; leakage reports (district totals) are "
                  "kept by the leakage team, outside this system",
        human_oversight="the leakage team confirms with step tests or acoustic survey before digging",
        owner="Water utility, network operations (leakage team)",
        logic="It adds up, per district, the water used between 2 and 4 in the morning (by default), when almost "
              "everybody sleeps. When a night's flow is clearly above the district's usual nights (one and a half "
              "times the usual level plus a small margin), a new leak in the public pipes is likely: the leakage "
              "team confirms with measurements on site before any digging. Only district totals are used; no "
              "household is singled out.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        night_start_s: float = threshold(
            7200.0, "s after midnight (city clock)", "02:00: the two quietest hours of household use begin; the "
                                                     "window is two hourly bins long.", minimum=0, maximum=86399)
        close_after_s: float = threshold(
            3600.0, "s", "A night is judged an hour after its window ends, when its last readings are in.", above=0)
        min_meters: float = threshold(
            5.0, "readings per hourly bin", "Fewer reporting meters make a mean too noisy to judge: that night "
                                            "is skipped.", minimum=1)
        min_nights: float = threshold(
            2.0, "nights", "Warm-up: a level from fewer than two nights is one night's chance; up to 7 are used.", minimum=1)
        rise_ratio: float = threshold(
            1.5, "ratio", "A night counts as risen at one and a half times the level ...", minimum=1)
        rise_margin_m3h: float = threshold(
            0.003, "m3/h per meter", "... plus 3 L/h per meter: normal nights vary by about 2 L/h per meter "
                                     "(DAIAD households), one leaking household adds far less.", minimum=0)
        max_interval_s: float = threshold(
            5400.0, "s", "Only intervals of about an hour tell which night hour their flow belongs to.", above=0)

    columns = ("waterConsumption",)
    reading_groups = ("district",)
    reading_facts = ("new", "prev_ts", "prev_index")      # the meter's previous reading, kept once by the tracker
    group_fields = {"district": (("nf_night", np.float64, NAN), ("nf_closed", np.float64, NAN),
                                 *((name, np.float64, 0.0) for name in BINS[0] + BINS[1]),
                                 *((name, np.float64, NAN) for name in HISTORY),
                                 ("nf_nights", np.float64, 0.0), ("nf_since", np.float64, NAN))}

    @staticmethod
    def _stack(state, names) -> np.ndarray:
        return np.ascontiguousarray(np.stack([state.group_column("district", n) for n in names], axis=1))

    @staticmethod
    def _unstack(state, names, array) -> None:
        for k, name in enumerate(names):
            state.group_column("district", name)[:] = array[:, k]

    def update(self, state, readings):
        sums, counts = self._stack(state, BINS[0]), self._stack(state, BINS[1])
        f = readings.facts
        night_flow_accumulate(readings.slots, readings.ts, readings.columns["waterConsumption"], f["prev_ts"],
                              f["prev_index"], f["new"], readings.groups["district"], self.thresholds.night_start_s,
                              self.thresholds.max_interval_s, state.group_column("district", "nf_night"),
                              state.group_column("district", "nf_closed"), sums, counts)
        self._unstack(state, BINS[0], sums)
        self._unstack(state, BINS[1], counts)
        return []

    def sweep(self, state, watermark):
        t = self.thresholds
        # A sweep acts only on a district whose night has closed; most ticks none has, and then the
        # kernel would change nothing (the same sums, in the kernel's order, decide it).
        night = state.group_column("district", "nf_night")
        if not np.any(night * DAY_S + t.night_start_s + NIGHT_BINS * HOUR_S + t.close_after_s <= watermark):
            return []
        sums, counts = self._stack(state, BINS[0]), self._stack(state, BINS[1])
        history = self._stack(state, HISTORY)
        column = state.group_column

        def run():
            codes, _levels = sweep_night_flow(
                watermark, t.night_start_s, t.close_after_s, t.min_meters, t.min_nights, t.rise_ratio,
                t.rise_margin_m3h, column("district", "nf_night"), column("district", "nf_closed"), sums, counts,
                history, column("district", "nf_nights"), column("district", "nf_since"))
            return codes

        found = transitions(self.declaration.name, state.group("district").keys, column("district", "nf_since"),
                            watermark, run)
        self._unstack(state, BINS[0], sums)
        self._unstack(state, BINS[1], counts)
        self._unstack(state, HISTORY, history)
        return found

    def definitional_delay_s(self) -> float:
        t = self.thresholds
        return NIGHT_BINS * 3600.0 + t.close_after_s
