"""waste.full_before_collection: a bin filling so fast it will be full before its next collection."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import update_fill_forecast
from kernels.config import FILL_SLOPE_WINDOW
from streams.detectors.base import Declaration, Detector, episode_transitions, threshold

__all__ = ["FullBeforeCollection"]

WINDOW_TIMES = tuple(f"forecast_t{k}" for k in range(FILL_SLOPE_WINDOW))
WINDOW_LEVELS = tuple(f"forecast_f{k}" for k in range(FILL_SLOPE_WINDOW))


class FullBeforeCollection(Detector):
    declaration = Declaration(
        name="waste.full_before_collection", domain="waste",
        purpose="Forecast from each bin's recent fill rate (a robust Theil-Sen slope) that it will be full "
                "before its next scheduled collection, so an extra pickup can be planned in time.",
        legal_basis="Public task of municipal waste collection (GDPR Art. 6(1)(e)); no personal data is read.",
        reads=("id", "dateObserved", "fillingLevel", "nextCollectionEpoch"), recipients="waste collection dispatch",
        alert_topic="alerts.v1", severity="info", subject_kind="waste_container",
        retention="alerts kept 90 days", human_oversight="a dispatcher decides whether the forecast warrants a pickup",
        owner="Waste collection services",
        logic="From a bin's last few fill-level readings it estimates how fast the bin is filling. If at that pace "
              "it will be 90% full (by default) before its next scheduled collection, looking at most 12 hours "
              "ahead, dispatch is told so an extra pickup can be planned; a dispatcher decides.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        full_level: float = threshold(
            0.9, "fraction of bin height", "Full means the overflow level (waste.overflow's raise_at): the "
                                           "forecast warns before that alert would come.", minimum=0, maximum=1)
        horizon_s: float = threshold(
            43200.0, "s", "A straight-line forecast is trusted 12 h ahead at most: fill rates follow the day, "
                          "and a longer extrapolation of a daytime rate would over-predict.", above=0)
        min_rate_per_h: float = threshold(
            0.01, "fraction per hour", "Below 1%/h a bin cannot fill from below 90% within the horizon worth "
                                       "alerting; slower slopes are sensor noise around a still bin.", above=0)
        min_readings: int = threshold(
            4, "readings", "At least four readings since the last emptying: a Theil-Sen slope of fewer points "
                           "is one noisy pair away from a false forecast.", minimum=2)

    columns = ("fillingLevel", "nextCollectionEpoch")
    reading_facts = ("new", "prev_fill")      # the bin's previous reading (its fill level), kept once by the tracker
    subject_fields = ((("forecast_count", np.int32, 0), ("forecast_since", np.float64, np.nan))
                      + tuple((name, np.float64, np.nan) for name in WINDOW_TIMES + WINDOW_LEVELS))

    def update(self, state, readings):
        if not len(readings):
            return []
        t = self.thresholds
        window_t = np.stack([state.subject(name) for name in WINDOW_TIMES])
        window_f = np.stack([state.subject(name) for name in WINDOW_LEVELS])
        codes, starts = update_fill_forecast(
            readings.slots, readings.ts, readings.columns["fillingLevel"], readings.columns["nextCollectionEpoch"],
            readings.facts["new"], readings.facts["prev_fill"], t.full_level, t.horizon_s, t.min_rate_per_h / 3600.0,
            t.min_readings, state.subject("forecast_count"), window_t, window_f,
            state.subject("forecast_since"))
        for k, (name_t, name_f) in enumerate(zip(WINDOW_TIMES, WINDOW_LEVELS)):
            state.subject(name_t)[:] = window_t[k]
            state.subject(name_f)[:] = window_f[k]
        return episode_transitions(self.declaration.name, state.subjects.keys, codes, starts, readings.slots,
                                   readings.ts)
