"""The previous reading of each reading's subject: the facts a domain's tracker keeps once.

Several detectors judge a reading against the same subject's previous one (a water meter's
interval since its last reading, a lamp's "is this reading newer"). The domain's tracker works
these facts out once per time-sorted slice, before the detectors run, and hands them to the
detectors that declare them (:mod:`streams.detectors.access`), so no detector keeps its own copy
of the previous reading.

Per reading ``i`` of subject ``s = slot[i]``:

* ``prev_ts[i]`` (s) and ``prev_value[i]``: the time and value of the subject's previous reading
  -- its newest one before ``i``: from the subject's state (``last_ts``, ``last_value``) for its
  first reading in the slice, else the newest earlier reading of the slice. NaN when the subject
  has none (its first reading ever), and NaN for a slot out of range.
* ``new[i]`` (bool): the reading counts, i.e. it is valid (finite time; with ``value_required``
  also a finite value; a slot in range) and later than the previous reading (or the first).
  A duplicate (same time) or out-of-order reading is not new, and it does not become the
  previous reading of the next one: only new readings do.
* With ``value_required=False`` a reading without a value (NaN) is new all the same; its NaN
  becomes the previous value of the next reading, unless ``finite_values``: then ``prev_value``
  is the value of the newest earlier new reading *that had one* (a bin's last known fill level
  when a reading lacked it), and a NaN value leaves ``last_value`` as it was.

State per subject: ``last_ts`` (s, NaN = never) and ``last_value``. ``fold=True`` writes the
newest reading into ``last_ts``; ``fold=False`` only reads ``last_ts`` (another of the tracker's
kernels folds it in afterwards, e.g. :func:`kernels.apply_meter_readings`). ``last_value``, when
given, is always folded (it is this kernel's). The kernel allocates no per-reading memory when
the outputs are passed in; with ``fold=False`` it uses one scratch array of ``len(last_ts)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels._checks import _check, _check_writable
from kernels.config import NJIT

__all__ = ["previous_readings", "warm_up_previous"]

_NONE = np.empty(0, dtype=np.float64)


@njit(**NJIT)
def _previous_readings(slot, ts, value, has_value, value_required, finite_values, last_ts, newest, last_value,
                       prev_ts, prev_value, new):
    m = last_ts.shape[0]
    for i in range(slot.shape[0]):      # the newest reading before the slice (a no-op when folding)
        s = slot[i]
        if s >= 0 and s < m:
            newest[s] = last_ts[s]
    for i in range(slot.shape[0]):
        s = slot[i]
        new[i] = False
        if s < 0 or s >= m:
            prev_ts[i] = np.nan
            if has_value:
                prev_value[i] = np.nan
            continue
        t0 = newest[s]
        prev_ts[i] = t0
        if has_value:
            prev_value[i] = last_value[s]
        t = ts[i]
        if not np.isfinite(t):
            continue
        if has_value and value_required and not np.isfinite(value[i]):
            continue
        if t > t0 or np.isnan(t0):
            new[i] = True
            newest[s] = t
            if has_value and not (finite_values and not np.isfinite(value[i])):
                last_value[s] = value[i]


def previous_readings(slot, ts, last_ts, value=None, last_value=None, value_required=True, fold=False,
                      prev_ts=None, prev_value=None, new=None, finite_values=False):
    """Per reading: ``(prev_ts, prev_value, new)`` (module docstring); ``prev_value`` is None
    without ``value``. ``slot`` int32, ``ts`` float64 s, ``value`` float64 per reading;
    ``last_ts`` and ``last_value`` float64 per subject (updated in place as described)."""
    _check("slot", slot, np.int32)
    n = slot.shape[0]
    _check("ts", ts, np.float64, n)
    _check("last_ts", last_ts, np.float64)
    m = last_ts.shape[0]
    if fold:
        _check_writable("last_ts", last_ts)
    has_value = value is not None
    if has_value != (last_value is not None):
        raise ValueError("value and last_value go together")
    if has_value:
        _check("value", value, np.float64, n)
        _check("last_value", last_value, np.float64, m)
        _check_writable("last_value", last_value)
        if prev_value is None:
            prev_value = np.empty(n, dtype=np.float64)
        else:
            _check("prev_value", prev_value, np.float64, n)
    if prev_ts is None:
        prev_ts = np.empty(n, dtype=np.float64)
    else:
        _check("prev_ts", prev_ts, np.float64, n)
    if new is None:
        new = np.empty(n, dtype=np.bool_)
    else:
        _check("new", new, np.bool_, n)
    newest = last_ts if fold else np.empty(m, dtype=np.float64)
    _previous_readings(slot, ts, value if has_value else _NONE, has_value, bool(value_required),
                       bool(finite_values), last_ts, newest,
                       last_value if has_value else _NONE, prev_ts, prev_value if has_value else _NONE, new)
    return prev_ts, (prev_value if has_value else None), new


def warm_up_previous() -> None:
    """Compile (or load from the cache) the kernel for every way the trackers call it."""
    i = np.zeros(1, dtype=np.int32)
    for fold in (False, True):
        previous_readings(i, np.ones(1), np.full(1, np.nan), fold=fold)
        for required, finite in ((True, False), (False, False), (False, True)):
            previous_readings(i, np.ones(1), np.full(1, np.nan), np.ones(1), np.full(1, np.nan), required, fold,
                              finite_values=finite)
