"""Searching a sweep's ticks (``@njit``, inlined by Numba): the multi-tick sweeps' building blocks.

Between two reading cut points a sweep's inputs do not change, so each condition a sweep checks
at a tick ``T`` is monotone in ``T`` (``T - seen >= limit`` stays true once true): the first tick
where it holds is found by bisection, with the very comparison a single-tick sweep makes, so the
tick found is the one a tick-by-tick sweep finds.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.config import NJIT

__all__ = ["_first_elapsed", "_first_not_before"]


@njit(**NJIT)
def _first_elapsed(ticks, lo, since, wait):
    """The first index ``k >= lo`` with ``ticks[k] - since >= wait`` (ticks increasing), else
    ``len(ticks)``; NaN ``since`` or ``wait`` never elapses."""
    hi = ticks.shape[0]
    if np.isnan(since) or np.isnan(wait):
        return hi
    while lo < hi:
        mid = (lo + hi) // 2
        if ticks[mid] - since >= wait:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(**NJIT)
def _first_not_before(ticks, lo, at):
    """The first index ``k >= lo`` with ``not (at > ticks[k])`` — the first tick at or after ``at``;
    NaN ``at`` (a time not known) gives ``lo``."""
    hi = ticks.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if not at > ticks[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo
