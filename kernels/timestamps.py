"""Event times of a whole batch in one call: RFC 3339 text -> epoch seconds (UTC).

``iso_utc_seconds(text, ends)`` reads the texts laid end to end in one buffer of
ASCII bytes (text ``i`` ends at ``ends[i]``), in the one form almost every sensor sends, ``YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)``, and gives NaN for any
other text. It is the fast path of :func:`streams.timeparse.reading_times`, which
sends NaN rows to the full parser (:func:`streams.timeparse.reading_time`), the
definition of what a reading may carry; a test holds the two equal on every
string. Matching that parser: a fraction of any length is truncated to the
microsecond, the calendar is checked (no 30 February, no second 60, no hour 24),
an offset is below 24 h, and only upper-case ``T`` and ``Z`` are read here.
"""

from __future__ import annotations

import numba
import numpy as np

from kernels._checks import _check
from kernels.config import NJIT

__all__ = ["iso_utc_seconds", "warm_up_timestamps"]

_ZERO = 48        # ord("0")
_EXACT = 2 ** 53   # integers up to this are exact doubles
_DAYS_BEFORE_MONTH = np.array([0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334], dtype=np.int64)


@numba.njit(**NJIT)
def _digits(row, start: int, count: int) -> int:  # row: the buffer; start: absolute position
    """The number written by ``count`` ASCII digits at ``start``, -1 if any is not a digit."""
    value = 0
    for k in range(start, start + count):
        d = row[k] - _ZERO
        if d < 0 or d > 9:
            return -1
        value = value * 10 + d
    return value


@numba.njit(**NJIT)
def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


@numba.njit(**NJIT)
def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a valid proleptic Gregorian date."""
    y = year - 1
    days = y * 365 + y // 4 - y // 100 + y // 400 + _DAYS_BEFORE_MONTH[month] + day - 1
    if month > 2 and _leap(year):
        days += 1
    return days - 719162      # days from 0001-01-01 to 1970-01-01


@numba.njit(**NJIT)
def _iso_utc_seconds(text, ends, out) -> None:
    begin = 0
    for i in range(ends.shape[0]):
        out[i] = np.nan
        b, end = begin, ends[i]
        begin = end
        if end - b < 20:       # YYYY-MM-DDTHH:MM:SSZ is the shortest
            continue
        if text[b + 4] != 45 or text[b + 7] != 45 or text[b + 10] != 84 or text[b + 13] != 58 \
                or text[b + 16] != 58:   # - - T : :
            continue
        year, month, day = _digits(text, b, 4), _digits(text, b + 5, 2), _digits(text, b + 8, 2)
        hour, minute, second = _digits(text, b + 11, 2), _digits(text, b + 14, 2), _digits(text, b + 17, 2)
        if year < 1 or month < 1 or month > 12 or day < 1 or hour < 0 or hour > 23 or minute < 0 \
                or minute > 59 or second < 0 or second > 59:
            continue
        month_days = _DAYS_BEFORE_MONTH[month + 1] - _DAYS_BEFORE_MONTH[month] if month < 12 else 31
        if month == 2 and _leap(year):
            month_days = 29
        if day > month_days:
            continue
        at = b + 19
        micros = 0
        if text[at] == 46:     # "." then at least one digit; digits past the sixth are dropped
            at += 1
            start = at
            while at < end and 48 <= text[at] <= 57:
                if at - start < 6:
                    micros = micros * 10 + (text[at] - _ZERO)
                at += 1
            count = at - start
            if count == 0:
                continue
            for _ in range(count, 6):
                micros *= 10
        if at >= end:
            continue
        offset = 0
        sign = text[at]
        if sign == 90 and at + 1 == end:          # Z
            offset = 0
        elif (sign == 43 or sign == 45) and at + 6 == end and text[at + 3] == 58:   # +hh:mm / -hh:mm
            oh, om = _digits(text, at + 1, 2), _digits(text, at + 4, 2)
            if oh < 0 or om < 0 or oh > 23 or om > 59:
                continue
            offset = (oh * 60 + om) * 60
            if sign == 45:
                offset = -offset
        else:
            continue
        seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset
        total = seconds * 1_000_000 + micros
        # one division of exact integer microseconds: the double datetime.timestamp() gives, while the
        # count is exact as a double (1685 to 2255); beyond, the reference parser divides exactly
        if -_EXACT < total < _EXACT:
            out[i] = total / 1_000_000


def iso_utc_seconds(text: np.ndarray, ends: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Epoch seconds (float64, UTC) per text; NaN where it is not the common RFC 3339 form.

    ``text``: the texts' ASCII bytes end to end (uint8); ``ends``: int64, non-decreasing,
    text ``i`` is ``text[ends[i-1]:ends[i]]`` (from 0 for the first), the last end at most ``len(text)``.
    """
    _check("text", text, np.uint8)
    _check("ends", ends, np.int64)
    n = ends.shape[0]
    if n and (ends[-1] > text.shape[0] or ends[0] < 0 or (n > 1 and np.any(np.diff(ends) < 0))):
        raise ValueError("ends must be non-decreasing offsets within text")
    if out is None:
        out = np.empty(n, dtype=np.float64)
    else:
        _check("out", out, np.float64, n)
    _iso_utc_seconds(text, ends, out)
    return out


def warm_up_timestamps() -> None:
    """Compile (or load from the cache) before the first batch."""
    iso_utc_seconds(np.frombuffer(b"2026-01-01T00:00:00Z", dtype=np.uint8), np.array([20], dtype=np.int64))
