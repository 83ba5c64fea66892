"""Household routine kernel: at what hours of the day a household uses water, and a change of it.

Per meter (slot), each reading closes an interval since the meter's previous reading; the
interval's use (the rise of the cumulative index, m3) is filed under the four-hour bin of the
UTC day holding the interval's middle (``ROUTINE_BINS`` bins of ``ROUTINE_BIN_S`` s). Intervals
longer than ``max_interval`` s (a missed report: the hour of their use is not known) or running
backwards (a meter swap, reverse flow) are not filed. A day is *closed* by the meter's first
reading at or after the following midnight (UTC; the city clock is UTC, so a day runs from
00:00 to 24:00 UTC, not local time), and judged only when the intervals filed into it cover at
least ``min_coverage`` s and hold at least ``min_daily_use`` m3: a day mostly away or without
readings has no rhythm to compare. Such a day is skipped: it teaches nothing and neither
extends nor breaks a run.

Of a usable day, with ``p`` its shares of use per bin:

1. the *recent* routine ``r`` follows the last few days: ``r = (1 - recent_weight) r + recent_weight p``
   (``r = p`` on the first day), so one odd day moves it half-way and a lasting change fully;
2. once the usual routine holds ``spread_after`` days, the *distance* ``d`` between ``r`` and the usual
   routine ``u`` is the Hellinger distance ``sqrt(1 - sum_b sqrt(r_b u_b))`` (0: the same shares,
   1: no bin in common);
3. the household's own *spread* of that distance is learnt: an exponentially weighted mean and mean
   square of ``d`` (a plain mean over the first days, then about ``spread_days`` days), from days that
   were not unusual. A day is *unusual* once the usual routine holds ``warmup`` days, when ``d`` exceeds
   both ``min_distance`` and the spread's mean plus ``unusual_spread`` standard deviations: a household
   with a loose routine is judged by its own looseness;
4. ``consecutive`` unusual days in a row open an episode (RAISED; its start is 00:00 UTC of the run's
   first unusual day); while one is open, the first day that is not unusual closes it (CLEARED);
5. the usual routine learns the day: ``u = (1 - w) u + w p`` with ``w = max(1 / (days + 1), alpha)``,
   ``alpha = 1 - 2 ** (-1 / half_life)`` (a plain mean of the first days, then a half-life of
   ``half_life`` days) -- except the days of an open episode, so a week of another rhythm does not make
   the return to the usual one look like a change. A run of ``adapt`` unusual days is a new routine:
   the usual routine becomes the recent one, and the next day, no longer unusual, closes the episode.
   (On the real DAIAD households, with a week of shifted rhythm injected into each, learning every day
   raised again on some returns, and learning no unusual day raised more than twice as often.)

State is fixed-size per meter: the ``SLOT_FIELDS`` arrays (float64, one element per slot) and three
tuples of ``ROUTINE_BINS`` arrays: today's use per bin (m3), the usual and the recent shares. Times
are epoch seconds (float64, UTC); NaN in a time means "never" / "no open episode".
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from kernels._checks import _check, _check_writable, _out, _scalar_times
from kernels.config import CLEARED, MIN_USE_M3, NJIT, NO_CHANGE, RAISED, ROUTINE_BIN_S, ROUTINE_BINS, ROUTINE_DAY_S

__all__ = ["SLOT_FIELDS", "BIN_FIELDS", "field_fill", "new_routine_state", "routine_change", "warm_up_routine"]

#: Per meter: the previous reading (s, m3), the UTC day being gathered (day number: epoch s // 86400) and the
#: seconds of intervals filed into it, the days learnt into the usual routine, the spread's days, mean and mean
#: square (of the distance), the run of unusual days (count, start s) and the open episode's start (s).
SLOT_FIELDS = ("prev_ts", "prev_index", "day", "covered", "days", "spread_days", "spread_mean", "spread_square",
               "run", "run_start", "since")
#: Per meter and bin: today's use (m3), the usual and the recent share of a day's use.
BIN_FIELDS = ("today", "usual", "recent")

(PREV_TS, PREV_INDEX, DAY, COVERED, DAYS, SPREAD_DAYS, SPREAD_MEAN, SPREAD_SQUARE, RUN, RUN_START,
 SINCE) = range(len(SLOT_FIELDS))

_NAN_FILLED = {"prev_ts", "prev_index", "day", "run_start", "since"}


def field_fill(name: str) -> float:
    """Initial value of a state field: NaN for times and the day, 0.0 for counts, sums and shares."""
    return np.nan if name in _NAN_FILLED else 0.0


def new_routine_state(slots: int) -> tuple[tuple, tuple, tuple, tuple]:
    """Fresh state for ``slots`` meters: (slot fields, today, usual, recent) tuples of arrays."""
    fields = tuple(np.full(slots, field_fill(name), dtype=np.float64) for name in SLOT_FIELDS)
    return (fields, *(tuple(np.zeros(slots) for _ in range(ROUTINE_BINS)) for _ in BIN_FIELDS))


@njit(**NJIT)
def _file(s, middle, day, use, dt, fields, today):
    """Add an interval's use (m3) and length (s) to the day's bin holding its ``middle`` (s)."""
    b = int((middle - day * ROUTINE_DAY_S) // ROUTINE_BIN_S)
    if b >= ROUTINE_BINS:
        b = ROUTINE_BINS - 1
    today[b][s] += use
    fields[COVERED][s] += dt


@njit(**NJIT)
def _hellinger(s, recent, usual):
    overlap = 0.0
    for b in range(ROUTINE_BINS):
        overlap += math.sqrt(recent[b][s] * usual[b][s])
    return math.sqrt(max(0.0, 1.0 - overlap))


@njit(**NJIT)
def _close_day(s, i, alpha, warmup, spread_after, recent_weight, spread_weight, unusual_spread, min_distance,
               consecutive, adapt, min_daily_use, min_coverage, fields, today, usual, recent, out, starts,
               distances):
    """Judge and learn the day gathered for meter ``s`` (see the module docstring); writes item ``i``."""
    total = 0.0
    for b in range(ROUTINE_BINS):
        total += today[b][s]
    if fields[COVERED][s] < min_coverage or not total >= min_daily_use or not total > 0.0:
        return                                  # too little known or used that day: skipped
    days = fields[DAYS][s]
    for b in range(ROUTINE_BINS):
        share = today[b][s] / total
        if days == 0.0:
            recent[b][s] = share
        else:
            recent[b][s] = (1.0 - recent_weight) * recent[b][s] + recent_weight * share
    learn = True
    if days >= spread_after:
        d = _hellinger(s, recent, usual)
        distances[i] = d
        mean = fields[SPREAD_MEAN][s]
        sd = math.sqrt(max(fields[SPREAD_SQUARE][s] - mean * mean, 0.0))
        judged = days >= warmup
        unusual = judged and d > min_distance and d > mean + unusual_spread * sd
        if not unusual:                         # the spread learns from days that were not unusual
            n = fields[SPREAD_DAYS][s]
            w = max(1.0 / (n + 1.0), spread_weight)
            fields[SPREAD_MEAN][s] = (1.0 - w) * mean + w * d
            fields[SPREAD_SQUARE][s] = (1.0 - w) * fields[SPREAD_SQUARE][s] + w * d * d
            fields[SPREAD_DAYS][s] = n + 1.0
        if judged:
            if unusual:
                if fields[RUN][s] == 0.0:
                    fields[RUN_START][s] = fields[DAY][s] * ROUTINE_DAY_S
                fields[RUN][s] += 1.0
                if fields[RUN][s] >= consecutive and np.isnan(fields[SINCE][s]):
                    fields[SINCE][s] = fields[RUN_START][s]
                    out[i] = RAISED
                    starts[i] = fields[SINCE][s]
                if not np.isnan(fields[SINCE][s]):
                    learn = False               # an episode's days do not teach the usual routine ...
                    if fields[RUN][s] >= adapt:     # ... until it has lasted: the new routine is the usual one
                        for b in range(ROUTINE_BINS):
                            usual[b][s] = recent[b][s]
            else:
                fields[RUN][s] = 0.0
                fields[RUN_START][s] = np.nan
                if not np.isnan(fields[SINCE][s]):
                    out[i] = CLEARED
                    starts[i] = fields[SINCE][s]
                    fields[SINCE][s] = np.nan
    if learn:
        w = max(1.0 / (days + 1.0), alpha)
        for b in range(ROUTINE_BINS):
            usual[b][s] = (1.0 - w) * usual[b][s] + w * (today[b][s] / total)
        fields[DAYS][s] = days + 1.0


@njit(**NJIT)
def _start_day(s, t, fields, today):
    fields[DAY][s] = math.floor(t / ROUTINE_DAY_S)
    fields[COVERED][s] = 0.0
    for b in range(ROUTINE_BINS):
        today[b][s] = 0.0


@njit(**NJIT)
def _routine_change(slot, ts, index, alpha, warmup, spread_after, recent_weight, spread_weight, unusual_spread,
                    min_distance, consecutive, adapt, min_daily_use, min_coverage, max_interval, fields, today, usual,
                    recent, out, starts, distances):
    n_meters = fields[PREV_TS].shape[0]
    for i in range(slot.shape[0]):
        out[i] = NO_CHANGE
        starts[i] = np.nan
        distances[i] = np.nan
        s = slot[i]
        t = ts[i]
        x = index[i]
        if s < 0 or s >= n_meters or not np.isfinite(t) or not np.isfinite(x):
            continue
        t0 = fields[PREV_TS][s]
        if np.isnan(t0) or np.isnan(fields[DAY][s]):
            fields[PREV_TS][s] = t              # the first reading: a baseline, and its day begins
            fields[PREV_INDEX][s] = x
            _start_day(s, t, fields, today)
            continue
        if t <= t0:
            continue                            # stale or duplicate
        rise = x - fields[PREV_INDEX][s]
        fields[PREV_TS][s] = t
        fields[PREV_INDEX][s] = x
        dt = t - t0
        middle = t - dt / 2.0
        middle_day = math.floor(middle / ROUTINE_DAY_S)
        filed = dt <= max_interval and rise > -MIN_USE_M3
        use = max(rise, 0.0)
        if filed and middle_day == fields[DAY][s]:
            _file(s, middle, middle_day, use, dt, fields, today)
        if t >= (fields[DAY][s] + 1.0) * ROUTINE_DAY_S:     # past the day's midnight: the day is complete
            _close_day(s, i, alpha, warmup, spread_after, recent_weight, spread_weight, unusual_spread, min_distance,
                       consecutive, adapt, min_daily_use, min_coverage, fields, today, usual, recent, out, starts,
                       distances)
            _start_day(s, t, fields, today)
            if filed and middle_day == fields[DAY][s]:     # an interval across midnight, its middle after it
                _file(s, middle, middle_day, use, dt, fields, today)


def _check_state(fields, today, usual, recent) -> int:
    fields = tuple(fields)
    if len(fields) != len(SLOT_FIELDS):
        raise ValueError(f"state needs {len(SLOT_FIELDS)} slot arrays ({', '.join(SLOT_FIELDS)})")
    _check(SLOT_FIELDS[0], fields[0], np.float64)
    m = fields[0].shape[0]
    for name, array in zip(SLOT_FIELDS, fields):
        _check(name, array, np.float64, m)
        _check_writable(name, array)
    for name, arrays in zip(BIN_FIELDS, (today, usual, recent)):
        arrays = tuple(arrays)
        if len(arrays) != ROUTINE_BINS:
            raise ValueError(f"{name} needs {ROUTINE_BINS} arrays (one per bin), got {len(arrays)}")
        for array in arrays:
            _check(name, array, np.float64, m)
            _check_writable(name, array)
    return m


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def routine_change(slot, ts, index, half_life, warmup, spread_after, recent_weight, spread_days, unusual_spread,
                   min_distance, consecutive, adapt, min_daily_use, min_coverage, max_interval, fields, today, usual,
                   recent, out=None, starts=None, distances=None):
    """Fold a time-sorted batch of meter readings into the meters' daily routines and report, per
    reading, the change-of-routine episode it opened or closed (see the module docstring).

    Per reading: ``slot`` int32, ``ts`` s, ``index`` m3 (cumulative). Thresholds: ``half_life``
    (days) of the usual routine; ``warmup`` (days learnt before a day may be unusual) and
    ``spread_after`` (days learnt before the spread of the distance is; at most ``warmup``);
    ``recent_weight`` (0-1, a day's weight in the recent routine); ``spread_days`` (memory of the
    spread, days); ``unusual_spread`` (standard deviations) and ``min_distance`` (Hellinger, 0-1);
    ``consecutive`` (unusual days that open an episode) and ``adapt`` (unusual days in a row that make
    the recent routine the usual one; at least ``consecutive``); ``min_daily_use`` (m3) and
    ``min_coverage`` (s of filed intervals) for a day to be judged; ``max_interval`` (s, the
    longest interval filed). State (in place): ``fields`` in the order of :data:`SLOT_FIELDS`, and
    ``today``, ``usual``, ``recent`` (``ROUTINE_BINS`` arrays each), e.g. from
    :func:`new_routine_state`.

    Returns ``(out, starts, distances)``: per reading int8 NO_CHANGE / RAISED / CLEARED, the
    episode start (s, NaN without a code) and the distance of the day it closed (NaN when it
    closed none, or one too short, too dry or too early to compare).
    """
    half_life, warmup, spread_after, recent_weight, spread_days, unusual_spread, min_distance, consecutive, adapt = \
        _scalar_times(half_life, warmup, spread_after, recent_weight, spread_days, unusual_spread, min_distance,
                      consecutive, adapt)
    min_daily_use, min_coverage, max_interval = _scalar_times(min_daily_use, min_coverage, max_interval)
    for name, value in (("half_life", half_life), ("recent_weight", recent_weight), ("spread_days", spread_days),
                        ("consecutive", consecutive), ("min_daily_use", min_daily_use),
                        ("max_interval", max_interval)):
        _positive(name, value)
    if not 0 <= spread_after <= warmup:
        raise ValueError(f"need 0 <= spread_after <= warmup, got {spread_after} and {warmup}")
    if not adapt >= consecutive:
        raise ValueError(f"need adapt >= consecutive, got {adapt} and {consecutive}")
    if recent_weight > 1 or spread_days < 1:
        raise ValueError("recent_weight must be within (0, 1] and spread_days >= 1")
    if unusual_spread < 0 or not 0 <= min_distance < 1 or not 0 <= min_coverage <= ROUTINE_DAY_S:
        raise ValueError("unusual_spread must be >= 0, min_distance within [0, 1), min_coverage within [0, 86400] s")
    _check("slot", slot, np.int32)
    n = slot.shape[0]
    _check("ts", ts, np.float64, n)
    _check("index", index, np.float64, n)
    _check_state(fields, today, usual, recent)
    out = _out(out, n)
    if starts is None:
        starts = np.empty(n, dtype=np.float64)
    else:
        _check("starts", starts, np.float64, n)
    if distances is None:
        distances = np.empty(n, dtype=np.float64)
    else:
        _check("distances", distances, np.float64, n)
    alpha = 1.0 - 2.0 ** (-1.0 / half_life)
    _routine_change(slot, ts, index, alpha, warmup, spread_after, recent_weight, 1.0 / spread_days, unusual_spread,
                    min_distance, consecutive, adapt, min_daily_use, min_coverage, max_interval, tuple(fields), tuple(today),
                    tuple(usual), tuple(recent), out, starts, distances)
    return out, starts, distances


def warm_up_routine() -> None:
    """Compile (or load from cache) the routine kernel on tiny inputs."""
    fields, today, usual, recent = new_routine_state(1)
    routine_change(np.zeros(2, dtype=np.int32), np.array([0.0, 3600.0]), np.zeros(2), 14.0, 14.0, 7.0, 0.5, 30.0,
                   3.0, 0.2, 3.0, 14.0, 0.02, 72000.0, 5400.0, fields, today, usual, recent)
