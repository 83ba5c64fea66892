"""The absence sweep shared by every "has it gone quiet?" detector (gateways, traffic detectors, lamps, bins).

A subject whose newest reading is at least its silence limit older than the watermark
opens an episode (``since`` = that newest reading time); any newer reading closes it.
The limit is ``silent_after`` (the detector's fixed floor), or the subject's learnt limit when
that is longer: ``missed_reports`` reporting cadences, or ``gap_margin`` times its longest recent
gap up to ``gap_ceiling`` (:mod:`kernels.cadence`).

``close_absence`` closes episodes on the reading path instead, at the time of the reading
that ends them, for a feed whose readings can arrive later than the allowed lateness
(waste: a district's envelope carries readings spread over an hour), where a sweep could
only see them at a later tick.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels._checks import _check, _check_writable, _out, _raised_at, _scalar_times, _ticks
from kernels._ticks import _first_elapsed
from kernels.cadence import _silence_limit, cadence_arguments
from kernels.config import CLEARED, NJIT, NO_CHANGE, RAISED, REOPENED

__all__ = ["close_absence", "sweep_absence", "warm_up_absence"]


@njit(**NJIT)
def _sweep_absence(ticks, silent_after, rule, last_seen, cadence, count, longest_gap, since, out, raised_at):
    n = ticks.shape[0]
    for s in range(last_seen.shape[0]):
        out[s] = NO_CHANGE
        raised_at[s] = -1
        seen = last_seen[s]
        if n == 0 or np.isnan(seen):
            continue
        first = 0
        if not np.isnan(since[s]):
            if not seen > since[s]:
                continue             # open, and nothing newer: it stays open through the run
            since[s] = np.nan        # a newer reading closes it at the first tick
            out[s] = CLEARED
            first = 1
        k = _first_elapsed(ticks, first, seen, _silence_limit(silent_after, rule, cadence, count, longest_gap, s))
        if k < n:
            since[s] = seen
            raised_at[s] = k
            out[s] = REOPENED if out[s] == CLEARED else RAISED


def sweep_absence(ticks, silent_after, last_seen, since, out=None, *, cadence=None, cadence_count=None,
                  missed_reports=0.0, longest_gap=None, gap_margin=0.0, gap_ceiling=np.inf, raised_at=None):
    """Open or close absence episodes at each of the event times ``ticks`` (s) in turn; ``silent_after``
    (s) is the floor.

    ``ticks``: one time, or a float64 array, strictly increasing, between which nothing is folded
    into the state (the run of sweep steps between two reading cut points). ``last_seen`` (s, NaN =
    never) and ``since`` (s, NaN = no open episode; updated in place) have one element per subject.
    With ``cadence`` (s) and ``cadence_count`` (int32, from :func:`kernels.learn_cadence`) a subject
    is silent after ``max(silent_after, missed_reports x cadence)`` once its cadence is learnt, and
    with ``longest_gap`` (s) not before ``min(gap_margin x longest_gap, gap_ceiling)`` either.
    Returns int8 per subject: NO_CHANGE, RAISED (at ``ticks[raised_at]``), CLEARED (at the first
    tick) or REOPENED (both); ``raised_at`` (int32 per subject, -1 = no raise) is filled when given.
    The result is what sweeping the ticks one by one gives.
    """
    ticks = _ticks(ticks)
    silent_after = _scalar_times(silent_after)[0]
    _check("last_seen", last_seen, np.float64)
    n = last_seen.shape[0]
    _check("since", since, np.float64, n)
    _check_writable("since", since)
    cadence, cadence_count, longest_gap, rule = cadence_arguments(cadence, cadence_count, missed_reports, n,
                                                                  longest_gap, gap_margin, gap_ceiling)
    out = _out(out, n)
    raised_at = _raised_at(raised_at, n)
    _sweep_absence(ticks, silent_after, rule, last_seen, cadence, cadence_count, longest_gap, since, out, raised_at)
    return out


@njit(**NJIT)
def _close_absence(slot, ts, since, codes, starts):
    n = since.shape[0]
    for i in range(slot.shape[0]):
        codes[i] = NO_CHANGE
        starts[i] = np.nan
        s = slot[i]
        if s < 0 or s >= n or not np.isfinite(ts[i]):
            continue
        if not np.isnan(since[s]) and ts[i] > since[s]:
            codes[i] = CLEARED
            starts[i] = since[s]
            since[s] = np.nan


def close_absence(slot, ts, since, codes=None, starts=None):
    """Close open absence episodes with the readings that end them, in the order given.

    Per reading: ``slot`` int32, ``ts`` float64 (s). ``since`` (s per subject, NaN = no open
    episode) is updated in place: a reading newer than an episode's start closes it. Returns
    ``(codes, starts)`` per reading: CLEARED with the episode's start, else NO_CHANGE and NaN.
    """
    _check("slot", slot, np.int32)
    n = slot.shape[0]
    _check("ts", ts, np.float64, n)
    _check("since", since, np.float64)
    _check_writable("since", since)
    codes = _out(codes, n)
    if starts is None:
        starts = np.empty(n, dtype=np.float64)
    else:
        _check("starts", starts, np.float64, n)
    _close_absence(slot, ts, since, codes, starts)
    return codes, starts


def warm_up_absence() -> None:
    f = np.full(1, np.nan)
    sweep_absence(0.0, 1.0, f.copy(), f.copy())
    sweep_absence(np.array([0.0, 300.0]), 1.0, f.copy(), f.copy())
    sweep_absence(0.0, 1.0, f.copy(), f.copy(), cadence=f.copy(), cadence_count=np.zeros(1, dtype=np.int32),
                  missed_reports=1.0)
    sweep_absence(0.0, 1.0, f.copy(), f.copy(), cadence=f.copy(), cadence_count=np.zeros(1, dtype=np.int32),
                  missed_reports=1.0, longest_gap=np.zeros(1), gap_margin=1.0, gap_ceiling=2.0)
    close_absence(np.zeros(1, dtype=np.int32), np.zeros(1), f.copy())
