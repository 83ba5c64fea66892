"""Run a sweep kernel and turn its per-subject codes into :class:`Transition` values."""

from __future__ import annotations

import numpy as np

from kernels.config import CLEARED, RAISED
from streams.detectors.base import Transition

__all__ = ["transitions"]


def transitions(detector: str, keys: list[str], since: np.ndarray, watermark: float, run_kernel) -> list[Transition]:
    """Call ``run_kernel()`` (which updates ``since`` in place and returns codes) and
    report each opened episode with its new start and each closed one with its old start."""
    before = since.copy()
    codes = run_kernel()
    result = []
    for slot in np.flatnonzero(codes):
        if codes[slot] == RAISED:
            result.append(Transition(detector, keys[slot], "raised", float(since[slot]), watermark))
        elif codes[slot] == CLEARED:
            result.append(Transition(detector, keys[slot], "cleared", float(before[slot]), watermark))
    return result
