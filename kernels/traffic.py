"""Traffic kernels: detector state, stuck/silent/incident episodes and the seasonal anomaly score.

State is columnar: one float64/int32 array per field, indexed by a traffic detector's
slot (or a road segment's slot). Times are epoch seconds (float64, UTC); ``NaN`` in a
time array means "never" (never seen / no open episode / no run going on).

Units of the readings: ``intensity`` vehicles per observation interval, ``occupancy`` a
fraction 0-1, ``averageVehicleSpeed`` km/h, ``positionAlongSegment`` metres in the
direction of travel (a smaller position is upstream).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from kernels.config import (
    CLEARED, EPOCH_WEEKDAY, NJIT, NO_CHANGE, OCCUPANCY_LOG_OFFSET, RAISED, READING_APPLIED, SKIPPED_INVALID,
    SERIES_LEVEL_INTERVALS, SERIES_LEVEL_MEMORY_S, SERIES_MAX_GAP_INTERVALS, SERIES_PRIOR_SAMPLES,
    SERIES_SCALE_MEMORY_S, SKIPPED_STALE, SPEED_LOG_OFFSET_KMH, TRAFFIC_BASELINE_ROWS, TRAFFIC_BIN_S,
    TRAFFIC_BINS_PER_DAY,
)
from kernels._checks import _check, _check_writable, _out, _scalar_times

__all__ = ["apply_traffic_readings", "update_stuck", "adjacent_downstream",
           "sweep_incident", "traffic_channels", "baseline_row", "score_readings", "sweep_anomaly",
           "series_scores", "warm_up_traffic"]


# --- shared detector state ---------------------------------------------------------------------

@njit(**NJIT)
def _apply_traffic_readings(slot, ts, segment_slot, position, occupancy,
                            last_seen, subject_segment, subject_position, last_occupancy, out):
    n = last_seen.shape[0]
    for i in range(slot.shape[0]):
        s = slot[i]
        t = ts[i]
        if s < 0 or s >= n or not np.isfinite(t):
            out[i] = SKIPPED_INVALID
            continue
        if t <= last_seen[s]:
            out[i] = SKIPPED_STALE
            continue
        last_seen[s] = t
        if segment_slot[i] >= 0:
            subject_segment[s] = segment_slot[i]
        if np.isfinite(position[i]):
            subject_position[s] = position[i]
        last_occupancy[s] = occupancy[i]
        out[i] = READING_APPLIED


def apply_traffic_readings(slot, ts, segment_slot, position, occupancy,
                           last_seen, subject_segment, subject_position, last_occupancy, out=None):
    """Fold time-sorted readings into the detectors' shared state.

    Per reading: ``slot`` int32 detector slot, ``ts`` (s), ``segment_slot`` int32 (-1 =
    none), ``position`` (m, NaN = not given), ``occupancy`` (0-1). Per detector (updated in
    place): ``last_seen`` (s), ``subject_segment`` (int32), ``subject_position`` (m),
    ``last_occupancy`` (0-1, NaN = unknown). A reading not newer than the detector's last
    one is skipped. Returns int8 per reading: READING_APPLIED, SKIPPED_STALE or SKIPPED_INVALID.
    """
    _check("slot", slot, np.int32)
    n = slot.shape[0]
    _check("ts", ts, np.float64, n)
    _check("segment_slot", segment_slot, np.int32, n)
    _check("position", position, np.float64, n)
    _check("occupancy", occupancy, np.float64, n)
    _check("last_seen", last_seen, np.float64)
    m = last_seen.shape[0]
    _check("subject_segment", subject_segment, np.int32, m)
    _check("subject_position", subject_position, np.float64, m)
    _check("last_occupancy", last_occupancy, np.float64, m)
    for name, arr in (("last_seen", last_seen), ("subject_segment", subject_segment),
                      ("subject_position", subject_position), ("last_occupancy", last_occupancy)):
        _check_writable(name, arr)
    out = _out(out, n)
    _apply_traffic_readings(slot, ts, segment_slot, position, occupancy,
                            last_seen, subject_segment, subject_position, last_occupancy, out)
    return out


# --- traffic.stuck ---------------------------------------------------------------------------------

@njit(**NJIT)
def _same(a, b):
    return a == b or (np.isnan(a) and np.isnan(b))


@njit(**NJIT)
def _update_stuck(slot, ts, intensity, occupancy, speed, flat_after, impossible_after,
                  last_ts, prev_intensity, prev_occupancy, prev_speed, flat_since, impossible_since,
                  stuck_since, stuck_ended, codes, starts):
    n = last_ts.shape[0]
    for i in range(slot.shape[0]):
        codes[i] = NO_CHANGE
        starts[i] = np.nan
        s = slot[i]
        t = ts[i]
        if s < 0 or s >= n or not np.isfinite(t) or t <= last_ts[s]:
            continue
        q = intensity[i]
        o = occupancy[i]
        v = speed[i]
        repeated = (not np.isnan(last_ts[s]) and q > 0.0 and q == prev_intensity[s]
                    and _same(o, prev_occupancy[s]) and _same(v, prev_speed[s]))
        if repeated:
            if np.isnan(flat_since[s]):
                flat_since[s] = last_ts[s]   # the run began with the previous, identical reading
        else:
            flat_since[s] = np.nan
        if q == 0.0 and v > 0.0:         # a mean speed over no vehicles
            if np.isnan(impossible_since[s]):
                impossible_since[s] = t
        else:
            impossible_since[s] = np.nan
        last_ts[s] = t
        prev_intensity[s] = q
        prev_occupancy[s] = o
        prev_speed[s] = v
        if np.isnan(stuck_since[s]):
            if not np.isnan(flat_since[s]) and t - flat_since[s] >= flat_after:
                stuck_since[s] = flat_since[s]
            elif not np.isnan(impossible_since[s]) and t - impossible_since[s] >= impossible_after:
                stuck_since[s] = impossible_since[s]
            if not np.isnan(stuck_since[s]):
                codes[i] = RAISED
                starts[i] = stuck_since[s]
        elif np.isnan(flat_since[s]) and np.isnan(impossible_since[s]):
            codes[i] = CLEARED
            starts[i] = stuck_since[s]
            stuck_since[s] = np.nan
            stuck_ended[s] = t


def update_stuck(slot, ts, intensity, occupancy, speed, flat_after, impossible_after,
                 last_ts, prev_intensity, prev_occupancy, prev_speed, flat_since, impossible_since,
                 stuck_since, stuck_ended, codes=None, starts=None):
    """Fold time-sorted readings into the stuck-sensor state; report opened and closed episodes.

    A detector is *flat* while it repeats exactly the same (intensity > 0, occupancy,
    speed) as its previous reading; ``flat_since`` is the time of the first reading of
    the run. It is *impossible* while it reports a speed (> 0 km/h) with no vehicle
    counted; ``impossible_since`` is the first such reading. An episode opens on the
    reading at which a flat run has lasted ``flat_after`` s or an impossible run
    ``impossible_after`` s (episode start = the run's start) and closes on the first
    reading that is neither repeated nor impossible (``stuck_ended`` = its time).
    A run of zero counts is a quiet road, not a flat run. Readings not newer than the
    detector's last one are ignored. Returns (``codes`` int8, ``starts`` float64) per
    reading: RAISED / CLEARED with the episode start, NO_CHANGE with NaN.
    """
    flat_after, impossible_after = _scalar_times(flat_after, impossible_after)
    _check("slot", slot, np.int32)
    n = slot.shape[0]
    for name, arr in (("ts", ts), ("intensity", intensity), ("occupancy", occupancy), ("speed", speed)):
        _check(name, arr, np.float64, n)
    _check("last_ts", last_ts, np.float64)
    m = last_ts.shape[0]
    for name, arr in (("last_ts", last_ts), ("prev_intensity", prev_intensity), ("prev_occupancy", prev_occupancy),
                      ("prev_speed", prev_speed), ("flat_since", flat_since), ("impossible_since", impossible_since),
                      ("stuck_since", stuck_since), ("stuck_ended", stuck_ended)):
        _check(name, arr, np.float64, m)
        _check_writable(name, arr)
    codes = _out(codes, n)
    if starts is None:
        starts = np.empty(n, dtype=np.float64)
    else:
        _check("starts", starts, np.float64, n)
    _update_stuck(slot, ts, intensity, occupancy, speed, flat_after, impossible_after, last_ts, prev_intensity,
                  prev_occupancy, prev_speed, flat_since, impossible_since, stuck_since, stuck_ended, codes, starts)
    return codes, starts


# --- traffic.incident ------------------------------------------------------------------------------

@njit(**NJIT)
def _adjacent_downstream(subject_segment, subject_position, n_segments, downstream):
    m = subject_segment.shape[0]
    order = np.argsort(subject_position, kind="mergesort")   # NaN positions sort last
    nearest = np.full(n_segments, -1, dtype=np.int32)         # per segment: the last detector visited
    for k in range(m - 1, -1, -1):
        s = order[k]
        downstream[s] = -1
        g = subject_segment[s]
        if g < 0 or g >= n_segments or np.isnan(subject_position[s]):
            continue
        head = nearest[g]
        if head >= 0 and subject_position[head] == subject_position[s]:
            downstream[s] = downstream[head]                  # same station (another lane): same neighbour
        else:
            downstream[s] = head
        nearest[g] = s


def adjacent_downstream(subject_segment, subject_position, n_segments, downstream=None):
    """For each detector, the slot of the nearest detector strictly downstream on its segment
    (the smallest larger ``subject_position``, m), or -1. Detectors without a segment or a
    position have none. Returns int32 per detector."""
    _check("subject_segment", subject_segment, np.int32)
    m = subject_segment.shape[0]
    _check("subject_position", subject_position, np.float64, m)
    if downstream is None:
        downstream = np.empty(m, dtype=np.int32)
    else:
        _check("downstream", downstream, np.int32, m)
    _adjacent_downstream(subject_segment, subject_position, int(n_segments), downstream)
    return downstream


@njit(**NJIT)
def _sweep_incident(watermark, occupancy_difference, relative_difference, persist_after, clear_after,
                    fresh_within, last_seen, subject_segment, subject_position, last_occupancy, stuck_since,
                    congested_since, calm_since, incident_since, segment_open_since, segment_ended, out):
    m = last_seen.shape[0]
    n_segments = segment_open_since.shape[0]
    downstream = np.empty(m, dtype=np.int32)
    _adjacent_downstream(subject_segment, subject_position, n_segments, downstream)
    for u in range(m):
        out[u] = NO_CHANGE
        d = downstream[u]
        congested = False
        if d >= 0:
            ou = last_occupancy[u]
            od = last_occupancy[d]
            fresh = watermark - last_seen[u] < fresh_within and watermark - last_seen[d] < fresh_within
            trusted = np.isnan(stuck_since[u]) and np.isnan(stuck_since[d])
            if fresh and trusted and np.isfinite(ou) and np.isfinite(od):
                gap = ou - od
                congested = gap >= occupancy_difference and gap >= relative_difference * ou
        if np.isnan(incident_since[u]):
            if congested:
                if np.isnan(congested_since[u]):
                    congested_since[u] = watermark
                if watermark - congested_since[u] >= persist_after:
                    incident_since[u] = congested_since[u]
                    calm_since[u] = np.nan
                    out[u] = RAISED
            else:
                congested_since[u] = np.nan
        elif congested:
            calm_since[u] = np.nan
        else:
            if np.isnan(calm_since[u]):
                calm_since[u] = watermark
            if watermark - calm_since[u] >= clear_after:
                incident_since[u] = np.nan
                congested_since[u] = np.nan
                calm_since[u] = np.nan
                out[u] = CLEARED
                g = subject_segment[u]
                if g >= 0 and g < n_segments:
                    segment_ended[g] = watermark
    for g in range(n_segments):
        segment_open_since[g] = np.nan
    for u in range(m):
        g = subject_segment[u]
        if g >= 0 and g < n_segments and not np.isnan(incident_since[u]):
            if np.isnan(segment_open_since[g]) or incident_since[u] < segment_open_since[g]:
                segment_open_since[g] = incident_since[u]


def sweep_incident(watermark, occupancy_difference, relative_difference, persist_after, clear_after, fresh_within,
                   last_seen, subject_segment, subject_position, last_occupancy, stuck_since,
                   congested_since, calm_since, incident_since, segment_open_since, segment_ended, out=None):
    """California-style incident test on adjacent detector pairs, at event time ``watermark`` (s).

    For each detector *u* with a detector *d* immediately downstream on the same segment
    (see :func:`adjacent_downstream`), the pair is *congested* when both reported within
    ``fresh_within`` s, neither has an open stuck episode, and the upstream occupancy
    exceeds the downstream one by at least ``occupancy_difference`` (fraction) and by at
    least ``relative_difference`` of the upstream occupancy (a queue upstream of a capacity
    drop, free flow below it). An episode on *u* opens once the pair has been congested at
    every sweep for ``persist_after`` s (start = first congested sweep) and closes after
    ``clear_after`` s without congestion. Per segment, ``segment_open_since`` is rewritten
    (earliest open episode start, NaN = none) and ``segment_ended`` set to the watermark
    when an episode of the segment closes. Returns int8 per detector.
    """
    watermark, occupancy_difference, relative_difference = _scalar_times(watermark, occupancy_difference,
                                                                         relative_difference)
    persist_after, clear_after, fresh_within = _scalar_times(persist_after, clear_after, fresh_within)
    _check("last_seen", last_seen, np.float64)
    m = last_seen.shape[0]
    _check("subject_segment", subject_segment, np.int32, m)
    for name, arr in (("subject_position", subject_position), ("last_occupancy", last_occupancy),
                      ("stuck_since", stuck_since), ("congested_since", congested_since),
                      ("calm_since", calm_since), ("incident_since", incident_since)):
        _check(name, arr, np.float64, m)
    _check("segment_open_since", segment_open_since, np.float64)
    _check("segment_ended", segment_ended, np.float64, segment_open_since.shape[0])
    for name, arr in (("congested_since", congested_since), ("calm_since", calm_since),
                      ("incident_since", incident_since), ("segment_open_since", segment_open_since),
                      ("segment_ended", segment_ended)):
        _check_writable(name, arr)
    out = _out(out, m)
    _sweep_incident(watermark, occupancy_difference, relative_difference, persist_after, clear_after, fresh_within,
                    last_seen, subject_segment, subject_position, last_occupancy, stuck_since, congested_since,
                    calm_since, incident_since, segment_open_since, segment_ended, out)
    return out


# --- traffic.anomaly_score ---------------------------------------------------------------------------

def traffic_channels(intensity, occupancy, speed):
    """The anomaly score's three channels, variance-stabilised (see :mod:`kernels.config`):
    sqrt(vehicles per interval), log(occupancy + offset), log(km/h + offset). NaN stays NaN."""
    with np.errstate(invalid="ignore"):
        return (np.sqrt(np.maximum(intensity, 0.0)),
                np.log(np.maximum(occupancy, 0.0) + OCCUPANCY_LOG_OFFSET),
                np.log(np.maximum(speed, 0.0) + SPEED_LOG_OFFSET_KMH))


@njit(**NJIT)
def _baseline_row(slot, t):
    day = math.floor(t / 86400.0)
    weekend = 1 if (day + EPOCH_WEEKDAY) % 7 >= 5 else 0
    tod = int((t - day * 86400.0) // TRAFFIC_BIN_S)
    if tod >= TRAFFIC_BINS_PER_DAY:
        tod = TRAFFIC_BINS_PER_DAY - 1
    return slot * TRAFFIC_BASELINE_ROWS + weekend * TRAFFIC_BINS_PER_DAY + tod


def baseline_row(slot: int, t: float) -> int:
    """Row of the seasonal baseline for detector ``slot`` at time ``t`` (s, UTC):
    ``slot * TRAFFIC_BASELINE_ROWS + weekend * TRAFFIC_BINS_PER_DAY + time-of-day bin``."""
    return int(_baseline_row(int(slot), float(t)))


@njit(**NJIT)
def _score_readings(slot, ts, channels, floors, tau, max_step, bin_rate, clip, short_term_tolerance,
                    half_score_deviation, alert_score, calm_score, baseline_age,
                    last_ts, short_level, short_scale, bin_level, bin_scale, bin_first, hot_since, cold_since,
                    quarantined, scores):
    n_subjects = last_ts.shape[0]
    n_rows = bin_first.shape[0]
    n_channels = len(channels)
    for i in range(slot.shape[0]):
        scores[i] = 0.0
        s = slot[i]
        t = ts[i]
        if s < 0 or s >= n_subjects or not np.isfinite(t) or t <= last_ts[s]:
            continue
        row = _baseline_row(s, t)
        if row >= n_rows:
            continue
        seasonal = not np.isnan(bin_first[row]) and t - bin_first[row] >= baseline_age
        # 1. score against the seasonal baseline when its bin was learnt on an earlier day, else
        #    against the short-term one (which cannot know the daily rhythm: wider tolerance)
        deviation = 0.0
        for c in range(n_channels):
            x = channels[c][i]
            if np.isnan(x):
                continue
            if seasonal and not np.isnan(bin_level[c][row]):
                r = abs(x - bin_level[c][row]) / max(bin_scale[c][row], floors[c])
            elif not np.isnan(short_level[c][s]):
                r = abs(x - short_level[c][s]) / (max(short_scale[c][s], floors[c]) * short_term_tolerance)
            else:
                continue
            if r > deviation:
                deviation = r
        score = deviation * deviation / (deviation * deviation + half_score_deviation * half_score_deviation)
        scores[i] = score
        # 2. learn: the short-term baseline always, with clipped residuals (it follows the daily
        #    rhythm and, slowly, lasting changes); the seasonal one only from non-anomalous readings
        #    outside a run of high scores and outside quarantine (a fault of the detector, a queue on
        #    its segment): the short-term baseline adapts to a lasting disturbance within the hour,
        #    and what it then calls normal must not become tomorrow's normal.
        if np.isnan(last_ts[s]):
            rate = 1.0
        else:
            rate = 1.0 - math.exp(-min(t - last_ts[s], max_step) / tau)
        learn_bin = score < alert_score and np.isnan(hot_since[s]) and np.isnan(quarantined[s])
        first_in_bin = np.isnan(bin_first[row])
        if learn_bin and first_in_bin:
            bin_first[row] = t
        for c in range(n_channels):
            x = channels[c][i]
            if np.isnan(x):
                continue
            if np.isnan(short_level[c][s]):
                short_level[c][s] = x
                short_scale[c][s] = floors[c]
            else:
                scale = max(short_scale[c][s], floors[c])
                r = x - short_level[c][s]
                bound = clip * scale
                short_level[c][s] += rate * min(max(r, -bound), bound)
                short_scale[c][s] += rate * (min(abs(r), bound) - short_scale[c][s])
            if learn_bin:
                if np.isnan(bin_level[c][row]):
                    bin_level[c][row] = x
                    bin_scale[c][row] = floors[c]
                else:
                    scale = max(bin_scale[c][row], floors[c])
                    r = x - bin_level[c][row]
                    bound = clip * scale
                    bin_level[c][row] += bin_rate * min(max(r, -bound), bound)
                    bin_scale[c][row] += bin_rate * (min(abs(r), bound) - bin_scale[c][row])
        last_ts[s] = t
        # 3. runs, with hysteresis: hot from a score >= alert_score until one < calm_score
        if score >= alert_score:
            cold_since[s] = np.nan
            if np.isnan(hot_since[s]):
                hot_since[s] = t
        elif score < calm_score:
            hot_since[s] = np.nan
            if np.isnan(cold_since[s]):
                cold_since[s] = t
        else:
            cold_since[s] = np.nan


def score_readings(slot, ts, channels, floors, tau, max_step, bin_rate, clip, short_term_tolerance,
                   half_score_deviation, alert_score, calm_score, baseline_age,
                   last_ts, short_level, short_scale, bin_level, bin_scale, bin_first, hot_since, cold_since,
                   quarantined, scores=None):
    """Anomaly score in [0, 1] of each time-sorted reading, and the runs of high scores.

    ``channels``: a tuple of float64 arrays (one value per reading; NaN = absent), already
    transformed so that noise is roughly constant (see :func:`traffic_channels`);
    ``floors``: per channel, the smallest noise scale (same units). Per channel, the
    reading's deviation is ``|x - level| / scale`` against the seasonal baseline of its
    row (:func:`baseline_row`) when that row was first learnt at least ``baseline_age`` s
    earlier (on an earlier day), else against the detector's short-term baseline with the
    scale widened by ``short_term_tolerance``. The score is ``D^2 / (D^2 + h^2)`` with D
    the largest channel deviation and ``h = half_score_deviation``. Baselines are
    exponentially weighted level and mean absolute residual, residuals clipped at ``clip``
    scales: the short-term one with time constant ``tau`` (s, steps capped at ``max_step``
    s) from every reading, the seasonal one with weight ``bin_rate`` only from readings
    scoring below ``alert_score``, outside a run of high scores and while the detector is not
    ``quarantined`` (float64 per detector, read only; NaN = its data may teach the baseline,
    anything else = they are explained by a fault or an incident). Callers set quarantine at
    sweeps, so for a reading it holds what the sweeps before it settled, whatever the batching.

    State per detector: ``last_ts``, ``short_level``/``short_scale`` (tuples per channel),
    ``hot_since`` (start of the current run of scores >= ``alert_score``, kept while scores
    stay >= ``calm_score``), ``cold_since`` (start of the current run of scores <
    ``calm_score``); per baseline row: ``bin_level``/``bin_scale`` (tuples) and
    ``bin_first``. Readings not newer than the detector's last one score 0 and change nothing.
    Returns ``scores`` (float64 per reading).
    """
    tau, max_step, baseline_age = _scalar_times(tau, max_step, baseline_age)
    bin_rate, clip, short_term_tolerance, half_score_deviation, alert_score, calm_score = _scalar_times(
        bin_rate, clip, short_term_tolerance, half_score_deviation, alert_score, calm_score)
    if tau <= 0 or half_score_deviation <= 0 or short_term_tolerance <= 0 or not 0 < bin_rate <= 1:
        raise ValueError("tau, half_score_deviation and short_term_tolerance must be > 0, bin_rate in (0, 1]")
    _check("slot", slot, np.int32)
    n = slot.shape[0]
    _check("ts", ts, np.float64, n)
    channels = tuple(channels)
    k = len(channels)
    if k == 0:
        raise ValueError("at least one channel is needed")
    for c in channels:
        _check("channel", c, np.float64, n)
    floors = np.ascontiguousarray(floors, dtype=np.float64)
    if floors.shape != (k,) or not np.all(floors > 0):
        raise ValueError(f"floors must be {k} positive numbers")
    _check("last_ts", last_ts, np.float64)
    m = last_ts.shape[0]
    rows = bin_first.shape[0] if isinstance(bin_first, np.ndarray) else -1
    _check("bin_first", bin_first, np.float64)
    if rows < m * TRAFFIC_BASELINE_ROWS:
        raise ValueError(f"bin_first needs {TRAFFIC_BASELINE_ROWS} rows per detector ({m * TRAFFIC_BASELINE_ROWS})")
    short_level, short_scale, bin_level, bin_scale = (tuple(x) for x in (short_level, short_scale, bin_level,
                                                                         bin_scale))
    for name, group, length in (("short_level", short_level, m), ("short_scale", short_scale, m),
                                ("bin_level", bin_level, rows), ("bin_scale", bin_scale, rows)):
        if len(group) != k:
            raise ValueError(f"{name} needs one array per channel ({k})")
        for arr in group:
            _check(name, arr, np.float64, length)
            _check_writable(name, arr)
    for name, arr in (("last_ts", last_ts), ("hot_since", hot_since), ("cold_since", cold_since)):
        _check(name, arr, np.float64, m)
        _check_writable(name, arr)
    _check_writable("bin_first", bin_first)
    _check("quarantined", quarantined, np.float64, m)
    if scores is None:
        scores = np.empty(n, dtype=np.float64)
    else:
        _check("scores", scores, np.float64, n)
    _score_readings(slot, ts, channels, floors, tau, max_step, bin_rate, clip, short_term_tolerance,
                    half_score_deviation, alert_score, calm_score, baseline_age,
                    last_ts, short_level, short_scale, bin_level, bin_scale, bin_first, hot_since, cold_since,
                    quarantined, scores)
    return scores


@njit(**NJIT)
def _sweep_anomaly(min_duration, calm_after, last_ts, hot_since, cold_since, stuck_since, stuck_ended,
                   subject_segment, segment_open_since, segment_ended, anomaly_since, out):
    n_segments = segment_open_since.shape[0]
    for s in range(last_ts.shape[0]):
        out[s] = NO_CHANGE
        if np.isnan(anomaly_since[s]):
            hot = hot_since[s]
            if np.isnan(hot) or not last_ts[s] - hot >= min_duration:   # NaN last_ts: not yet
                continue
            # a run that overlaps a stuck episode or an incident on the segment is theirs
            if not np.isnan(stuck_since[s]) or stuck_ended[s] >= hot:
                continue
            g = subject_segment[s]
            if g >= 0 and g < n_segments and (not np.isnan(segment_open_since[g]) or segment_ended[g] >= hot):
                continue
            anomaly_since[s] = hot
            out[s] = RAISED
        else:
            cold = cold_since[s]
            if not np.isnan(cold) and last_ts[s] - cold >= calm_after:
                anomaly_since[s] = np.nan
                out[s] = CLEARED


def sweep_anomaly(min_duration, calm_after, last_ts, hot_since, cold_since, stuck_since, stuck_ended,
                  subject_segment, segment_open_since, segment_ended, anomaly_since, out=None):
    """Open or close anomaly episodes from the runs kept by :func:`score_readings`.

    An episode opens (start = ``hot_since``) once a detector's run of high scores has
    lasted ``min_duration`` s of its own readings, unless the run overlaps a stuck episode
    of the detector (open, or ``stuck_ended`` at or after the run's start) or an incident
    on its segment (``segment_open_since`` set, or ``segment_ended`` at or after the run's
    start): those are explained. It closes once scores have stayed below the calm level for
    ``calm_after`` s. Returns int8 per detector.
    """
    min_duration, calm_after = _scalar_times(min_duration, calm_after)
    _check("last_ts", last_ts, np.float64)
    m = last_ts.shape[0]
    for name, arr in (("hot_since", hot_since), ("cold_since", cold_since), ("stuck_since", stuck_since),
                      ("stuck_ended", stuck_ended), ("anomaly_since", anomaly_since)):
        _check(name, arr, np.float64, m)
    _check("subject_segment", subject_segment, np.int32, m)
    _check("segment_open_since", segment_open_since, np.float64)
    _check("segment_ended", segment_ended, np.float64, segment_open_since.shape[0])
    _check_writable("anomaly_since", anomaly_since)
    out = _out(out, m)
    _sweep_anomaly(min_duration, calm_after, last_ts, hot_since, cold_since, stuck_since, stuck_ended,
                   subject_segment, segment_open_since, segment_ended, anomaly_since, out)
    return out


# --- one plain series (backtests) ---------------------------------------------------------------------

@njit(**NJIT)
def _series_scores(ts, values, interval, floor, prior_scale, bin_rate, clip, short_term_tolerance,
                   half_score_deviation, alert_score, calm_score, baseline_age, scores):
    bin_level = np.full(TRAFFIC_BASELINE_ROWS, np.nan)
    bin_count = np.zeros(TRAFFIC_BASELINE_ROWS)
    bin_first = np.full(TRAFFIC_BASELINE_ROWS, np.nan)
    # a bin gets samples_per_bin readings a day: together they weigh bin_rate, whatever the cadence
    bin_sample_rate = 1.0 - (1.0 - bin_rate) ** (min(interval, TRAFFIC_BIN_S) / TRAFFIC_BIN_S)
    scale_rate = 1.0 - math.exp(-interval / SERIES_SCALE_MEMORY_S)
    tau = min(SERIES_LEVEL_INTERVALS * interval, SERIES_LEVEL_MEMORY_S)
    level = np.nan
    short_scale = prior_scale
    short_seen = 0.0
    seasonal_scale = prior_scale
    seasonal_seen = 0.0
    last = np.nan
    hot = False
    for i in range(ts.shape[0]):
        scores[i] = 0.0
        t = ts[i]
        if not np.isfinite(t) or t <= last:
            continue
        step = t - last
        last = t
        x = values[i]
        if np.isnan(x):
            continue
        row = _baseline_row(0, t)
        learnt = bin_count[row] > 0
        seasonal = learnt and t - bin_first[row] >= baseline_age
        short_r = x - level
        seasonal_r = x - bin_level[row]
        # 1. deviation against the view that predicts this series better (the smaller learnt noise
        #    scale): the bin of this time of day and day type once learnt on an earlier day, else the
        #    short-term level with a wider tolerance (it cannot know the daily rhythm)
        deviation = 0.0
        if not np.isnan(level):
            deviation = abs(short_r) / max(short_scale, floor)
            if seasonal and seasonal_scale < short_scale:
                deviation = abs(seasonal_r) / max(seasonal_scale, floor)
            elif not seasonal:
                deviation /= short_term_tolerance
        score = deviation * deviation / (deviation * deviation + half_score_deviation * half_score_deviation)
        scores[i] = score
        # 2. learn, residuals clipped: the short-term level from every reading; the noise scales and
        #    the bins only outside runs of high scores, so an anomaly does not teach what is usual
        calm = score < alert_score and not hot
        short_bound = clip * max(short_scale, floor)
        seasonal_bound = clip * max(seasonal_scale, floor)
        if np.isnan(level):
            level = x
        else:
            rate = 1.0 - math.exp(-min(step, SERIES_MAX_GAP_INTERVALS * interval) / tau)
            level += rate * min(max(short_r, -short_bound), short_bound)
            if calm:
                short_seen += 1.0
                weight = max(1.0 / (short_seen + SERIES_PRIOR_SAMPLES), scale_rate)
                short_scale += weight * (min(abs(short_r), short_bound) - short_scale)
        if calm:
            if seasonal:
                seasonal_seen += 1.0
                weight = max(1.0 / (seasonal_seen + SERIES_PRIOR_SAMPLES), scale_rate)
                seasonal_scale += weight * (min(abs(seasonal_r), seasonal_bound) - seasonal_scale)
            if not learnt:
                bin_level[row] = x
                bin_first[row] = t
            else:
                weight = max(1.0 / (bin_count[row] + 1.0), bin_sample_rate)
                bin_level[row] += weight * min(max(seasonal_r, -seasonal_bound), seasonal_bound)
            bin_count[row] += 1.0
        # 3. runs, with hysteresis: hot from a score >= alert_score until one < calm_score
        if score >= alert_score:
            hot = True
        elif score < calm_score:
            hot = False


def series_scores(ts, values, interval, floor, prior_scale, bin_rate, clip, short_term_tolerance,
                  half_score_deviation, alert_score, calm_score, baseline_age, scores=None):
    """Anomaly score in [0, 1] of each row of one time-sorted series of any units and cadence.

    ``ts`` (s) and ``values`` (float64, NaN = missing); ``interval`` the series' cadence (s),
    ``floor`` the smallest noise scale and ``prior_scale`` the noise scale assumed before any
    is learnt (both in the series' units). Two views predict each value: a short-term level
    (exponentially weighted, time constant 12 intervals but at most an hour) and a seasonal
    bin (30-minute time of day, weekday or weekend, see :func:`baseline_row`; weight
    ``bin_rate`` per day), usable once first learnt at least ``baseline_age`` s earlier. Each
    view has one noise scale, the mean absolute residual over about a day, shrunk towards
    ``prior_scale`` for the first few residuals. The deviation D is the residual in noise
    scales of the view with the smaller scale (the seasonal one for a daily rhythm, the
    short-term one for a random walk); with no usable bin, the short-term one widened by
    ``short_term_tolerance``. Score ``D^2 / (D^2 + h^2)``, ``h = half_score_deviation``.
    Residuals are clipped at ``clip`` scales before they move anything; the noise scales and
    the bins learn only from rows scoring below ``alert_score`` outside a run of high scores
    (a run ends below ``calm_score``), so an anomaly does not teach what is usual. The first
    row, rows with a NaN value and rows not newer than the previous one score 0 (a NaN value
    changes nothing). Returns ``scores`` (float64 per row).
    """
    interval, floor, prior_scale, baseline_age = _scalar_times(interval, floor, prior_scale, baseline_age)
    bin_rate, clip, short_term_tolerance, half_score_deviation, alert_score, calm_score = _scalar_times(
        bin_rate, clip, short_term_tolerance, half_score_deviation, alert_score, calm_score)
    if interval <= 0 or floor <= 0 or prior_scale <= 0 or half_score_deviation <= 0 or short_term_tolerance <= 0:
        raise ValueError("interval, floor, prior_scale, half_score_deviation and short_term_tolerance must be > 0")
    if not 0 < bin_rate <= 1:
        raise ValueError("bin_rate must be in (0, 1]")
    _check("ts", ts, np.float64)
    n = ts.shape[0]
    _check("values", values, np.float64, n)
    if scores is None:
        scores = np.empty(n, dtype=np.float64)
    else:
        _check("scores", scores, np.float64, n)
    _series_scores(ts, values, interval, floor, prior_scale, bin_rate, clip, short_term_tolerance,
                   half_score_deviation, alert_score, calm_score, baseline_age, scores)
    return scores


def warm_up_traffic() -> None:
    """Compile (or load from cache) every traffic kernel on tiny inputs."""
    f = lambda: np.full(1, np.nan)  # noqa: E731
    i = np.zeros(1, dtype=np.int32)
    t = np.zeros(1)
    apply_traffic_readings(i, t, i.copy(), f(), f(), f(), i.copy(), f(), f())
    update_stuck(i, t, f(), f(), f(), 1.0, 1.0, f(), f(), f(), f(), f(), f(), f(), f())
    sweep_incident(0.0, 0.2, 0.5, 1.0, 1.0, 1.0, f(), i.copy(), f(), f(), f(), f(), f(), f(), f(), f())
    rows = TRAFFIC_BASELINE_ROWS
    b = lambda: np.full(rows, np.nan)  # noqa: E731
    score_readings(i, t, (f(), f(), f()), np.ones(3), 1.0, 1.0, 0.5, 3.0, 2.0, 2.0, 0.9, 0.5, 1.0,
                   f(), (f(), f(), f()), (f(), f(), f()), (b(), b(), b()), (b(), b(), b()), b(), f(), f(),
                   f())
    score_readings(i, t, (f(),), np.ones(1), 1.0, 1.0, 0.5, 3.0, 2.0, 2.0, 0.9, 0.5, 1.0,
                   f(), (f(),), (f(),), (b(),), (b(),), b(), f(), f(), f())
    sweep_anomaly(1.0, 1.0, f(), f(), f(), f(), f(), i.copy(), f(), f(), f())
    series_scores(t, f(), 300.0, 1.0, 1.0, 0.3, 3.0, 2.0, 2.0, 0.9, 0.5, 1.0)
