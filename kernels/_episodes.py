"""Per-reading building blocks the event-driven kernels share (``@njit``, inlined by Numba)."""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.config import CLEARED, NJIT, RAISED

__all__ = ["_newer", "_confirmed_episode"]


@njit(**NJIT)
def _newer(s, t, last_ts):
    """True when a reading of subject ``s`` at ``t`` (s) is valid and newer than the subject's last
    one, which it then becomes; a stale, duplicate or out-of-range reading is False."""
    if s < 0 or s >= last_ts.shape[0] or not np.isfinite(t):
        return False
    if t <= last_ts[s]:   # NaN last_ts compares False: a first reading is newer
        return False
    last_ts[s] = t
    return True


@njit(**NJIT)
def _confirmed_episode(i, s, t, bad, clearing, confirm, pending_since, episode_since, codes, starts):
    """One reading of a confirm-then-raise episode for subject ``s`` at ``t`` (s).

    With an episode open, a ``clearing`` reading closes it (CLEARED, start = episode start).
    Otherwise consecutive ``bad`` readings spanning ``confirm`` s open one starting at the first
    of them (RAISED); any reading that is not bad breaks the run. Writes ``codes[i]``/``starts[i]``.
    """
    if not np.isnan(episode_since[s]):
        if clearing:
            codes[i] = CLEARED
            starts[i] = episode_since[s]
            episode_since[s] = np.nan
            pending_since[s] = np.nan
        return
    if bad:
        if np.isnan(pending_since[s]):
            pending_since[s] = t
        if t - pending_since[s] >= confirm:
            episode_since[s] = pending_since[s]
            codes[i] = RAISED
            starts[i] = pending_since[s]
    else:
        pending_since[s] = np.nan
