"""traffic.anomaly_score: a detector's flow, occupancy and speed far from what is usual for it then."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import score_readings, series_scores, sweep_anomaly, traffic_channels
from kernels.config import SERIES_FLOOR_SPREAD, SERIES_PRIOR_SPREAD, TRAFFIC_BASELINE_ROWS
from streams.detectors._transitions import transitions
from streams.detectors.base import Declaration, Detector, threshold

__all__ = ["TrafficAnomalyScore"]

BASELINE = "anomaly_baseline"   # group table: one row per (detector, weekday type, 30-min bin)
CHANNELS = ("intensity", "occupancy", "speed")


def speed_worth_scoring(intensity: np.ndarray, speed: np.ndarray, min_vehicles: float) -> np.ndarray:
    """The mean speed (km/h) of readings counting at least ``min_vehicles`` vehicles, NaN for the others
    (and where count or speed is missing): below that the mean is mostly the spread between vehicles."""
    with np.errstate(invalid="ignore"):
        return np.where(intensity >= min_vehicles, speed, np.nan)


def plausible(intensity: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """False for readings that report a speed with no vehicle counted: a device fault (traffic.stuck's
    "impossible"), not traffic, so none of its channels may be scored or teach the baseline."""
    with np.errstate(invalid="ignore"):
        return ~((intensity == 0) & (speed > 0))


class TrafficAnomalyScore(Detector):
    """A per-reading score in [0, 1] from three channels (sqrt of the count, log of occupancy,
    log of speed), each compared with a robust baseline of *this* detector at *this* time of
    day and weekday type (Monday-Friday or weekend; 30-minute bins): an exponentially weighted
    level and mean absolute deviation, fed only by readings that did not score anomalous, with
    residuals clipped, so anomalies do not teach the baseline. Until a bin has been learnt on
    an earlier day (the first day of a detector, or its first weekend) the reading is compared
    with a short-term clipped baseline instead, with a wider tolerance: it cannot know the
    daily rhythm, only sudden jumps. The score is ``D^2 / (D^2 + h^2)``, D the largest channel
    deviation in noise scales. An episode opens when scores stay high for ``min_duration_s``
    (hysteresis: a run starts at ``alert_score`` and ends below ``calm_score``) and closes
    after ``calm_after_s`` of calm. A run that overlaps a ``traffic.stuck`` episode of the
    detector or a ``traffic.incident`` on its segment is explained by those and not raised;
    and while either is open (or the segment's detector pairs look congested) the detector is
    quarantined: its readings do not teach the seasonal baseline, so yesterday's incident does
    not make today's normal traffic at that hour look anomalous.
    """

    declaration = Declaration(
        name="traffic.anomaly_score", domain="traffic",
        purpose="Flag detectors whose flow, occupancy or speed stay far from their usual values for the time of "
                "day and weekday (events, works, diversions, slow failures) for the control room to look at.",
        legal_basis="Public task of managing road traffic (GDPR does not apply: no personal data).",
        reads=("id", "dateObserved", "intensity", "occupancy", "averageVehicleSpeed", "refRoadSegment"),
        recipients="traffic control room, traffic engineers",
        alert_topic="alerts.v1", severity="info", subject_kind="traffic_detector",
        retention="alerts kept 90 days", human_oversight="an operator looks at cameras and decides whether to act",
    )

    @dataclass(frozen=True)
    class Thresholds:
        alert_score: float = threshold(
            0.9, "score 0-1", "A run of high scores starts here: the largest channel is 3x the half-score "
                              "deviation (6 noise scales at the defaults) away from its baseline.")
        calm_score: float = threshold(
            0.5, "score 0-1", "A run ends, and calm starts, below this (2 noise scales): the gap to "
                              "alert_score is the hysteresis that keeps a borderline value from flapping.")
        min_duration_s: float = threshold(
            1800.0, "s", "Scores must stay high for 30 min: longer than the incident test needs (15 min), so "
                         "an incident is reported as an incident, and than stuck tests need (15-25 min).")
        calm_after_s: float = threshold(
            900.0, "s", "Three calm 5-minute readings close an episode: one normal value in a long anomaly "
                        "does not end it.")
        half_score_deviation: float = threshold(
            2.0, "noise scales", "Deviation scoring 0.5. Mean absolute deviation is 0.8 sigma, so 6 scales "
                                 "(score 0.9) is about 5 sigma of day-to-day noise.")
        short_term_tolerance: float = threshold(
            2.0, "factor", "Widens the noise scale of the short-term baseline (no seasonal bin yet): the "
                           "morning ramp is a trend it cannot know.")
        intensity_floor: float = threshold(
            0.5, "sqrt(vehicles)", "Smallest noise scale of sqrt(count): the Poisson noise of a count, "
                                   "whatever the flow.")
        occupancy_floor: float = threshold(
            0.12, "log ratio", "Smallest noise scale of log occupancy: about 12 % interval-to-interval "
                               "variation at steady flow.")
        speed_floor: float = threshold(
            0.06, "log ratio", "Smallest noise scale of log speed: mean speeds vary about 6 % between "
                               "5-minute intervals in free flow.")
        speed_min_vehicles: float = threshold(
            5.0, "vehicles per interval", "A mean speed over fewer vehicles is not scored: one or two cars at "
                 "night differ from each other by 20-40 %, so their mean says which cars passed, not how the road "
                 "flows, and a bin learnt from a handful of such means looks far tighter than the next night is.")
        interval_s: float = threshold(
            300.0, "s", "Nominal reporting interval: the short-term baseline forgets over 12 intervals and a "
                        "gap counts as at most 3.")
        bin_rate: float = threshold(
            0.3, "weight", "Weight of a new reading in its seasonal bin (six readings per bin and day): the "
                           "bin follows the last day or two, so weekly drift is forgotten.")
        clip: float = threshold(
            3.0, "noise scales", "Residuals are clipped here before they move a baseline (Huber-style), so a "
                                 "single outlier moves it little.")
        baseline_age_s: float = threshold(
            43200.0, "s", "A seasonal bin is used only once first learnt at least 12 h before: on an earlier "
                          "day, not minutes ago during the same morning ramp.")

    subject_fields = (("anomaly_last_ts", np.float64, np.nan),
                      *((f"anomaly_level_{c}", np.float64, np.nan) for c in CHANNELS),
                      *((f"anomaly_scale_{c}", np.float64, np.nan) for c in CHANNELS),
                      ("anomaly_hot_since", np.float64, np.nan), ("anomaly_cold_since", np.float64, np.nan),
                      ("anomaly_since", np.float64, np.nan),
                      # set at sweeps: a stuck episode of the detector or a queue on its segment
                      ("anomaly_quarantined", np.float64, np.nan),
                      # traffic.incident's (read only)
                      ("incident_congested_since", np.float64, np.nan), ("incident_since", np.float64, np.nan),
                      ("stuck_since", np.float64, np.nan), ("stuck_ended", np.float64, np.nan))  # traffic.stuck's
    group_fields = {BASELINE: (*((f"level_{c}", np.float64, np.nan) for c in CHANNELS),
                               *((f"scale_{c}", np.float64, np.nan) for c in CHANNELS),
                               ("first", np.float64, np.nan)),
                    "segment": (("incident_open_since", np.float64, np.nan),   # traffic.incident's
                                ("incident_ended", np.float64, np.nan))}

    # -- the kernel's parameters from the thresholds ------------------------------------------------
    @staticmethod
    def _parameters(t, floors) -> tuple:
        return (np.asarray(floors, dtype=np.float64), 12.0 * t.interval_s, 3.0 * t.interval_s, t.bin_rate, t.clip,
                t.short_term_tolerance, t.half_score_deviation, t.alert_score, t.calm_score, t.baseline_age_s)

    @staticmethod
    def _ensure_rows(state) -> None:
        """One baseline row per (detector, weekday type, bin), aligned with the detectors' slots."""
        table = state.group(BASELINE)
        missing = len(state.subjects) * TRAFFIC_BASELINE_ROWS - len(table)
        if missing > 0:
            table.slots_for([str(i) for i in range(len(table), len(table) + missing)])

    def update(self, state, readings):
        if not len(readings):
            return []
        self._ensure_rows(state)
        t = self.thresholds
        c = readings.columns
        real = plausible(c["intensity"], c["averageVehicleSpeed"])
        channels = traffic_channels(np.where(real, c["intensity"], np.nan), np.where(real, c["occupancy"], np.nan),
                                    speed_worth_scoring(c["intensity"], c["averageVehicleSpeed"],
                                                        t.speed_min_vehicles))
        column = state.subject
        row = lambda name: state.group_column(BASELINE, name)  # noqa: E731
        score_readings(readings.slots, readings.ts, channels,
                       *self._parameters(t, (t.intensity_floor, t.occupancy_floor, t.speed_floor)),
                       column("anomaly_last_ts"), tuple(column(f"anomaly_level_{c}") for c in CHANNELS),
                       tuple(column(f"anomaly_scale_{c}") for c in CHANNELS),
                       tuple(row(f"level_{c}") for c in CHANNELS), tuple(row(f"scale_{c}") for c in CHANNELS),
                       row("first"), column("anomaly_hot_since"), column("anomaly_cold_since"),
                       column("anomaly_quarantined"))
        return []

    def sweep(self, state, watermark):
        t = self.thresholds
        since = state.subject("anomaly_since")
        self._quarantine(state, watermark)
        found = transitions(self.declaration.name, state.subjects.keys, since, watermark,
                           lambda: sweep_anomaly(
                               t.min_duration_s, t.calm_after_s, state.subject("anomaly_last_ts"),
                               state.subject("anomaly_hot_since"), state.subject("anomaly_cold_since"),
                               state.subject("stuck_since"), state.subject("stuck_ended"), state.subject("segment"),
                               state.group_column("segment", "incident_open_since"),
                               state.group_column("segment", "incident_ended"), since))
        return found

    @staticmethod
    def _quarantine(state, watermark: float) -> None:
        """Mark the detectors whose readings must not teach the seasonal baseline until the next
        sweep: an open ``traffic.stuck`` episode, or a congested pair or open incident anywhere on
        the segment (the queue and the starved detector below it).

        traffic.stuck updates per slice of readings, so what update() would see of it directly
        would depend on the batching; at a sweep every reading before it has been applied,
        whatever the batching, so the next readings consult a settled quarantine.
        """
        quarantined = state.subject("anomaly_quarantined")
        quarantined[:] = state.subject("stuck_since")
        segment = state.subject("segment")
        queued = ~(np.isnan(state.subject("incident_congested_since")) & np.isnan(state.subject("incident_since")))
        queued &= segment >= 0
        if queued.any():
            disturbed = np.zeros(int(segment.max()) + 1, dtype=bool)
            disturbed[segment[queued]] = True
            hit = (segment >= 0) & disturbed[np.maximum(segment, 0)]
            quarantined[hit & np.isnan(quarantined)] = watermark

    def definitional_delay_s(self) -> float:
        return self.thresholds.min_duration_s

    # -- backtesting one plain series -------------------------------------------------------------------
    @classmethod
    def score_series(cls, ts: np.ndarray, values: np.ndarray, thresholds=None) -> np.ndarray:
        """One score in [0, 1] per row of a single (timestamp s, value) series, any units, any cadence.

        The series is scored in time order (results come back in input order) by its own kernel
        (:func:`kernels.series_scores`), not the traffic channels': nothing about its units is
        assumed. The cadence is inferred (median step between distinct timestamps); the noise
        scales are learnt from the series itself, starting from half its interquartile range (so
        early rows score high only when wildly off) with a floor of 1 % of it (which only fixes the
        unit, so a perfectly flat stretch does not give infinite scores). The thresholds' score
        levels, clip, bin weight, short-term tolerance and baseline age apply as for live readings.
        Rows with a NaN value or time, or repeating an earlier timestamp, score 0.
        """
        t = thresholds if thresholds is not None else cls.Thresholds()
        ts = np.ascontiguousarray(ts, dtype=np.float64).reshape(-1)
        values = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
        if ts.shape != values.shape:
            raise ValueError(f"ts and values differ in length: {ts.shape[0]} and {values.shape[0]}")
        scores = np.zeros(ts.shape[0])
        usable = np.isfinite(ts)
        if not usable.any():
            return scores
        order = np.flatnonzero(usable)[np.argsort(ts[usable], kind="stable")]
        ordered_ts = np.ascontiguousarray(ts[order])
        ordered_values = np.ascontiguousarray(values[order])
        steps = np.diff(ordered_ts)
        steps = steps[steps > 0]
        interval = float(np.median(steps)) if steps.size else 1.0
        finite = ordered_values[np.isfinite(ordered_values)]
        spread = float(np.subtract(*np.percentile(finite, [75, 25]))) if finite.size else 0.0
        if not spread > 0 and finite.size:   # mostly constant: the size of what departs from it
            spread = float(np.max(np.abs(finite - np.median(finite))))
        if not spread > 0:
            spread = float(np.max(np.abs(finite))) if finite.size else 0.0
        spread = spread if spread > 0 else 1.0
        ordered_scores = series_scores(ordered_ts, ordered_values, interval, SERIES_FLOOR_SPREAD * spread,
                                       SERIES_PRIOR_SPREAD * spread, t.bin_rate, t.clip, t.short_term_tolerance,
                                       t.half_score_deviation, t.alert_score, t.calm_score, t.baseline_age_s)
        scores[order] = np.clip(ordered_scores, 0.0, 1.0)
        return scores
