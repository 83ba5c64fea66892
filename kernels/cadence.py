"""Reporting cadence: each subject's usual time between readings, learnt from its own readings.

The absence detectors (a meter, a gateway, a traffic detector, a lamp, a bin that stops
reporting) judge a silence against ``max(floor, missed_reports x cadence)``: the
detector's fixed threshold is the floor, and a sensor that reports every 6 h is silent
only after a few missed 6-hourly reports, while an hourly one still is after the floor.

State per subject (or group member, such as a gateway), fixed size whatever the history:
``cadence`` (float64 s, NaN = nothing learnt yet) and ``count`` (int32, the intervals
learnt, saturating at ``CADENCE_MIN_INTERVALS``). The subject's newest reading time is
the ``last_seen`` its domain already keeps. Learning from one interval of ``x`` s between
the newest reading and a newer one (constants in :mod:`kernels.config`):

1. ``x < CADENCE_MERGE_S``: the same delivery (a gateway's envelope, a retry); nothing learnt.
2. The first ``CADENCE_MIN_INTERVALS`` intervals: the cadence is the shortest of them, so an
   outage right after installation teaches nothing. Until then the detectors use the floor.
3. Then ``x`` is clipped to ``CADENCE_CLIP`` cadences and the cadence moves towards it with the
   weight ``1 - exp(-x_clipped / CADENCE_MEMORY_S)``: a time-weighted mean, about the mean
   length of the interval an instant of the last day fell in. A long interval weighs more than a
   short one (a sensor that skips a few hours now and then is quieter than its median says), but
   never more than ``CADENCE_CLIP`` cadences: a silence cannot teach that silence is normal, so a
   second outage is seen like the first. A real change of rhythm is followed: a longer one within
   a few of its reports (hourly -> 6-hourly: three reports come late, then none), a shorter one
   within a day or two.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels._checks import _check, _check_writable, _out
from kernels.config import (
    ARRIVAL_FIRST, ARRIVAL_LEARNT, ARRIVAL_SAME_DELIVERY, CADENCE_CLIP, CADENCE_MEMORY_S, CADENCE_MERGE_S,
    CADENCE_MIN_INTERVALS, NJIT, SKIPPED_INVALID, SKIPPED_STALE,
)

__all__ = ["learn_cadence", "silence_limits", "warm_up_cadence"]

_NO_CADENCE = np.empty(0, dtype=np.float64)
_NO_COUNT = np.empty(0, dtype=np.int32)


@njit(**NJIT)
def _learn(s, x, cadence, count):
    """Learn one interval of ``x`` s of subject ``s``; returns ARRIVAL_LEARNT or ARRIVAL_SAME_DELIVERY."""
    if x < CADENCE_MERGE_S:
        return ARRIVAL_SAME_DELIVERY
    n = count[s]
    c = cadence[s]
    if n <= 0 or np.isnan(c):
        cadence[s] = x
        n = 0
    elif n < CADENCE_MIN_INTERVALS:
        if x < c:
            cadence[s] = x
    else:
        clipped = min(x, CADENCE_CLIP * c)
        cadence[s] = c + (1.0 - np.exp(-clipped / CADENCE_MEMORY_S)) * (clipped - c)
    if n < CADENCE_MIN_INTERVALS:
        count[s] = n + 1
    return ARRIVAL_LEARNT


@njit(**NJIT)
def _silence_limit(floor, missed_reports, cadence, count, s):
    """Seconds without a reading after which subject ``s`` is silent: the floor, or ``missed_reports``
    learnt cadences when that is longer and the cadence has been learnt. Empty arrays: the floor."""
    if s >= 0 and s < cadence.shape[0] and count[s] >= CADENCE_MIN_INTERVALS:
        learnt = missed_reports * cadence[s]
        if learnt > floor:   # NaN-safe: a NaN cadence leaves the floor
            return learnt
    return floor


@njit(**NJIT)
def _learn_cadence(slot, ts, last_seen, newest, cadence, count, out):
    m = last_seen.shape[0]
    for i in range(slot.shape[0]):     # the newest reading before the batch (a no-op when folding)
        s = slot[i]
        if s >= 0 and s < m:
            newest[s] = last_seen[s]
    for i in range(slot.shape[0]):
        s = slot[i]
        t = ts[i]
        if s < 0 or s >= m or not np.isfinite(t):
            out[i] = SKIPPED_INVALID
            continue
        before = newest[s]
        if t <= before:                # NaN compares False: a first reading is newer
            out[i] = SKIPPED_STALE
            continue
        newest[s] = t
        if np.isnan(before):
            out[i] = ARRIVAL_FIRST
        else:
            out[i] = _learn(s, t - before, cadence, count)


def learn_cadence(slot, ts, last_seen, cadence, count, fold=False, out=None):
    """Learn each subject's cadence from a batch of readings, in the order given (time-sorted).

    Per reading: ``slot`` int32 subject slot, ``ts`` float64 event time (s). Per subject:
    ``last_seen`` (s, NaN = never), ``cadence`` (s, NaN = not learnt) and ``count`` (int32),
    the last two updated in place. A reading counts when it is newer than the subject's newest
    one (the same rule as every domain's reading update): stale and invalid ones teach nothing.

    ``fold=False``: ``last_seen`` is only read (the domain's own reading kernel folds the batch in
    afterwards); ``fold=True``: ``last_seen`` is updated too (a domain with no other reading
    state). Returns int8 per reading: ARRIVAL_LEARNT, ARRIVAL_SAME_DELIVERY, ARRIVAL_FIRST,
    SKIPPED_STALE or SKIPPED_INVALID.
    """
    _check("slot", slot, np.int32)
    n = slot.shape[0]
    _check("ts", ts, np.float64, n)
    _check("last_seen", last_seen, np.float64)
    m = last_seen.shape[0]
    _check("cadence", cadence, np.float64, m)
    _check("count", count, np.int32, m)
    _check_writable("cadence", cadence)
    _check_writable("count", count)
    if fold:
        _check_writable("last_seen", last_seen)
    newest = last_seen if fold else np.empty(m, dtype=np.float64)
    out = _out(out, n)
    _learn_cadence(slot, ts, last_seen, newest, cadence, count, out)
    return out


def cadence_arguments(cadence, count, missed_reports, n: int):
    """Validate a sweep's optional cadence: ``(cadence, count, missed_reports)`` for the kernel.

    Both arrays None: no cadence, the floor alone. Otherwise float64 and int32 arrays of one
    element per subject (``n``) and ``missed_reports`` a finite number >= 0.
    """
    if cadence is None and count is None:
        return _NO_CADENCE, _NO_COUNT, 0.0
    if cadence is None or count is None:
        raise ValueError("cadence and cadence_count go together")
    _check("cadence", cadence, np.float64, n)
    _check("cadence_count", count, np.int32, n)
    missed_reports = float(missed_reports)
    if not (np.isfinite(missed_reports) and missed_reports >= 0.0):
        raise ValueError(f"missed_reports must be a finite number >= 0, got {missed_reports}")
    return cadence, count, missed_reports


@njit(**NJIT)
def _silence_limits(floor, missed_reports, cadence, count, out):
    for s in range(out.shape[0]):
        out[s] = _silence_limit(floor, missed_reports, cadence, count, s)


def silence_limits(floor, missed_reports, cadence, count, out=None):
    """Per subject, the seconds without a reading after which it is silent (float64):
    ``max(floor, missed_reports x cadence)`` once ``CADENCE_MIN_INTERVALS`` intervals are learnt,
    else ``floor`` (s)."""
    floor = float(floor)
    if not np.isfinite(floor):
        raise ValueError(f"the floor must be finite seconds, got {floor}")
    _check("cadence", cadence, np.float64)
    n = cadence.shape[0]
    cadence, count, missed_reports = cadence_arguments(cadence, count, missed_reports, n)
    if out is None:
        out = np.empty(n, dtype=np.float64)
    else:
        _check("out", out, np.float64, n)
    _silence_limits(floor, missed_reports, cadence, count, out)
    return out


def warm_up_cadence() -> None:
    f = np.full(1, np.nan)
    i = np.zeros(1, dtype=np.int32)
    learn_cadence(i, np.zeros(1), f.copy(), f.copy(), i.copy())
    learn_cadence(i, np.zeros(1), f.copy(), f.copy(), i.copy(), fold=True)
    silence_limits(1.0, 1.0, f.copy(), i.copy())
