"""Run a sweep kernel and turn its per-subject codes into :class:`Transition` values."""

from __future__ import annotations

import numpy as np

from kernels.config import CLEARED, RAISED
from streams.detectors.base import Transition

__all__ = ["transitions"]


def transitions(detector: str, keys: list[str], since: np.ndarray, watermark: float, run_kernel,
                ended_by: np.ndarray | None = None) -> list[Transition]:
    """Call ``run_kernel()`` (which updates ``since`` in place and returns codes) and
    report each opened episode with its new start and each closed one with its old start.

    A raise happens at the sweep's ``watermark`` (s). A clear is timed by what ended it:
    ``ended_by`` (s per slot, e.g. the newest reading of a silent meter) when that reading
    is dated after the sweep — a sweep already sees readings up to the allowed lateness
    past its tick — else the sweep's time. An alert never predates its cause.
    """
    before = since.copy()
    codes = run_kernel()
    result = []
    for slot in np.flatnonzero(codes):
        if codes[slot] == RAISED:
            result.append(Transition(detector, keys[slot], "raised", float(since[slot]), watermark))
        elif codes[slot] == CLEARED:
            at = watermark
            if ended_by is not None and ended_by[slot] > watermark:
                at = float(ended_by[slot])
            result.append(Transition(detector, keys[slot], "cleared", float(before[slot]), at))
    return result
