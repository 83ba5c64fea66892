"""Argument checks shared by every kernel's public wrapper (dtype, shape, contiguity, writability)."""

from __future__ import annotations

import numpy as np

__all__ = ["_check", "_check_writable", "_out", "_raised_at", "_scalar_times", "_ticks"]


def _check(name: str, array: np.ndarray, dtype, length: int | None = None) -> None:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(array).__name__}")
    if array.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if length is not None and array.shape[0] != length:
        raise ValueError(f"{name} must have length {length}, got {array.shape[0]}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")


def _check_writable(name: str, array: np.ndarray) -> None:
    if not array.flags.writeable:
        raise ValueError(f"{name} is state and must be writable")


def _scalar_times(*values) -> tuple[float, ...]:
    result = []
    for v in values:
        v = float(v)
        if not np.isfinite(v):
            raise ValueError(f"times and durations must be finite seconds, got {v}")
        result.append(v)
    return tuple(result)


def _out(out, n: int) -> np.ndarray:
    if out is None:
        return np.empty(n, dtype=np.int8)
    _check("out", out, np.int8, n)
    return out


def _ticks(ticks) -> np.ndarray:
    """A sweep's event times (s): one number (a single tick) or a float64 array, finite and strictly
    increasing (possibly empty)."""
    if not isinstance(ticks, np.ndarray):
        return np.array([_scalar_times(ticks)[0]], dtype=np.float64)
    _check("ticks", ticks, np.float64)
    if ticks.shape[0] and not (np.isfinite(ticks[0]) and np.isfinite(ticks[-1])):
        raise ValueError("ticks must be finite seconds")
    if ticks.shape[0] > 1 and not np.all(ticks[1:] > ticks[:-1]):   # NaN compares False: refused too
        raise ValueError("ticks must be strictly increasing")
    return ticks


def _raised_at(raised_at, n: int) -> np.ndarray:
    """Per subject, the index in ``ticks`` of the tick its episode opened at (int32, -1 = none)."""
    if raised_at is None:
        return np.empty(n, dtype=np.int32)
    _check("raised_at", raised_at, np.int32, n)
    return raised_at
