"""Waste kernels: per-reading state of the five waste-bin detectors, and one sweep.

Times are epoch seconds (float64, UTC); ``fill`` is the Smart Data Models
``fillingLevel`` (fraction 0-1 of the bin's height); temperatures are degrees
Celsius; ``status`` is a code of :data:`kernels.config.WASTE_STATUS_CODES`.
``NaN`` in a time array means "never" (no open episode, nothing seen yet); a
NaN value in a reading means the reading lacks that field.

Every ``update_*`` kernel takes one time-sorted slice of readings (``slot``
int32 bin slot, ``ts``, value columns) with the domain tracker's facts about each
(:func:`kernels.previous_readings`: ``new`` bool, false for a reading not newer than
the bin's last one -- a duplicate, out of order, or invalid -- and, where needed,
``prev_fill``: the fill of the bin's newest earlier reading that had one), skips
readings that are not new, and writes
per reading a transition code (NO_CHANGE / RAISED / CLEARED) and the episode
start (s) into preallocated ``codes`` (int8) and ``starts`` (float64).

An *emptying* is a fall of ``fill`` by at least :data:`kernels.config.EMPTYING_DROP`
between two consecutive readings of a bin: the level itself is the evidence a
collection happened, so a lost "emptied" message cannot hide one.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.config import (
    CLEARED, EMPTYING_DROP, FILL_SLOPE_WINDOW, NJIT, NO_CHANGE, RAISED, SAME_LEVEL, STATUS_BURNING,
)
from kernels._checks import _check, _check_writable, _out, _raised_at, _scalar_times, _ticks
from kernels._ticks import _first_elapsed

__all__ = ["update_overflow", "update_fire", "update_collection_late", "sweep_collection_late",
           "update_fill_forecast", "update_stuck_level", "fill_slope_and_level", "warm_up_waste"]


# --- waste.overflow -------------------------------------------------------------------------------

@njit(**NJIT)
def _update_overflow(slot, ts, fill, new, raise_at, clear_below, overflow_since, codes, starts):
    for i in range(slot.shape[0]):
        codes[i] = NO_CHANGE
        starts[i] = np.nan
        s, t, x = slot[i], ts[i], fill[i]
        if not new[i] or np.isnan(x):
            continue
        if np.isnan(overflow_since[s]):
            if x >= raise_at:
                overflow_since[s] = t
                codes[i] = RAISED
                starts[i] = t
        elif x < clear_below:
            codes[i] = CLEARED
            starts[i] = overflow_since[s]
            overflow_since[s] = np.nan


def update_overflow(slot, ts, fill, new, raise_at, clear_below, overflow_since, codes=None, starts=None):
    """Open an overflow episode at the first reading with ``fill >= raise_at`` (fraction); close
    it at the first later reading with ``fill < clear_below`` (hysteresis: ``clear_below < raise_at``).

    ``new`` per reading (module docstring). State per bin: ``overflow_since`` (s, start of the open episode).
    Returns ``(codes, starts)`` per reading.
    """
    n = _check_readings(slot, ts, fill)
    raise_at, clear_below = _scalar_times(raise_at, clear_below)
    if not clear_below <= raise_at:
        raise ValueError(f"clear_below ({clear_below}) must not exceed raise_at ({raise_at})")
    _check_new(new, n)
    _check_state(overflow_since)
    codes, starts = _transition_out(codes, starts, n)
    _update_overflow(slot, ts, fill, new, raise_at, clear_below, overflow_since, codes, starts)
    return codes, starts


# --- waste.fire -----------------------------------------------------------------------------------

@njit(**NJIT)
def _update_fire(slot, ts, temperature, status, new, fire_c, jump_c, jump_within_s, clear_c,
                 last_temp, last_temp_ts, fire_since, codes, starts):
    for i in range(slot.shape[0]):
        codes[i] = NO_CHANGE
        starts[i] = np.nan
        s, t, x = slot[i], ts[i], temperature[i]
        if not new[i]:
            continue
        burning = status[i] == STATUS_BURNING
        hot = burning
        if np.isfinite(x):
            if x >= fire_c:
                hot = True
            elif (np.isfinite(last_temp[s]) and t - last_temp_ts[s] <= jump_within_s
                  and x - last_temp[s] >= jump_c):
                hot = True
        if np.isnan(fire_since[s]):
            if hot:
                fire_since[s] = t
                codes[i] = RAISED
                starts[i] = t
        elif not burning and np.isfinite(x) and x <= clear_c:
            codes[i] = CLEARED
            starts[i] = fire_since[s]
            fire_since[s] = np.nan
        if np.isfinite(x):
            last_temp[s] = x
            last_temp_ts[s] = t


def update_fire(slot, ts, temperature, status, new, fire_c, jump_c, jump_within_s, clear_c,
                last_temp, last_temp_ts, fire_since, codes=None, starts=None):
    """Open a fire episode at a reading whose ``temperature`` (degC) is at least ``fire_c``, or
    rose by at least ``jump_c`` since the bin's previous temperature no more than ``jump_within_s``
    (s) earlier, or whose ``status`` code is burning; close it at the first later reading that is
    not burning with ``temperature <= clear_c``.

    ``new`` per reading (module docstring). State per bin: ``last_temp`` (degC) and its time
    ``last_temp_ts`` (s) -- the newest reading *with a temperature* (the field is optional), not the
    bin's previous reading --, ``fire_since`` (s). Returns ``(codes, starts)`` per reading.
    """
    n = _check_readings(slot, ts, temperature, status)
    fire_c, jump_c, jump_within_s, clear_c = _scalar_times(fire_c, jump_c, jump_within_s, clear_c)
    if not clear_c < fire_c:
        raise ValueError(f"clear_c ({clear_c}) must be below fire_c ({fire_c})")
    _check_new(new, n)
    _check_state(last_temp, last_temp_ts, fire_since)
    codes, starts = _transition_out(codes, starts, n)
    _update_fire(slot, ts, temperature, status, new, fire_c, jump_c, jump_within_s, clear_c,
                 last_temp, last_temp_ts, fire_since, codes, starts)
    return codes, starts


# --- waste.collection_late ------------------------------------------------------------------------

@njit(**NJIT)
def _update_collection_late(slot, ts, fill, new, prev_fill, full_level, full_since, late_since, codes, starts):
    for i in range(slot.shape[0]):
        codes[i] = NO_CHANGE
        starts[i] = np.nan
        s, t, x = slot[i], ts[i], fill[i]
        if not new[i] or np.isnan(x):
            continue
        if prev_fill[i] - x >= EMPTYING_DROP:   # NaN-safe: False when there is no previous level
            full_since[s] = np.nan
            if not np.isnan(late_since[s]):
                codes[i] = CLEARED
                starts[i] = late_since[s]
                late_since[s] = np.nan
        if np.isnan(full_since[s]) and x >= full_level:
            full_since[s] = t


def update_collection_late(slot, ts, fill, new, prev_fill, full_level, full_since, late_since,
                           codes=None, starts=None):
    """Track since when each bin has been full and close late-collection episodes on emptying.

    ``full_since`` (s) is the time of the first reading with ``fill >= full_level`` since the
    bin's last emptying (a dip below the level does not reset it; only an emptying does). An
    emptying closes an open episode (``late_since``) at that reading. ``new`` and ``prev_fill``
    (fraction) per reading (module docstring). State per bin: ``full_since``, ``late_since``.
    Returns ``(codes, starts)`` per reading.
    """
    n = _check_readings(slot, ts, fill)
    full_level = _scalar_times(full_level)[0]
    _check_new(new, n)
    _check("prev_fill", prev_fill, np.float64, n)
    _check_state(full_since, late_since)
    codes, starts = _transition_out(codes, starts, n)
    _update_collection_late(slot, ts, fill, new, prev_fill, full_level, full_since, late_since, codes, starts)
    return codes, starts


@njit(**NJIT)
def _sweep_collection_late(ticks, late_after, full_since, late_since, out, raised_at):
    n = ticks.shape[0]
    for b in range(full_since.shape[0]):
        out[b] = NO_CHANGE
        raised_at[b] = -1
        if n == 0 or not np.isnan(late_since[b]) or np.isnan(full_since[b]):
            continue
        k = _first_elapsed(ticks, 0, full_since[b], late_after)
        if k < n:
            late_since[b] = full_since[b]
            out[b] = RAISED
            raised_at[b] = k


def sweep_collection_late(ticks, late_after, full_since, late_since, out=None, raised_at=None):
    """At each of the event times ``ticks`` (s; one time or a strictly increasing float64 array, with
    nothing folded in between), open a late-collection episode for every bin that has been full for at
    least ``late_after`` seconds without an emptying (``late_since`` = its ``full_since``). Returns int8
    per bin (NO_CHANGE / RAISED at ``ticks[raised_at]``; ``raised_at`` int32 per bin filled when given)."""
    ticks = _ticks(ticks)
    late_after = _scalar_times(late_after)[0]
    _check("full_since", full_since, np.float64)
    _check("late_since", late_since, np.float64, full_since.shape[0])
    _check_writable("late_since", late_since)
    out = _out(out, full_since.shape[0])
    raised_at = _raised_at(raised_at, full_since.shape[0])
    _sweep_collection_late(ticks, late_after, full_since, late_since, out, raised_at)
    return out


# --- waste.full_before_collection -------------------------------------------------------------------

@njit(**NJIT)
def _median_sorted(values, n):
    m = n // 2
    if n % 2 == 1:
        return values[m]
    return (values[m - 1] + values[m]) / 2.0


@njit(**NJIT)
def _slope_and_level(times, levels, n, scratch):
    """Theil-Sen fill rate (fraction/s) of ``n`` points and the robust level at the last point's
    time; NaN, NaN when no two points differ in time."""
    k = 0
    for a in range(n):
        for b in range(a + 1, n):
            dt = times[b] - times[a]
            if dt > 0.0:
                scratch[k] = (levels[b] - levels[a]) / dt
                k += 1
    if k == 0:
        return np.nan, np.nan
    slope = _median_sorted(np.sort(scratch[:k]), k)
    last = times[n - 1]
    for a in range(n):
        scratch[a] = levels[a] + slope * (last - times[a])
    return slope, _median_sorted(np.sort(scratch[:n]), n)


@njit(**NJIT)
def _update_fill_forecast(slot, ts, fill, next_collection, new, prev_fill, full_level, horizon_s, min_rate_per_s,
                          min_readings, count, window_t, window_f, since, codes, starts):
    size = window_t.shape[0]
    scratch = np.empty(size * size, dtype=np.float64)
    times = np.empty(size, dtype=np.float64)
    levels = np.empty(size, dtype=np.float64)
    for i in range(slot.shape[0]):
        codes[i] = NO_CHANGE
        starts[i] = np.nan
        s, t, x = slot[i], ts[i], fill[i]
        if not new[i] or np.isnan(x):
            continue
        if prev_fill[i] - x >= EMPTYING_DROP:
            count[s] = 0
            if not np.isnan(since[s]):
                codes[i] = CLEARED
                starts[i] = since[s]
                since[s] = np.nan
        n = count[s]
        if n == size:   # drop the oldest point
            for j in range(size - 1):
                window_t[j, s] = window_t[j + 1, s]
                window_f[j, s] = window_f[j + 1, s]
            n -= 1
        window_t[n, s] = t
        window_f[n, s] = x
        n += 1
        count[s] = n
        if not np.isnan(since[s]) or n < min_readings or not x < full_level:
            continue
        until_collection = next_collection[i] - t   # NaN when the reading has no schedule
        if not until_collection > 0.0:
            continue
        for j in range(n):
            times[j] = window_t[j, s]
            levels[j] = window_f[j, s]
        slope, level = _slope_and_level(times, levels, n, scratch)
        if not (slope >= min_rate_per_s and slope > 0.0 and level < full_level):
            continue
        to_full = (full_level - level) / slope
        if to_full < until_collection and to_full <= horizon_s:
            since[s] = t
            codes[i] = RAISED
            starts[i] = t


def update_fill_forecast(slot, ts, fill, next_collection, new, prev_fill, full_level, horizon_s, min_rate_per_s,
                         min_readings, count, window_t, window_f, since, codes=None, starts=None):
    """Forecast, at each reading, whether a bin will be full before its next collection.

    Per bin the kernel keeps the last ``FILL_SLOPE_WINDOW`` (time, fill) points since its last
    emptying (``window_t`` / ``window_f``, shape (window, bins); ``count`` int32 points held).
    With at least ``min_readings`` points, the Theil-Sen rate (fraction/s) and the robust level
    at the reading give the time to ``full_level``; an episode opens when the bin is still below
    ``full_level`` (the overflow detector's business above it), gains at least ``min_rate_per_s``
    and will reach ``full_level`` both before ``next_collection`` (epoch s, per reading; NaN or
    past = no forecast) and within ``horizon_s``. The next emptying closes it. ``new`` and
    ``prev_fill`` per reading (module docstring).
    Returns ``(codes, starts)`` per reading.
    """
    n = _check_readings(slot, ts, fill, next_collection)
    full_level, horizon_s, min_rate_per_s = _scalar_times(full_level, horizon_s, min_rate_per_s)
    min_readings = int(min_readings)
    if not 2 <= min_readings <= FILL_SLOPE_WINDOW:
        raise ValueError(f"min_readings must be within 2..{FILL_SLOPE_WINDOW}, got {min_readings}")
    _check_new(new, n)
    _check("prev_fill", prev_fill, np.float64, n)
    bins = _check_state(since)
    _check("count", count, np.int32, bins)
    _check_writable("count", count)
    for name, window in (("window_t", window_t), ("window_f", window_f)):
        if not isinstance(window, np.ndarray) or window.dtype != np.float64 or window.shape != (
                FILL_SLOPE_WINDOW, bins) or not window.flags.c_contiguous or not window.flags.writeable:
            raise ValueError(f"{name} must be a writable C-contiguous float64 array of shape "
                             f"({FILL_SLOPE_WINDOW}, {bins})")
    codes, starts = _transition_out(codes, starts, n)
    _update_fill_forecast(slot, ts, fill, next_collection, new, prev_fill, full_level, horizon_s, min_rate_per_s,
                          min_readings, count, window_t, window_f, since, codes, starts)
    return codes, starts


def fill_slope_and_level(times, levels):
    """Theil-Sen rate (fraction/s) and robust level at the last time of up to ``FILL_SLOPE_WINDOW``
    points (for tests and tools; the detector calls the compiled helper directly)."""
    times = np.ascontiguousarray(times, dtype=np.float64)
    levels = np.ascontiguousarray(levels, dtype=np.float64)
    if times.shape != levels.shape or times.ndim != 1 or not 1 <= times.shape[0] <= FILL_SLOPE_WINDOW:
        raise ValueError(f"need 1..{FILL_SLOPE_WINDOW} points with as many times as levels")
    n = times.shape[0]
    return _slope_and_level(times, levels, n, np.empty(n * n, dtype=np.float64))


# --- waste.sensor_fault (stuck level) ---------------------------------------------------------------

@njit(**NJIT)
def _update_stuck_level(slot, ts, fill, new, prev_fill, stuck_readings, run, run_start, since, codes, starts):
    for i in range(slot.shape[0]):
        codes[i] = NO_CHANGE
        starts[i] = np.nan
        s, t, x = slot[i], ts[i], fill[i]
        if not new[i] or np.isnan(x):
            continue
        if abs(x - prev_fill[i]) <= SAME_LEVEL:   # NaN-safe: False when there is no previous level
            run[s] += 1
        else:
            run[s] = 1
            run_start[s] = t
        if np.isnan(since[s]):
            if run[s] >= stuck_readings:
                since[s] = run_start[s]
                codes[i] = RAISED
                starts[i] = run_start[s]
        elif run[s] == 1:
            codes[i] = CLEARED
            starts[i] = since[s]
            since[s] = np.nan


def update_stuck_level(slot, ts, fill, new, prev_fill, stuck_readings, run, run_start, since,
                       codes=None, starts=None):
    """Open a stuck-sensor episode when ``stuck_readings`` consecutive readings of a bin report the
    same ``fill`` (within ``SAME_LEVEL``); episode start = the first of them. The first reading
    with another value closes it. ``new`` and ``prev_fill`` (fraction) per reading (module
    docstring). State per bin: ``run`` (int32 readings in the current run of one value), ``run_start`` (s), ``since`` (s).
    Returns ``(codes, starts)`` per reading.
    """
    n = _check_readings(slot, ts, fill)
    stuck_readings = int(stuck_readings)
    if stuck_readings < 2:
        raise ValueError(f"stuck_readings must be at least 2, got {stuck_readings}")
    _check_new(new, n)
    _check("prev_fill", prev_fill, np.float64, n)
    bins = _check_state(run_start, since)
    _check("run", run, np.int32, bins)
    _check_writable("run", run)
    codes, starts = _transition_out(codes, starts, n)
    _update_stuck_level(slot, ts, fill, new, prev_fill, stuck_readings, run, run_start, since, codes, starts)
    return codes, starts


# --- validation -------------------------------------------------------------------------------------

def _check_readings(slot, ts, *columns) -> int:
    _check("slot", slot, np.int32)
    n = slot.shape[0]
    _check("ts", ts, np.float64, n)
    for k, column in enumerate(columns):
        _check(f"column {k}", column, np.float64, n)
    return n


def _check_new(new, n: int) -> None:
    _check("new", new, np.bool_, n)


def _check_state(first, *others) -> int:
    _check("state", first, np.float64)
    _check_writable("state", first)
    n = first.shape[0]
    for k, array in enumerate(others):
        _check(f"state {k + 1}", array, np.float64, n)
        _check_writable(f"state {k + 1}", array)
    return n


def _transition_out(codes, starts, n: int):
    codes = _out(codes, n)
    if starts is None:
        starts = np.empty(n, dtype=np.float64)
    else:
        _check("starts", starts, np.float64, n)
    return codes, starts


def warm_up_waste() -> None:
    """Compile (or load from cache) every waste kernel on tiny inputs, before data waits."""
    slot = np.zeros(1, dtype=np.int32)
    one = np.zeros(1)

    def nan():
        return np.full(1, np.nan)

    new = np.ones(1, dtype=np.bool_)
    update_overflow(slot, one, one, new, 0.9, 0.7, nan())
    update_fire(slot, one, one, one, new, 60.0, 15.0, 10800.0, 30.0, nan(), nan(), nan())
    update_collection_late(slot, one, one, new, nan(), 0.75, nan(), nan())
    sweep_collection_late(0.0, 1.0, nan(), nan())
    sweep_collection_late(np.array([0.0, 300.0]), 1.0, nan(), nan())
    update_fill_forecast(slot, one, one, one, new, nan(), 0.9, 43200.0, 1e-6, 4, np.zeros(1, dtype=np.int32),
                         np.full((FILL_SLOPE_WINDOW, 1), np.nan), np.full((FILL_SLOPE_WINDOW, 1), np.nan), nan())
    update_stuck_level(slot, one, one, new, nan(), 6, np.zeros(1, dtype=np.int32), nan(), nan())
