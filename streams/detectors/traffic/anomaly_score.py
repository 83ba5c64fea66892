"""traffic.anomaly_score: a detector's flow, occupancy and speed far from what is usual for it then."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import score_series, score_series_episodes, sweep_series_episodes, traffic_channels
from kernels.config import CLEARED, RAISED, SERIES_BINS
from kernels.series import BIN_FIELDS, CHANNEL_FIELDS, SLOT_FIELDS, field_fill
from streams.detectors._transitions import transitions
from streams.detectors.base import Declaration, Detector, threshold

__all__ = ["TrafficAnomalyScore"]

CHANNELS = ("intensity", "occupancy", "speed")
PER_CHANNEL = "anomaly_channel"    # group table: one row per (detector, channel)
BASELINE = "anomaly_baseline"      # group table: one row per (detector, weekday type, 30-min bin, channel)


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
    """The anomaly likelihood of a traffic detector's readings, from the one series scorer
    (:mod:`kernels.series`) over three channels: sqrt of the count, log of occupancy and log of
    speed (variance-stabilised). Each channel is predicted by the detector's own short-term
    level and trend, its usual level and its usual value at this time of day and weekday type,
    whichever has predicted it best; the deviation is calibrated against the detector's own
    distribution of deviations, so the score says how unusual the recent behaviour is: 0.5 is
    one reading in a thousand, 1.0 one in a million. An episode opens when scores stay at or
    above ``alert_score`` for ``min_duration_s / interval_s`` of the detector's own learnt
    reporting intervals (30 min at 5 minutes; hysteresis: a run ends below ``calm_score``) and
    closes after ``calm_after_s / interval_s`` calm intervals. A run that overlaps a ``traffic.stuck`` episode
    of the detector or a ``traffic.incident`` on its segment is explained by those and not
    raised; and while either is open (or the segment's detector pairs look congested) the
    detector is quarantined: its readings do not teach what is usual, so yesterday's incident
    does not make today's normal traffic at that hour look anomalous.
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
        owner="Traffic management centre",
        logic="It learns, for each traffic sensor, how many vehicles it usually counts, how busy the road usually "
              "is and how fast traffic usually moves at that time of day and day of the week. When the readings "
              "stay very unusual (as unusual as one reading in a thousand, by default) for half an hour, the "
              "control room is told and an operator looks at the cameras. Unusual traffic already explained by an "
              "incident or a faulty sensor is not reported again. It counts vehicles; it does not see who is "
              "driving.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        alert_score: float = threshold(
            0.5, "score 0-1", "A run of high scores starts at behaviour as unusual as one reading in a thousand "
                              "under the series' own learnt distribution.", minimum=0, maximum=1)
        calm_score: float = threshold(
            0.4, "score 0-1", "A run ends, and calm starts, below this (one reading in 250): the gap to alert_score "
                              "is the hysteresis that keeps a borderline value from flapping, narrow enough that "
                              "ordinary rush-hour variation hovering near the alert level does not hold a run open.", minimum=0, maximum=1)
        min_duration_s: float = threshold(
            1800.0, "s", "Scores must stay high for 30 min (6 intervals): longer than the incident test needs "
                         "(15 min), so an incident is reported as an incident, and than stuck tests need (15-25 min). "
                         "A series of another cadence needs the same number of its own intervals.", above=0)
        calm_after_s: float = threshold(
            900.0, "s", "Three calm intervals close an episode: one normal value in a long anomaly does not end it.", above=0)
        interval_s: float = threshold(
            300.0, "s", "Nominal reporting interval of a traffic detector: min_duration_s and calm_after_s count "
                        "in these, so a plain series of another cadence (replay) needs as many of its own.", above=0)
        intensity_floor: float = threshold(
            0.5, "sqrt(vehicles)", "Smallest noise scale of sqrt(count): the Poisson noise of a count, "
                                   "whatever the flow.", above=0)
        occupancy_floor: float = threshold(
            0.12, "log ratio", "Smallest noise scale of log occupancy: about 12 % interval-to-interval "
                               "variation at steady flow.", above=0)
        speed_floor: float = threshold(
            0.06, "log ratio", "Smallest noise scale of log speed: mean speeds vary about 6 % between "
                               "5-minute intervals in free flow.", above=0)
        speed_min_vehicles: float = threshold(
            5.0, "vehicles per interval", "A mean speed over fewer vehicles is not scored: one or two cars at "
                 "night differ from each other by 20-40 %, so their mean says which cars passed, not how the road "
                 "flows, and a bin learnt from a handful of such means looks far tighter than the next night is.", minimum=0)
        bin_rate: float = threshold(
            0.3, "weight", "Weight per day of a seasonal bin's readings together: the bin follows the last day "
                           "or two, so weekly drift is forgotten.", above=0)
        clip: float = threshold(
            3.0, "noise scales", "Residuals are clipped here before they move a level (Huber-style), so a "
                                 "single outlier moves it little.", above=0)
        baseline_age_s: float = threshold(
            43200.0, "s", "A seasonal bin is used only once first learnt at least 12 h before: on an earlier "
                          "day, not minutes ago during the same morning ramp.", above=0)

    columns = ("averageVehicleSpeed", "intensity", "occupancy")
    state_reads = ("segment",                                            # the tracker's
                   "stuck_since", "stuck_ended",                          # traffic.stuck's
                   "incident_congested_since", "incident_since",          # traffic.incident's
                   "segment.incident_open_since", "segment.incident_ended")
    subject_fields = (*((f"anomaly_{name}", np.float64, field_fill(name)) for name in SLOT_FIELDS),
                      ("anomaly_since", np.float64, np.nan),
                      # set at sweeps: a stuck episode of the detector or a queue on its segment
                      ("anomaly_quarantined", np.float64, np.nan))
    group_fields = {PER_CHANNEL: tuple((name, np.float64, field_fill(name)) for name in CHANNEL_FIELDS),
                    BASELINE: tuple((name, np.float64, field_fill(name)) for name in BIN_FIELDS)}

    # -- the scorer's parameters and state ------------------------------------------------------------
    @staticmethod
    def _score_parameters(t) -> tuple:
        return t.alert_score, t.calm_score, t.clip, t.bin_rate, t.baseline_age_s

    @staticmethod
    def _episode_parameters(t) -> tuple:
        """The episode rule's durations in intervals of the series' own learnt cadence."""
        return t.min_duration_s / t.interval_s, t.calm_after_s / t.interval_s

    @staticmethod
    def _state(state) -> tuple[tuple, tuple, tuple]:
        """The scorer's state arrays, the group rows grown to match the detectors' slots."""
        k = len(CHANNELS)
        for group, rows in ((PER_CHANNEL, k), (BASELINE, SERIES_BINS * k)):
            table = state.group(group)
            missing = len(state.subjects) * rows - len(table)
            if missing > 0:
                table.slots_for([str(i) for i in range(len(table), len(table) + missing)])
        return (tuple(state.subject(f"anomaly_{name}") for name in SLOT_FIELDS),
                tuple(state.group_column(PER_CHANNEL, name) for name in CHANNEL_FIELDS),
                tuple(state.group_column(BASELINE, name) for name in BIN_FIELDS))

    def update(self, state, readings):
        if not len(readings):
            return []
        t = self.thresholds
        c = readings.columns
        real = plausible(c["intensity"], c["averageVehicleSpeed"])
        channels = traffic_channels(np.where(real, c["intensity"], np.nan), np.where(real, c["occupancy"], np.nan),
                                    speed_worth_scoring(c["intensity"], c["averageVehicleSpeed"],
                                                        t.speed_min_vehicles))
        score_series(readings.slots, readings.ts, np.ascontiguousarray(np.column_stack(channels)),
                     (t.intensity_floor, t.occupancy_floor, t.speed_floor), *self._score_parameters(t),
                     state.subject("anomaly_quarantined"), *self._state(state))
        return []

    def sweep(self, state, watermark):
        t = self.thresholds
        since = state.subject("anomaly_since")
        self._quarantine(state, watermark)
        slot_state = self._state(state)[0]
        explained = self._explained(state)
        return transitions(self.declaration.name, state.subjects.keys, since, watermark,
                           lambda: sweep_series_episodes(*self._episode_parameters(t), slot_state, explained, since))

    @staticmethod
    def _explained(state) -> np.ndarray:
        """Per detector: its current run of high scores overlaps a stuck episode of the detector (open,
        or ended at or after the run's start) or an incident on its segment (likewise): theirs to report."""
        hot = state.subject("anomaly_hot_since")
        with np.errstate(invalid="ignore"):
            explained = ~np.isnan(state.subject("stuck_since")) | (state.subject("stuck_ended") >= hot)
            segment = state.subject("segment")
            open_since = state.group_column("segment", "incident_open_since")
            ended = state.group_column("segment", "incident_ended")
            on_segment = (segment >= 0) & (segment < open_since.shape[0])
            g = np.where(on_segment, segment, 0)
            if open_since.shape[0]:
                explained |= on_segment & (~np.isnan(open_since[g]) | (ended[g] >= hot))
        return np.ascontiguousarray(explained, dtype=np.bool_)

    @staticmethod
    def _quarantine(state, watermark: float) -> None:
        """Mark the detectors whose readings must not teach what is usual until the next sweep: an
        open ``traffic.stuck`` episode, or a congested pair or open incident anywhere on the segment
        (the queue and the starved detector below it).

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
        return self.thresholds.min_duration_s   # at the nominal interval; a detector of another cadence scales it

    # -- backtesting one plain series -------------------------------------------------------------------
    @classmethod
    def score_series(cls, ts: np.ndarray, values: np.ndarray, thresholds=None) -> np.ndarray:
        """One score in [0, 1] per row of a (timestamp s, value) series, any units, any cadence
        (``values`` one column, or readings x channels). See :meth:`backtest`."""
        return cls.backtest(ts, values, thresholds)[0]

    @classmethod
    def backtest(cls, ts: np.ndarray, values: np.ndarray, thresholds=None):
        """Score a plain series as the worker would, one reading at a time, and apply the episode rule
        after each: returns ``(scores, episodes)``, scores in input order, episodes a list of
        ``(start s, end s or None while open at the end)``.

        The same kernel as for live readings (:func:`kernels.score_series`), on the series' own
        values (no unit assumed, no floor: the noise scales are learnt from the series). Rows are
        taken in time order; rows with a NaN time, or repeating an earlier timestamp, score 0; a
        NaN value scores 0 and teaches nothing.
        """
        t = thresholds if thresholds is not None else cls.Thresholds()
        ts = np.ascontiguousarray(ts, dtype=np.float64).reshape(-1)
        values = np.asarray(values, dtype=np.float64)
        values = values.reshape(-1, 1) if values.ndim == 1 else values
        if values.ndim != 2 or values.shape[0] != ts.shape[0]:
            raise ValueError(f"ts and values differ in length: {ts.shape[0]} and {values.shape[0]}")
        scores = np.zeros(ts.shape[0])
        usable = np.isfinite(ts)
        if not usable.any():
            return scores, []
        order = np.flatnonzero(usable)[np.argsort(ts[usable], kind="stable")]
        ordered_ts = np.ascontiguousarray(ts[order])
        ordered, codes, starts, _state = score_series_episodes(
            ordered_ts, np.ascontiguousarray(values[order]), np.zeros(values.shape[1]), *cls._score_parameters(t),
            *cls._episode_parameters(t))
        scores[order] = np.clip(ordered, 0.0, 1.0)
        episodes: list[tuple[float, float | None]] = []
        for i in np.flatnonzero(codes):
            if codes[i] == RAISED:
                episodes.append((float(starts[i]), None))
            elif codes[i] == CLEARED and episodes:
                episodes[-1] = (episodes[-1][0], float(ordered_ts[i]))
        return scores, episodes
