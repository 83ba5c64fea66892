"""The absence sweep shared by every "has it gone quiet?" detector (gateways, traffic detectors).

A subject whose newest reading is at least ``silent_after`` seconds older than the
watermark opens an episode (``since`` = that newest reading time); any newer
reading closes it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels._checks import _check, _check_writable, _out, _scalar_times
from kernels.config import CLEARED, NJIT, NO_CHANGE, RAISED

__all__ = ["sweep_absence", "warm_up_absence"]


@njit(**NJIT)
def _sweep_absence(watermark, silent_after, last_seen, since, out):
    for s in range(last_seen.shape[0]):
        out[s] = NO_CHANGE
        seen = last_seen[s]
        if np.isnan(seen):
            continue
        if np.isnan(since[s]):
            if watermark - seen >= silent_after:
                since[s] = seen
                out[s] = RAISED
        elif seen > since[s]:
            since[s] = np.nan
            out[s] = CLEARED


def sweep_absence(watermark, silent_after, last_seen, since, out=None):
    """Open or close absence episodes at event time ``watermark`` (s); ``silent_after`` in s.

    ``last_seen`` (s, NaN = never) and ``since`` (s, NaN = no open episode; updated in
    place) have one element per subject. Returns int8 per subject: NO_CHANGE, RAISED,
    CLEARED.
    """
    watermark, silent_after = _scalar_times(watermark, silent_after)
    _check("last_seen", last_seen, np.float64)
    n = last_seen.shape[0]
    _check("since", since, np.float64, n)
    _check_writable("since", since)
    out = _out(out, n)
    _sweep_absence(watermark, silent_after, last_seen, since, out)
    return out


def warm_up_absence() -> None:
    f = np.full(1, np.nan)
    sweep_absence(0.0, 1.0, f.copy(), f.copy())
