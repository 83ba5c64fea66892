"""Run a sweep kernel and turn its per-subject codes into :class:`Transition` values."""

from __future__ import annotations

import numpy as np

from kernels.config import CLEARED, RAISED, REOPENED
from streams.detectors.base import Transition

__all__ = ["tick_transitions", "transitions"]


def tick_transitions(detector: str, keys: list[str], since: np.ndarray, ticks: np.ndarray, run_kernel,
                     ended_by: np.ndarray | None = None) -> list[tuple[int, Transition]]:
    """Call ``run_kernel(raised_at)`` — a sweep over the event times ``ticks`` (s) that updates ``since``
    in place, fills ``raised_at`` (int32 per subject: the index of the tick its episode opened at, -1 =
    none) and returns codes — and report ``(tick index, transition)`` pairs, in the order sweeping the
    ticks one by one reports them (by tick, then by subject): each opened episode with its new start,
    each closed one with its old start.

    A raise happens at its tick. A clear (always at the first tick: between two reading cut points
    nothing else ends an episode) is timed by what ended it: ``ended_by`` (s per slot, e.g. the newest
    reading of a silent meter) when that reading is dated after the tick — a sweep already sees
    readings up to the allowed lateness past its tick — else the tick. An alert never predates its cause.
    """
    before = since.copy()
    raised_at = np.full(since.shape[0], -1, dtype=np.int32)
    codes = run_kernel(raised_at)
    first = float(ticks[0]) if len(ticks) else np.nan
    found = []
    for slot in np.flatnonzero(codes):
        code = codes[slot]
        if code == CLEARED or code == REOPENED:
            at = first
            if ended_by is not None and ended_by[slot] > first:
                at = float(ended_by[slot])
            found.append((0, slot, Transition(detector, keys[slot], "cleared", float(before[slot]), at)))
        if code == RAISED or code == REOPENED:
            k = max(int(raised_at[slot]), 0)      # a one-tick kernel that leaves raised_at alone: its tick
            found.append((k, slot, Transition(detector, keys[slot], "raised", float(since[slot]), float(ticks[k]))))
    if len(ticks) > 1:
        found.sort(key=lambda item: (item[0], item[1]))
    return [(k, t) for k, _slot, t in found]


def transitions(detector: str, keys: list[str], since: np.ndarray, watermark: float, run_kernel,
                ended_by: np.ndarray | None = None) -> list[Transition]:
    """:func:`tick_transitions` of a one-tick sweep at ``watermark`` (s) whose ``run_kernel()`` takes no
    argument (a detector that sweeps tick by tick)."""
    found = tick_transitions(detector, keys, since, np.array([float(watermark)]), lambda _raised_at: run_kernel(),
                             ended_by)
    return [t for _k, t in found]
