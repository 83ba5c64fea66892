"""The previous-reading facts kernel against a naive reference: fixed, random, NaN and edge inputs."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kernels

NAN = float("nan")


def naive_previous(readings, last_ts, last_value=None, value_required=True, finite_values=False):
    """Readings ``(slot, t, value)`` one by one: the subject's newest reading so far is the previous one."""
    last_ts = list(last_ts)
    last_value = None if last_value is None else list(last_value)
    prev_ts, prev_value, new = [], [], []
    for slot, t, x in readings:
        if not 0 <= slot < len(last_ts):
            prev_ts.append(NAN), prev_value.append(NAN), new.append(False)
            continue
        prev_ts.append(last_ts[slot])
        prev_value.append(NAN if last_value is None else last_value[slot])
        valid = math.isfinite(t) and not (last_value is not None and value_required and not math.isfinite(x))
        later = valid and (math.isnan(last_ts[slot]) or t > last_ts[slot])
        new.append(later)
        if later:
            last_ts[slot] = t
            if last_value is not None and not (finite_values and not math.isfinite(x)):
                last_value[slot] = x
    return prev_ts, prev_value, new, last_ts, last_value


def same(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def check(readings, last_ts, last_value=None, value_required=True, fold=False, finite_values=False):
    slot = np.array([r[0] for r in readings], dtype=np.int32)
    ts = np.array([r[1] for r in readings], dtype=np.float64)
    value = np.array([r[2] for r in readings], dtype=np.float64)
    state_ts = np.array(last_ts, dtype=np.float64)
    state_value = None if last_value is None else np.array(last_value, dtype=np.float64)
    prev_ts, prev_value, new = kernels.previous_readings(
        slot, ts, state_ts, value if last_value is not None else None, state_value, value_required, fold,
        finite_values=finite_values)
    want = naive_previous(readings, last_ts, last_value, value_required, finite_values)
    assert same(prev_ts, want[0]) and new.tolist() == want[2] and new.dtype == np.bool_
    if last_value is None:
        assert prev_value is None
    else:
        assert same(prev_value, want[1]) and same(state_value, want[4])
    assert same(state_ts, want[3] if fold else last_ts)    # read only unless folding
    return prev_ts.tolist(), None if prev_value is None else prev_value.tolist(), new.tolist()


def test_first_reading_then_the_previous_one_within_the_slice_and_from_state():
    rows = [(0, 10.0, 1.0), (1, 10.0, 5.0), (0, 20.0, 1.5), (0, 30.0, 1.7)]
    prev_ts, prev_value, new = check(rows, [NAN, 5.0], [NAN, 4.0], fold=True)
    assert same(prev_ts, [NAN, 5.0, 10.0, 20.0]) and same(prev_value, [NAN, 4.0, 1.0, 1.5])
    assert new == [True, True, True, True]


def test_duplicates_and_out_of_order_readings_are_not_new_and_not_previous():
    rows = [(0, 10.0, 1.0), (0, 10.0, 9.0), (0, 5.0, 8.0), (0, 20.0, 2.0)]
    prev_ts, prev_value, new = check(rows, [NAN], [NAN], fold=True)
    assert new == [True, False, False, True] and prev_ts[3] == 10.0 and prev_value[3] == 1.0
    assert check([(0, 3.0, 1.0)], [4.0], [7.0])[2] == [False]     # older than the state's newest


def test_nan_time_nan_value_and_bad_slots():
    rows = [(0, NAN, 1.0), (0, 1.0, NAN), (-1, 2.0, 1.0), (3, 2.0, 1.0), (0, 2.0, 1.0)]
    prev_ts, prev_value, new = check(rows, [NAN, NAN], [NAN, NAN])
    assert new == [False, False, False, False, True] and all(math.isnan(t) for t in prev_ts)
    # a value that is not required: a NaN value still makes the reading new (and the previous value NaN)
    _t, prev_value, new = check([(0, 1.0, NAN), (0, 2.0, 3.0)], [NAN], [NAN], value_required=False)
    assert new == [True, True] and math.isnan(prev_value[1])
    assert check([(0, 1.0, NAN), (0, 2.0, NAN)], [NAN])[2] == [True, True]   # no value at all
    # finite_values: the previous value is the newest one there was (a reading without one is new all the same)
    _t, prev_value, new = check([(0, 1.0, 3.0), (0, 2.0, NAN), (0, 3.0, 4.0)], [NAN], [NAN], value_required=False,
                                fold=True, finite_values=True)
    assert new == [True, True, True] and same(prev_value, [NAN, 3.0, 3.0])


def test_empty_slices_and_validation():
    assert check([], [NAN]) == ([], None, [])
    assert check([], [], []) == ([], [], [])
    i, f = np.zeros(1, dtype=np.int32), np.zeros(1)
    with pytest.raises(TypeError):
        kernels.previous_readings(f, f, f.copy())
    with pytest.raises(ValueError):
        kernels.previous_readings(i, f, f.copy(), value=f)                  # value without last_value
    read_only = np.zeros(1)
    read_only.flags.writeable = False
    with pytest.raises(ValueError):
        kernels.previous_readings(i, f, read_only, fold=True)
    kernels.previous_readings(i, f, read_only)                               # read only is fine when not folding
    with pytest.raises(TypeError):
        kernels.previous_readings(i, f, f.copy(), new=np.zeros(1, dtype=np.int8))


def test_preallocated_outputs_are_filled_in_place():
    slot, ts = np.zeros(2, dtype=np.int32), np.array([1.0, 2.0])
    prev_ts, prev_value, new = np.empty(2), np.empty(2), np.empty(2, dtype=np.bool_)
    got = kernels.previous_readings(slot, ts, np.full(1, NAN), np.array([3.0, 4.0]), np.full(1, NAN),
                                    prev_ts=prev_ts, prev_value=prev_value, new=new)
    assert got[0] is prev_ts and got[1] is prev_value and got[2] is new and same(prev_value, [NAN, 3.0])


maybe = st.one_of(st.floats(-5.0, 50.0, allow_nan=False), st.just(NAN))
rows = st.lists(st.tuples(st.integers(-1, 4), st.one_of(st.integers(0, 12).map(float), st.just(NAN)), maybe),
                max_size=50)


@settings(max_examples=200, deadline=None)
@given(rows, st.lists(maybe, min_size=4, max_size=4), st.lists(maybe, min_size=4, max_size=4), st.booleans(),
       st.booleans(), st.booleans(), st.booleans())
def test_random_slices_match_the_reference(readings, last_ts, last_value, with_value, required, fold, finite):
    readings = sorted(readings, key=lambda r: (math.isnan(r[1]), r[1]))     # a tracker's slices are time-sorted
    check(readings, last_ts, last_value if with_value else None, required, fold, finite)
    check(readings[::-1], last_ts, last_value if with_value else None, required, fold, finite)   # and any order


def test_warm_up_runs():
    kernels.warm_up_previous()
