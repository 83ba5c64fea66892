"""The one parser of user-given instants: epoch seconds or ISO 8601 text.

A reading's ``dateObserved`` is defined by :func:`reading_time` (ISO 8601 date and time with
an offset, nothing else); :func:`reading_times` gives the same for a whole batch at kernel
speed. :func:`parse_instant` is for command-line arguments and exported files.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timezone

import numpy as np

from kernels.timestamps import iso_utc_seconds

__all__ = ["parse_instant", "parse_since", "reading_time", "reading_times", "InstantError"]


class InstantError(ValueError):
    """Not an instant: the message says why (no callers' context; they add theirs)."""


def parse_instant(text: str, naive_is_utc: bool = False) -> float:
    """Epoch seconds from ``text``: a number (epoch s) or ISO 8601 (``2026-01-31T08:00:00+01:00``, ``...Z``).

    Text without a UTC offset is refused, unless ``naive_is_utc`` (exports often omit it).
    """
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InstantError("neither an ISO 8601 date-time (2026-01-31T08:00:00+01:00) nor epoch seconds") from None
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise InstantError("has no UTC offset; add one (Z, +01:00) so the moment is unambiguous")
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_AGE_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_since(text: str, now_s: float | None = None) -> float:
    """Epoch seconds of a ``--since``: what :func:`parse_instant` reads, or an age before ``now_s``
    (default: the wall clock) such as ``45s``, ``30m``, ``2h``, ``1d``. Refuses non-finite values."""
    match = _AGE.match(text)
    if match:
        return (time.time() if now_s is None else now_s) - float(match.group(1)) * _AGE_UNIT_S[match.group(2)]
    try:
        value = parse_instant(text)
    except InstantError as error:
        raise InstantError(f"{error}, nor an age like 30m, 2h, 1d") from None
    if not math.isfinite(value):
        raise InstantError("is not a finite time")
    return value


def reading_time(text: str) -> float | None:
    """Epoch seconds of a reading's ``dateObserved``: ISO 8601 date and time with a UTC offset (``Z`` or
    ``+01:00``), the only form the pipeline accepts; None for anything else (no offset, no time, not a date)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None or "T" not in text:
        return None
    return moment.timestamp()


def reading_times(texts: list[str]) -> np.ndarray:
    """:func:`reading_time` of each text as one float64 array (NaN where it gives None).

    The common RFC 3339 form is read by one kernel call over the batch
    (:func:`kernels.timestamps.iso_utc_seconds`, over the texts' bytes end to end); only
    other texts (another ISO 8601 form, not a time at all, or not ASCII) go through
    :func:`reading_time` one by one.
    """
    n = len(texts)
    ends = np.fromiter(map(len, texts), dtype=np.int64, count=n).cumsum()
    try:
        text = "".join(texts).encode("ascii")
    except UnicodeEncodeError:             # a non-ASCII text: none of them is read by the kernel
        seconds = np.full(n, np.nan)
    else:
        seconds = iso_utc_seconds(np.frombuffer(text, dtype=np.uint8), ends)
    for i in np.flatnonzero(np.isnan(seconds)):
        moment = reading_time(texts[i])
        if moment is not None:
            seconds[i] = moment
    return seconds
