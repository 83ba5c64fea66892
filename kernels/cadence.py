"""Reporting cadence: each subject's usual time between readings, learnt from its own readings.

The absence detectors (a meter, a gateway, a traffic detector, a lamp, a bin that stops
reporting) judge a silence against ``max(floor, missed_reports x cadence, ...)``: the
detector's fixed threshold is the floor, and a sensor that reports every 6 h is silent
only after a few missed 6-hourly reports, while an hourly one still is after the floor.

State per subject (or group member, such as a gateway), fixed size whatever the history:
``cadence`` (float64 s, NaN = nothing learnt yet), ``count`` (int32, the intervals
learnt, saturating at ``CADENCE_MIN_INTERVALS``) and ``longest_gap`` (float64 s). The subject's newest reading time is
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
4. Every interval also updates ``longest_gap`` (float64 s, 0 = none yet): the longest interval the
   subject recovered from lately, decayed by ``exp(-x / CADENCE_GAP_MEMORY_S)`` per interval of
   ``x`` s before the larger of it and ``x`` is kept. A sensor whose readings drop out for hours
   now and then (real networks miss polls) is then silent only after ``gap_margin`` times its
   longest recent dropout, capped by the detector's ``gap_ceiling`` so a stopped sensor is always
   called within it: the same dropout is not an alert every time, and a steady sensor keeps its
   tight limit.

The silence limit of a subject, once its cadence is learnt, is
``max(floor, missed_reports x cadence, min(gap_margin x longest_gap, gap_ceiling))``; before, the
floor. The three numbers after the floor are a detector's *silence rule*
(:func:`silence_rule`): ``gap_margin = 0`` judges by the cadence alone.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels._checks import _check, _check_writable, _out
from kernels.config import (
    ARRIVAL_FIRST, ARRIVAL_LEARNT, ARRIVAL_SAME_DELIVERY, CADENCE_CLIP, CADENCE_GAP_MEMORY_S, CADENCE_MEMORY_S,
    CADENCE_MERGE_S, CADENCE_MIN_INTERVALS, NJIT, SKIPPED_INVALID, SKIPPED_STALE,
)

__all__ = ["learn_cadence", "silence_limits", "silence_rule", "warm_up_cadence"]

_NO_CADENCE = np.empty(0, dtype=np.float64)
_NO_COUNT = np.empty(0, dtype=np.int32)
_NO_GAP = np.empty(0, dtype=np.float64)


@njit(**NJIT)
def _learn(s, x, cadence, count, longest_gap):
    """Learn one interval of ``x`` s of subject ``s``; returns ARRIVAL_LEARNT or ARRIVAL_SAME_DELIVERY.
    ``longest_gap`` may be empty (not kept)."""
    if x < CADENCE_MERGE_S:
        return ARRIVAL_SAME_DELIVERY
    if s < longest_gap.shape[0]:
        kept = longest_gap[s] * np.exp(-x / CADENCE_GAP_MEMORY_S)
        longest_gap[s] = kept if kept >= x else x    # NaN (a corrupt value) is replaced
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
def _silence_limit(floor, rule, cadence, count, longest_gap, s):
    """Seconds without a reading after which subject ``s`` is silent. ``rule`` = (missed_reports,
    gap_margin, gap_ceiling s): the floor, or the longer of ``missed_reports`` learnt cadences and
    ``min(gap_margin x longest_gap, gap_ceiling)`` once the cadence is learnt. Empty arrays: the floor."""
    limit = floor
    if s >= 0 and s < cadence.shape[0] and count[s] >= CADENCE_MIN_INTERVALS:
        learnt = rule[0] * cadence[s]
        if learnt > limit:   # NaN-safe: a NaN cadence leaves the floor
            limit = learnt
        if s < longest_gap.shape[0]:
            waited = min(rule[1] * longest_gap[s], rule[2])
            if waited > limit:
                limit = waited
    return limit


@njit(**NJIT)
def _learn_cadence(slot, ts, last_seen, newest, cadence, count, longest_gap, out):
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
            out[i] = _learn(s, t - before, cadence, count, longest_gap)


def learn_cadence(slot, ts, last_seen, cadence, count, fold=False, out=None, longest_gap=None):
    """Learn each subject's cadence from a batch of readings, in the order given (time-sorted).

    Per reading: ``slot`` int32 subject slot, ``ts`` float64 event time (s). Per subject:
    ``last_seen`` (s, NaN = never), ``cadence`` (s, NaN = not learnt) and ``count`` (int32),
    the last two updated in place. A reading counts when it is newer than the subject's newest
    one (the same rule as every domain's reading update): stale and invalid ones teach nothing.

    ``fold=False``: ``last_seen`` is only read (the domain's own reading kernel folds the batch in
    afterwards); ``fold=True``: ``last_seen`` is updated too (a domain with no other reading
    state). Returns int8 per reading: ARRIVAL_LEARNT, ARRIVAL_SAME_DELIVERY, ARRIVAL_FIRST,
    SKIPPED_STALE or SKIPPED_INVALID. ``longest_gap`` (s per subject, 0 = none yet), when given,
    is updated in place too (module docstring, step 4).
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
    if longest_gap is None:
        longest_gap = _NO_GAP
    else:
        _check("longest_gap", longest_gap, np.float64, m)
        _check_writable("longest_gap", longest_gap)
    if fold:
        _check_writable("last_seen", last_seen)
    newest = last_seen if fold else np.empty(m, dtype=np.float64)
    out = _out(out, n)
    _learn_cadence(slot, ts, last_seen, newest, cadence, count, longest_gap, out)
    return out


def silence_rule(missed_reports=0.0, gap_margin=0.0, gap_ceiling=np.inf) -> tuple[float, float, float]:
    """Validate a detector's silence rule: ``missed_reports`` cadences (>= 0), ``gap_margin`` times the
    longest recent gap (>= 0; 0 = off), never more than ``gap_ceiling`` s (> 0; inf = no ceiling)."""
    missed_reports, gap_margin, gap_ceiling = float(missed_reports), float(gap_margin), float(gap_ceiling)
    if not (np.isfinite(missed_reports) and missed_reports >= 0.0):
        raise ValueError(f"missed_reports must be a finite number >= 0, got {missed_reports}")
    if not (np.isfinite(gap_margin) and gap_margin >= 0.0):
        raise ValueError(f"gap_margin must be a finite number >= 0, got {gap_margin}")
    if not gap_ceiling > 0.0:
        raise ValueError(f"gap_ceiling must be > 0 s, got {gap_ceiling}")
    return missed_reports, gap_margin, gap_ceiling


def cadence_arguments(cadence, count, missed_reports, n: int, longest_gap=None, gap_margin=0.0,
                      gap_ceiling=np.inf):
    """Validate a sweep's optional cadence: ``(cadence, count, longest_gap, rule)`` for the kernel.

    Both arrays None: no cadence, the floor alone. Otherwise float64 and int32 arrays of one
    element per subject (``n``), ``longest_gap`` None (not used) or float64 per subject, and the
    rule's numbers as :func:`silence_rule` checks them.
    """
    rule = silence_rule(missed_reports, gap_margin, gap_ceiling)
    if cadence is None and count is None:
        if longest_gap is not None:
            raise ValueError("longest_gap needs cadence and cadence_count")
        return _NO_CADENCE, _NO_COUNT, _NO_GAP, rule
    if cadence is None or count is None:
        raise ValueError("cadence and cadence_count go together")
    _check("cadence", cadence, np.float64, n)
    _check("cadence_count", count, np.int32, n)
    if longest_gap is None:
        longest_gap = _NO_GAP
    else:
        _check("longest_gap", longest_gap, np.float64, n)
    return cadence, count, longest_gap, rule


@njit(**NJIT)
def _silence_limits(floor, rule, cadence, count, longest_gap, out):
    for s in range(out.shape[0]):
        out[s] = _silence_limit(floor, rule, cadence, count, longest_gap, s)


def silence_limits(floor, missed_reports, cadence, count, out=None, *, longest_gap=None, gap_margin=0.0,
                   gap_ceiling=np.inf):
    """Per subject, the seconds without a reading after which it is silent (float64):
    ``max(floor, missed_reports x cadence, min(gap_margin x longest_gap, gap_ceiling))`` once
    ``CADENCE_MIN_INTERVALS`` intervals are learnt, else ``floor`` (s)."""
    floor = float(floor)
    if not np.isfinite(floor):
        raise ValueError(f"the floor must be finite seconds, got {floor}")
    _check("cadence", cadence, np.float64)
    n = cadence.shape[0]
    cadence, count, longest_gap, rule = cadence_arguments(cadence, count, missed_reports, n, longest_gap,
                                                          gap_margin, gap_ceiling)
    if out is None:
        out = np.empty(n, dtype=np.float64)
    else:
        _check("out", out, np.float64, n)
    _silence_limits(floor, rule, cadence, count, longest_gap, out)
    return out


def warm_up_cadence() -> None:
    f = np.full(1, np.nan)
    i = np.zeros(1, dtype=np.int32)
    learn_cadence(i, np.zeros(1), f.copy(), f.copy(), i.copy())
    learn_cadence(i, np.zeros(1), f.copy(), f.copy(), i.copy(), fold=True)
    learn_cadence(i, np.zeros(1), f.copy(), f.copy(), i.copy(), longest_gap=np.zeros(1))
    learn_cadence(i, np.zeros(1), f.copy(), f.copy(), i.copy(), fold=True, longest_gap=np.zeros(1))
    silence_limits(1.0, 1.0, f.copy(), i.copy())
    silence_limits(1.0, 1.0, f.copy(), i.copy(), longest_gap=np.zeros(1), gap_margin=1.0, gap_ceiling=2.0)
