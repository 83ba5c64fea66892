"""The batch time parser against its naive reference, ``reading_time`` one text at a time.

``kernels.timestamps.iso_utc_seconds`` reads the common RFC 3339 form and gives NaN for
anything else; ``streams.timeparse.reading_times`` sends those to ``reading_time``. Both must
give exactly the double ``reading_time`` gives, on fixed, random, near-miss and edge inputs.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernels.timestamps import iso_utc_seconds
from streams.timeparse import reading_time, reading_times


def _naive(texts):
    return np.array([math.nan if (m := reading_time(t)) is None else m for t in texts], dtype=np.float64)


def _kernel(texts):
    ends = np.cumsum([len(t) for t in texts]).astype(np.int64)
    return iso_utc_seconds(np.frombuffer("".join(texts).encode("ascii"), dtype=np.uint8), ends)


FIXED = ["2026-09-21T08:00:00Z", "2026-09-21T08:00:00.5Z", "2026-09-21T08:00:00.123456Z",
         "2026-09-21T08:00:00.1234567+02:00", "2026-09-21T08:00:00.000001-05:30", "2026-09-21T08:00:00+23:59",
         "2026-09-21T08:00:00-00:00", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "1686-01-01T00:00:00Z",
         "2254-12-31T23:59:59.999999Z", "2024-02-29T12:00:00Z", "2000-02-29T12:00:00Z", "2100-02-28T12:00:00Z"]
#: read by the reference (beyond 1685-2255 a microsecond count is no exact double)
EXTREMES = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "2256-01-01T00:00:00.000001Z"]
MISSES = EXTREMES + ["2026-02-29T08:00:00Z", "2100-02-29T08:00:00Z", "2026-04-31T08:00:00Z", "2026-13-01T08:00:00Z",
          "2026-00-01T08:00:00Z", "2026-01-00T08:00:00Z", "2026-09-21T24:00:00Z", "2026-09-21T08:60:00Z",
          "2026-09-21T08:00:60Z", "2026-09-21T08:00:00+24:00", "2026-09-21T08:00:00+01:60",
          "2026-09-21T08:00:00", "2026-09-21t08:00:00Z", "2026-09-21T08:00:00z", "2026-09-21 08:00:00Z",
          "2026-09-21T08:00Z", "2026-09-21T08:00:00.Z", "2026-09-21T08:00:00,5Z", "2026-09-21T08:00:00+0200",
          "2026-09-21T08:00:00+02", "2026-09-21T08:00:00+02:00:30", "20260921T080000Z", "2026-9-21T08:00:00Z",
          "0000-01-01T00:00:00Z", "2026-09-21T08:00:00Zx", "2026-09-21T08:00:00ZZ", "", "x", "-2026-09-21T08:00:00Z",
          "+2026-09-21T08:00:00Z", "2026-09-21T08:00:00.12a+02:00"]


def test_fixed_and_near_miss_texts_match_the_reference():
    texts = FIXED + MISSES
    np.testing.assert_array_equal(reading_times(texts), _naive(texts))
    kernel = _kernel(texts)
    assert not np.isnan(kernel[:len(FIXED)]).any()            # the common forms are the kernel's own
    np.testing.assert_array_equal(kernel[:len(FIXED)], _naive(FIXED))
    fallbacks = [t for t, k in zip(texts, kernel) if np.isnan(k) and reading_time(t) is not None]
    # other ISO 8601 forms the reference reads (Python's parser is lenient: an offset minute of 60, "." and
    # no digit) are left to it
    assert set(fallbacks) <= {"2026-09-21T08:00Z", "2026-09-21T08:00:00,5Z", "2026-09-21T08:00:00+0200",
                              "2026-09-21T08:00:00+02", "2026-09-21T08:00:00+02:00:30", "20260921T080000Z",
                              "2026-09-21T08:00:00+01:60", "2026-09-21T08:00:00.Z", *EXTREMES}


def test_edge_inputs():
    assert reading_times([]).shape == (0,)
    assert np.isnan(reading_times([""])).all()
    assert np.isnan(reading_times(["", ""])).all()
    # a non-ASCII text sends the whole batch to the reference, which reads what it can
    mixed = ["２０２６-09-21T08:00:00Z", "2026-09-21T08:00:00Z", "2026-09-21T08:00:00Zé"]
    np.testing.assert_array_equal(reading_times(mixed), _naive(mixed))
    with pytest.raises(ValueError, match="non-decreasing"):
        iso_utc_seconds(np.zeros(4, dtype=np.uint8), np.array([3, 2], dtype=np.int64))
    with pytest.raises(TypeError, match="dtype"):
        iso_utc_seconds(np.zeros(4, dtype=np.int8), np.array([3], dtype=np.int64))


moments = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


@settings(max_examples=250, deadline=None)
@given(st.lists(st.tuples(moments, offsets, st.sampled_from(["seconds", "milliseconds", "microseconds", "auto"]),
                          st.booleans()), max_size=20))
def test_random_valid_times_match_the_reference(items):
    texts = []
    for moment, offset, spec, zulu in items:
        text = moment.replace(tzinfo=offset).isoformat(timespec=spec)
        texts.append(text.replace("+00:00", "Z") if zulu else text)
    np.testing.assert_array_equal(reading_times(texts), _naive(texts))


pieces = st.sampled_from(list("0123456789-:T.Z+tz ,") + ["2026-", "09-21", "T08:", "00:00", ".5", "Z", "+01:00"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(pieces, max_size=14).map("".join), max_size=12))
def test_random_near_miss_texts_match_the_reference(texts):
    np.testing.assert_array_equal(reading_times(texts), _naive(texts))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=8))
def test_arbitrary_text_matches_the_reference(texts):
    np.testing.assert_array_equal(reading_times(texts), _naive(texts))
