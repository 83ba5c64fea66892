"""Traffic kernels: detector state, stuck and incident episodes, the anomaly score's channels.

The anomaly score itself is the shared series scorer (:mod:`kernels.series`).

State is columnar: one float64/int32 array per field, indexed by a traffic detector's
slot (or a road segment's slot). Times are epoch seconds (float64, UTC); ``NaN`` in a
time array means "never" (never seen / no open episode / no run going on).

Units of the readings: ``intensity`` vehicles per observation interval, ``occupancy`` a
fraction 0-1, ``averageVehicleSpeed`` km/h, ``positionAlongSegment`` metres in the
direction of travel (a smaller position is upstream).
"""

from __future__ import annotations


import numpy as np
from numba import njit

from kernels.config import (
    CLEARED, NJIT, NO_CHANGE, OCCUPANCY_LOG_OFFSET, RAISED, READING_APPLIED, SKIPPED_INVALID, SKIPPED_STALE,
    SPEED_LOG_OFFSET_KMH,
)
from kernels._checks import _check, _check_writable, _out, _scalar_times

__all__ = ["apply_traffic_readings", "update_stuck", "adjacent_downstream",
           "sweep_incident", "traffic_channels", "warm_up_traffic"]


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
def _update_stuck(slot, ts, intensity, occupancy, speed, new, prev_ts, prev_occupancy, flat_after, impossible_after,
                  prev_intensity, prev_speed, flat_since, impossible_since, stuck_since, stuck_ended, codes, starts):
    for i in range(slot.shape[0]):
        codes[i] = NO_CHANGE
        starts[i] = np.nan
        if not new[i]:
            continue
        s = slot[i]
        t = ts[i]
        q = intensity[i]
        o = occupancy[i]
        v = speed[i]
        repeated = (not np.isnan(prev_ts[i]) and q > 0.0 and q == prev_intensity[s]
                    and _same(o, prev_occupancy[i]) and _same(v, prev_speed[s]))
        if repeated:
            if np.isnan(flat_since[s]):
                flat_since[s] = prev_ts[i]   # the run began with the previous, identical reading
        else:
            flat_since[s] = np.nan
        if q == 0.0 and v > 0.0:         # a mean speed over no vehicles
            if np.isnan(impossible_since[s]):
                impossible_since[s] = t
        else:
            impossible_since[s] = np.nan
        prev_intensity[s] = q
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


def update_stuck(slot, ts, intensity, occupancy, speed, new, prev_ts, prev_occupancy, flat_after, impossible_after,
                 prev_intensity, prev_speed, flat_since, impossible_since, stuck_since, stuck_ended,
                 codes=None, starts=None):
    """Fold time-sorted readings into the stuck-sensor state; report opened and closed episodes.

    A detector is *flat* while it repeats exactly the same (intensity > 0, occupancy,
    speed) as its previous reading; ``flat_since`` is the time of the first reading of
    the run. It is *impossible* while it reports a speed (> 0 km/h) with no vehicle
    counted; ``impossible_since`` is the first such reading. An episode opens on the
    reading at which a flat run has lasted ``flat_after`` s or an impossible run
    ``impossible_after`` s (episode start = the run's start) and closes on the first
    reading that is neither repeated nor impossible (``stuck_ended`` = its time).
    A run of zero counts is a quiet road, not a flat run. Readings not newer than the
    detector's last one are ignored: per reading the domain tracker's facts
    (:func:`kernels.previous_readings`) ``new`` (bool), ``prev_ts`` (s, the detector's previous
    reading, NaN for its first) and ``prev_occupancy`` (that reading's occupancy); per detector
    ``prev_intensity`` and ``prev_speed`` of its previous reading are this kernel's own. Returns (``codes`` int8, ``starts`` float64) per
    reading: RAISED / CLEARED with the episode start, NO_CHANGE with NaN.
    """
    flat_after, impossible_after = _scalar_times(flat_after, impossible_after)
    _check("slot", slot, np.int32)
    n = slot.shape[0]
    for name, arr in (("ts", ts), ("intensity", intensity), ("occupancy", occupancy), ("speed", speed)):
        _check(name, arr, np.float64, n)
    _check("new", new, np.bool_, n)
    _check("prev_ts", prev_ts, np.float64, n)
    _check("prev_occupancy", prev_occupancy, np.float64, n)
    _check("prev_intensity", prev_intensity, np.float64)
    m = prev_intensity.shape[0]
    fresh = slot[new]
    if fresh.size and (int(fresh.min()) < 0 or int(fresh.max()) >= m):
        raise ValueError(f"a new reading's slot is outside the {m} detectors' state")
    for name, arr in (("prev_intensity", prev_intensity), ("prev_speed", prev_speed), ("flat_since", flat_since),
                      ("impossible_since", impossible_since), ("stuck_since", stuck_since),
                      ("stuck_ended", stuck_ended)):
        _check(name, arr, np.float64, m)
        _check_writable(name, arr)
    codes = _out(codes, n)
    if starts is None:
        starts = np.empty(n, dtype=np.float64)
    else:
        _check("starts", starts, np.float64, n)
    _update_stuck(slot, ts, intensity, occupancy, speed, new, prev_ts, prev_occupancy, flat_after, impossible_after,
                  prev_intensity, prev_speed, flat_since, impossible_since, stuck_since, stuck_ended, codes, starts)
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


def warm_up_traffic() -> None:
    """Compile (or load from cache) every traffic kernel on tiny inputs."""
    f = lambda: np.full(1, np.nan)  # noqa: E731
    i = np.zeros(1, dtype=np.int32)
    t = np.zeros(1)
    apply_traffic_readings(i, t, i.copy(), f(), f(), f(), i.copy(), f(), f())
    update_stuck(i, t, f(), f(), f(), np.ones(1, dtype=np.bool_), f(), f(), 1.0, 1.0, f(), f(), f(), f(), f(), f())
    sweep_incident(0.0, 0.2, 0.5, 1.0, 1.0, 1.0, f(), i.copy(), f(), f(), f(), f(), f(), f(), f(), f())
