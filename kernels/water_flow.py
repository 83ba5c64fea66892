"""Water flow kernels: continuous flow, bursts, backflow, device alarms, district night flow.

Every kernel here folds a time-sorted batch of hourly-or-so meter readings into
per-meter state arrays (indexed by a meter's slot) and reports, per reading, the
episode it opened or closed. None keeps a copy of the meter's previous reading: the
domain's tracker works out, per reading, the previous reading's time ``prev_ts`` (s)
and index ``prev_index`` (m3) and whether the reading is ``new`` (later than the
previous one; :func:`kernels.previous_readings`), and every kernel takes those arrays.
Times are epoch seconds (float64, UTC), volumes m3, flows m3/h. ``NaN`` in a time
array means "never" / "no open episode".

Per-reading outputs: ``out`` int8 (NO_CHANGE, RAISED, CLEARED; for device alarms
a bit set, see :data:`ALARM_RAISED`) and ``starts`` float64 (the episode start
of a transition, s).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.config import CLEARED, MIN_USE_M3, NJIT, NO_CHANGE, RAISED
from kernels._checks import _check, _check_writable, _out, _scalar_times

__all__ = ["DEVICE_ALARMS", "DEVICE_ALARM_CODES", "NIGHT_BINS", "NIGHT_HISTORY", "ALARM_RAISED", "ALARM_CLEARED",
           "continuous_flow", "burst", "backflow", "device_alarm", "night_flow_accumulate", "sweep_night_flow",
           "warm_up_flow"]

#: The meter alarm codes a reading may carry in ``deviceAlarm`` -- the one place they are defined.
#: ``none`` (0) no alarm; ``leak`` the meter's own continuous-flow (LEAK) alarm; ``burst`` flow above the
#: meter's burst limit; ``dry`` no water in the pipe (air, empty pipe); ``reverse`` water flowing
#: backwards; ``tamper`` magnetic or mechanical tampering, module removed.
DEVICE_ALARMS = ("none", "leak", "burst", "dry", "reverse", "tamper")
DEVICE_ALARM_CODES = {name: code for code, name in enumerate(DEVICE_ALARMS)}
N_DEVICE_ALARMS = len(DEVICE_ALARMS)

#: Device-alarm kernel output bits: a reading may close one alarm and open another.
ALARM_RAISED = 1
ALARM_CLEARED = 2

#: The night window holds two hourly bins (02:00-03:00 and 03:00-04:00 by default).
NIGHT_BINS = 2
#: Nights of minimum night flow kept per district for its rolling level (one week).
NIGHT_HISTORY = 7
DAY_S = 86400.0
HOUR_S = 3600.0


@njit(**NJIT)
def _closed_interval(i, s, n_meters, t, x, prev_ts, prev_index, new):
    """Whether reading ``i`` of meter ``s`` counts (valid and new), and the interval it closes: (start s,
    index at start m3) from the tracker's facts; (nan, nan) for the meter's first reading (the baseline)."""
    if s < 0 or s >= n_meters or not new[i] or not np.isfinite(t) or not np.isfinite(x):
        return False, np.nan, np.nan
    t0 = prev_ts[i]
    x0 = prev_index[i]
    if np.isnan(t0) or np.isnan(x0):
        return True, np.nan, np.nan
    return True, t0, x0


# --- continuous flow ------------------------------------------------------------------------------

@njit(**NJIT)
def _continuous_flow(slot, ts, index, prev_ts, prev_index, new, continuous_after, max_interval,
                     seen, flow_since, since, out, starts):
    n_meters = seen.shape[0]
    for i in range(slot.shape[0]):
        out[i] = NO_CHANGE
        starts[i] = np.nan
        s = slot[i]
        t = ts[i]
        x = index[i]
        counts, t0, x0 = _closed_interval(i, s, n_meters, t, x, prev_ts, prev_index, new)
        if not counts:
            continue
        if seen[s] == 0:
            seen[s] = 1                     # its first reading since its state was (re)set: the baseline
            continue
        if np.isnan(t0):
            continue
        rise = x - x0
        if rise >= MIN_USE_M3:
            if t - t0 > max_interval:
                flow_since[s] = np.nan      # a long gap may hide a still hour: continuity unknown
            elif np.isnan(flow_since[s]):
                flow_since[s] = t0
        elif rise <= -MIN_USE_M3:
            flow_since[s] = np.nan          # backwards (reverse flow, swap): not forward flow
        else:
            flow_since[s] = np.nan          # a still interval: the zero-flow hour the rule looks for
            if not np.isnan(since[s]):
                out[i] = CLEARED
                starts[i] = since[s]
                since[s] = np.nan
                continue
        if np.isnan(since[s]) and not np.isnan(flow_since[s]) and t - flow_since[s] >= continuous_after:
            since[s] = flow_since[s]
            out[i] = RAISED
            starts[i] = since[s]


def continuous_flow(slot, ts, index, prev_ts, prev_index, new, continuous_after, max_interval,
                    seen, flow_since, since, out=None, starts=None):
    """Continuous-flow (leak) episodes, as smart meters' LEAK alarm: no still interval for ``continuous_after`` s.

    Per reading: ``slot`` int32, ``ts`` s, ``index`` m3, and the tracker's facts ``prev_ts`` s,
    ``prev_index`` m3 (the meter's previous reading) and ``new`` bool. Per meter (in place):
    ``seen`` int8 (1 once a reading since the state was last reset set the baseline: the consent
    gate resets it with the rest, so the interval from a reading this detector was not shown is never
    judged), ``flow_since`` s
    (start of the current run of flowing intervals, NaN when the last interval was
    still), ``since`` s (open episode start). An interval counts as flowing when the
    index rose by at least MIN_USE_M3 and it lasted at most ``max_interval`` s (a
    longer one could hide a still hour and restarts the run); a still interval (any
    length) closes an episode. Returns ``(out, starts)``.
    """
    continuous_after, max_interval = _scalar_times(continuous_after, max_interval)
    n = _readings(slot, ts, index, prev_ts, prev_index, new)
    _check("seen", seen, np.int8)
    _check_writable("seen", seen)
    _meter_state(flow_since, since, length=seen.shape[0])
    out, starts = _outputs(out, starts, n)
    _continuous_flow(slot, ts, index, prev_ts, prev_index, new, continuous_after, max_interval, seen, flow_since,
                     since, out, starts)
    return out, starts


# --- burst ------------------------------------------------------------------------------------------

@njit(**NJIT)
def _burst(slot, ts, index, peak, nominal, prev_ts, prev_index, new, share, min_duration, max_interval,
           meter_nominal, high_since, since, out, starts):
    n_meters = meter_nominal.shape[0]
    for i in range(slot.shape[0]):
        out[i] = NO_CHANGE
        starts[i] = np.nan
        s = slot[i]
        t = ts[i]
        x = index[i]
        if s < 0 or s >= n_meters or not np.isfinite(t) or not np.isfinite(x):
            continue
        q = nominal[i]
        if np.isfinite(q) and q > 0.0:
            meter_nominal[s] = q          # a valid reading states its meter's nominal flow, stale or not
        _counts, t0, x0 = _closed_interval(i, s, n_meters, t, x, prev_ts, prev_index, new)
        if np.isnan(t0):
            continue
        dt = t - t0
        volume = x - x0
        q = meter_nominal[s]
        if np.isnan(q) or dt > max_interval:
            continue                        # no limit known, or too coarse to tell a burst from a day's use
        limit = share * q                   # m3/h
        needed = limit * min(dt, min_duration) / HOUR_S
        p = peak[i]
        high = volume >= needed and (np.isnan(p) or p >= limit)
        if high:
            if np.isnan(high_since[s]):
                high_since[s] = t0
            if np.isnan(since[s]) and t - high_since[s] >= min_duration:
                since[s] = high_since[s]
                out[i] = RAISED
                starts[i] = since[s]
        else:
            high_since[s] = np.nan
            if not np.isnan(since[s]):
                out[i] = CLEARED
                starts[i] = since[s]
                since[s] = np.nan


def burst(slot, ts, index, peak, nominal, prev_ts, prev_index, new, share, min_duration, max_interval,
          meter_nominal, high_since, since, out=None, starts=None):
    """Burst episodes: flow above ``share`` x the meter's nominal flow Q3 for ``min_duration`` s.

    Per reading: ``slot`` int32, ``ts`` s, ``index`` m3, ``peak`` m3/h (highest flow
    over the interval, NaN = not reported), ``nominal`` m3/h (Q3, NaN = not
    reported; the last one seen is kept in ``meter_nominal``), and the tracker's facts
    ``prev_ts``, ``prev_index``, ``new`` (:func:`continuous_flow`). An interval is high
    when its volume is at least what the limit flow delivers in ``min(interval,
    min_duration)`` and its peak (when reported) reaches the limit; a run of high
    intervals lasting ``min_duration`` s opens an episode (start = start of the run),
    the first interval that is not high closes it. Intervals longer than
    ``max_interval`` s are not judged. Returns ``(out, starts)``.
    """
    share = float(share)
    min_duration, max_interval = _scalar_times(min_duration, max_interval)
    if not share > 0:
        raise ValueError(f"share must be > 0, got {share}")
    n = _readings(slot, ts, index, prev_ts, prev_index, new)
    _check("peak", peak, np.float64, n)
    _check("nominal", nominal, np.float64, n)
    _meter_state(meter_nominal, high_since, since)
    out, starts = _outputs(out, starts, n)
    _burst(slot, ts, index, peak, nominal, prev_ts, prev_index, new, share, min_duration, max_interval,
           meter_nominal, high_since, since, out, starts)
    return out, starts


# --- backflow ---------------------------------------------------------------------------------------

@njit(**NJIT)
def _backflow(slot, ts, index, prev_ts, prev_index, new, min_drop, replacement_drop, since, out, starts):
    n_meters = since.shape[0]
    for i in range(slot.shape[0]):
        out[i] = NO_CHANGE
        starts[i] = np.nan
        s = slot[i]
        t = ts[i]
        x = index[i]
        _counts, t0, x0 = _closed_interval(i, s, n_meters, t, x, prev_ts, prev_index, new)
        if np.isnan(t0):
            continue
        drop = x0 - x
        if drop >= replacement_drop:
            continue                        # a new meter (index reset), not water flowing back
        if drop >= min_drop:
            if np.isnan(since[s]):
                since[s] = t0
                out[i] = RAISED
                starts[i] = t0
        elif not np.isnan(since[s]):
            out[i] = CLEARED
            starts[i] = since[s]
            since[s] = np.nan


def backflow(slot, ts, index, prev_ts, prev_index, new, min_drop, replacement_drop, since, out=None, starts=None):
    """Backflow episodes: the cumulative index goes down (intervals from the tracker's facts, :func:`continuous_flow`).

    An interval whose index fell by at least ``min_drop`` m3 (but less than
    ``replacement_drop`` m3, which is a meter swap and only moves the baseline)
    opens an episode (start = the previous reading's time); the first interval that
    does not fall closes it. Returns ``(out, starts)``.
    """
    min_drop, replacement_drop = _scalar_times(min_drop, replacement_drop)
    n = _readings(slot, ts, index, prev_ts, prev_index, new)
    _meter_state(since)
    out, starts = _outputs(out, starts, n)
    _backflow(slot, ts, index, prev_ts, prev_index, new, min_drop, replacement_drop, since, out, starts)
    return out, starts


# --- device alarms ----------------------------------------------------------------------------------

@njit(**NJIT)
def _device_alarm(slot, ts, alarm, new, clear_after, open_code, quiet, since, out, cleared_starts,
                  raised_starts):
    n_meters = since.shape[0]
    for i in range(slot.shape[0]):
        out[i] = 0
        cleared_starts[i] = np.nan
        raised_starts[i] = np.nan
        s = slot[i]
        t = ts[i]
        if s < 0 or s >= n_meters or not np.isfinite(t):
            continue
        if not new[i]:
            continue                        # a duplicate or out of order: not a report of the meter's now
        a = alarm[i]
        code = 0
        if np.isfinite(a) and a >= 1.0 and a < N_DEVICE_ALARMS and a == np.floor(a):
            code = int(a)
        current = open_code[s]
        if code == current:
            quiet[s] = 0.0
            continue
        if code == 0:
            quiet[s] += 1.0
            if quiet[s] < clear_after:
                continue                    # wait: one quiet reading between two alarms is not an end
        if current > 0:
            out[i] |= ALARM_CLEARED
            cleared_starts[i] = since[s]
            since[s] = np.nan
        open_code[s] = code
        quiet[s] = 0.0
        if code > 0:
            since[s] = t
            out[i] |= ALARM_RAISED
            raised_starts[i] = t


def device_alarm(slot, ts, alarm, new, clear_after, open_code, quiet, since, out=None, cleared_starts=None,
                 raised_starts=None):
    """Device-alarm episodes: one per alarm code a meter reports (codes of :data:`DEVICE_ALARMS`).

    Per reading: ``alarm`` float64 code (NaN or 0 = no alarm; unknown codes count
    as none) and the tracker's ``new`` (bool: later than the meter's previous reading; others
    are skipped). Per meter: ``open_code`` int8 (0 = none), ``quiet``
    (readings without the open alarm so far), ``since`` s. A reading with another
    alarm code closes the open episode and opens one for the new code (start = that
    reading's time); ``clear_after`` consecutive readings without any alarm close it.
    Returns ``(out, cleared_starts, raised_starts)``: ``out`` int8 bits
    ALARM_RAISED | ALARM_CLEARED.
    """
    clear_after = _scalar_times(clear_after)[0]
    n = _readings(slot, ts)
    _check("alarm", alarm, np.float64, n)
    _check("new", new, np.bool_, n)
    _check("since", since, np.float64)
    m = since.shape[0]
    _check("open_code", open_code, np.int8, m)
    _check("quiet", quiet, np.float64, m)
    for name, array in (("open_code", open_code), ("quiet", quiet), ("since", since)):
        _check_writable(name, array)
    out = _out(out, n)
    cleared_starts = _starts(cleared_starts, n, "cleared_starts")
    raised_starts = _starts(raised_starts, n, "raised_starts")
    _device_alarm(slot, ts, alarm, new, clear_after, open_code, quiet, since, out, cleared_starts,
                  raised_starts)
    return out, cleared_starts, raised_starts


# --- district night flow ----------------------------------------------------------------------------

@njit(**NJIT)
def _night_flow_accumulate(slot, ts, index, prev_ts, prev_index, new, district, night_start, max_interval,
                           night, closed, flow_sum, flow_count):
    n_districts = night.shape[0]
    for i in range(slot.shape[0]):
        s = slot[i]
        t = ts[i]
        x = index[i]
        _counts, t0, x0 = _closed_interval(i, s, 2**31 - 1, t, x, prev_ts, prev_index, new)
        if np.isnan(t0):
            continue
        dt = t - t0
        rise = x - x0
        g = district[i]
        if g < 0 or g >= n_districts or dt > max_interval or rise <= -MIN_USE_M3:
            continue
        middle = t - dt / 2.0               # the interval is filed under the hour holding its middle
        day = np.floor((middle - night_start) / DAY_S)
        offset = middle - night_start - day * DAY_S
        if offset >= NIGHT_BINS * HOUR_S:
            continue
        if not np.isnan(closed[g]) and day <= closed[g]:
            continue                        # late reading of a night already judged
        if np.isnan(night[g]) or day > night[g]:
            night[g] = day
            for b in range(NIGHT_BINS):
                flow_sum[g, b] = 0.0
                flow_count[g, b] = 0.0
        elif day < night[g]:
            continue
        b = int(offset // HOUR_S)
        flow_sum[g, b] += max(rise, 0.0) * HOUR_S / dt
        flow_count[g, b] += 1.0


def night_flow_accumulate(slot, ts, index, prev_ts, prev_index, new, district, night_start, max_interval,
                          night, closed, flow_sum, flow_count):
    """Add each reading's mean flow (m3/h) to its district's night bins.

    The night of day ``d`` is ``[d*86400 + night_start, + NIGHT_BINS h)``; an
    interval (at most ``max_interval`` s long, not running backwards) is filed under
    the hourly bin holding its middle, from the tracker's facts per reading (``prev_ts`` s,
    ``prev_index`` m3, ``new``: :func:`continuous_flow`); no per-meter state. Per district (group slot, in place): ``night`` (day number being gathered, NaN),
    ``closed`` (last day judged, NaN), ``flow_sum`` (districts, NIGHT_BINS) m3/h and
    ``flow_count`` (districts, NIGHT_BINS) readings.
    """
    night_start, max_interval = _scalar_times(night_start, max_interval)
    n = _readings(slot, ts, index, prev_ts, prev_index, new)
    _check("district", district, np.int32, n)
    _district_state(night, closed, flow_sum, flow_count)
    _night_flow_accumulate(slot, ts, index, prev_ts, prev_index, new, district, night_start, max_interval,
                           night, closed, flow_sum, flow_count)


@njit(**NJIT)
def _sweep_night_flow(watermark, night_start, close_after, min_meters, min_nights, rise_ratio, rise_margin,
                      night, closed, flow_sum, flow_count, history, nights, since, out, levels):
    for g in range(night.shape[0]):
        out[g] = NO_CHANGE
        levels[g] = np.nan
        day = night[g]
        if np.isnan(day) or watermark < day * DAY_S + night_start + NIGHT_BINS * HOUR_S + close_after:
            continue
        minimum = np.nan
        for b in range(NIGHT_BINS):
            if flow_count[g, b] >= min_meters:
                mean = flow_sum[g, b] / flow_count[g, b]
                if np.isnan(minimum) or mean < minimum:
                    minimum = mean
            flow_sum[g, b] = 0.0
            flow_count[g, b] = 0.0
        closed[g] = day
        night[g] = np.nan
        if np.isnan(minimum):
            continue                        # too few meters reported that night: not judged
        kept = int(nights[g])
        if kept >= min_nights:
            level = np.median(history[g, :kept])
            levels[g] = level
            raise_at = level * rise_ratio + rise_margin
            clear_below = (level + raise_at) / 2.0   # hysteresis: back under halfway
            if np.isnan(since[g]):
                if minimum >= raise_at:
                    since[g] = day * DAY_S + night_start
                    out[g] = RAISED
                    continue                # an abnormal night does not move the level
            elif minimum < clear_below:
                since[g] = np.nan
                out[g] = CLEARED
            else:
                continue
        if kept < history.shape[1]:
            history[g, kept] = minimum
            nights[g] = kept + 1
        else:
            for k in range(kept - 1):
                history[g, k] = history[g, k + 1]
            history[g, kept - 1] = minimum


def sweep_night_flow(watermark, night_start, close_after, min_meters, min_nights, rise_ratio, rise_margin,
                     night, closed, flow_sum, flow_count, history, nights, since, out=None, levels=None):
    """Judge each district's night once ``close_after`` s have passed after its window, at ``watermark`` (s).

    The night's minimum night flow (MNF, m3/h per meter) is the lowest hourly-bin
    mean over bins with at least ``min_meters`` readings. With at least
    ``min_nights`` normal nights kept in ``history`` (districts, NIGHT_HISTORY;
    ``nights`` = how many), the level is their median: an MNF of at least
    ``level * rise_ratio + rise_margin`` opens an episode (``since`` = the night's
    window start); while open, a night below halfway between the level and that
    bound closes it. Nights of an open episode are not kept. Returns ``(out,
    levels)``: int8 per district and the level used (m3/h, NaN if none).
    """
    watermark, night_start, close_after = _scalar_times(watermark, night_start, close_after)
    min_meters, min_nights, rise_ratio, rise_margin = _scalar_times(min_meters, min_nights, rise_ratio, rise_margin)
    if not 1 <= min_nights <= NIGHT_HISTORY:
        raise ValueError(f"min_nights must be within 1..{NIGHT_HISTORY}, got {min_nights}")
    g = _district_state(night, closed, flow_sum, flow_count)
    _check2("history", history, (g, NIGHT_HISTORY))
    for name, array in (("nights", nights), ("since", since)):
        _check(name, array, np.float64, g)
        _check_writable(name, array)
    out = _out(out, g)
    levels = _starts(levels, g, "levels")
    _sweep_night_flow(watermark, night_start, close_after, min_meters, min_nights, rise_ratio, rise_margin,
                      night, closed, flow_sum, flow_count, history, nights, since, out, levels)
    return out, levels


# --- validation helpers -----------------------------------------------------------------------------

def _readings(slot, ts, index=None, prev_ts=None, prev_index=None, new=None) -> int:
    _check("slot", slot, np.int32)
    n = slot.shape[0]
    _check("ts", ts, np.float64, n)
    if index is not None:
        _check("index", index, np.float64, n)
    if prev_ts is not None:
        _check("prev_ts", prev_ts, np.float64, n)
        _check("prev_index", prev_index, np.float64, n)
        _check("new", new, np.bool_, n)
    return n


def _meter_state(first, *others, length=None) -> None:
    _check("meter state", first, np.float64, length)
    _check_writable("meter state", first)
    for array in others:
        _check("meter state", array, np.float64, first.shape[0])
        _check_writable("meter state", array)


def _district_state(night, closed, flow_sum, flow_count) -> int:
    _check("night", night, np.float64)
    g = night.shape[0]
    _check("closed", closed, np.float64, g)
    _check2("flow_sum", flow_sum, (g, NIGHT_BINS))
    _check2("flow_count", flow_count, (g, NIGHT_BINS))
    for name, array in (("night", night), ("closed", closed), ("flow_sum", flow_sum), ("flow_count", flow_count)):
        _check_writable(name, array)
    return g


def _check2(name, array, shape) -> None:
    if not isinstance(array, np.ndarray) or array.dtype != np.float64:
        raise TypeError(f"{name} must be a float64 numpy array")
    if array.shape != shape or not array.flags.c_contiguous:
        raise ValueError(f"{name} must be a C-contiguous array of shape {shape}, got {array.shape}")


def _starts(starts, n: int, name: str = "starts") -> np.ndarray:
    if starts is None:
        return np.empty(n, dtype=np.float64)
    _check(name, starts, np.float64, n)
    return starts


def _outputs(out, starts, n: int):
    return _out(out, n), _starts(starts, n)


def warm_up_flow() -> None:
    """Compile (or load from cache) the flow kernels on tiny inputs."""
    i = np.zeros(1, dtype=np.int32)
    t = np.ones(1)
    new = np.ones(1, dtype=np.bool_)

    def f():
        return np.full(1, np.nan)

    continuous_flow(i, t, t, f(), f(), new, 1.0, 1.0, np.zeros(1, dtype=np.int8), f(), f())
    burst(i, t, t, f(), f(), f(), f(), new, 0.5, 1.0, 1.0, f(), f(), f())
    backflow(i, t, t, f(), f(), new, 1.0, 2.0, f())
    device_alarm(i, t, f(), new, 1.0, np.zeros(1, dtype=np.int8), np.zeros(1), f())
    cells = np.zeros((1, NIGHT_BINS))
    night_flow_accumulate(i, t, t, f(), f(), new, i.copy(), 0.0, 1.0, f(), f(), cells, cells.copy())
    sweep_night_flow(0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, f(), f(), cells.copy(), cells.copy(),
                     np.zeros((1, NIGHT_HISTORY)), np.zeros(1), f())
