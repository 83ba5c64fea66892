"""Waste kernels against their naive references (tests/naive.py): fixed, random, NaN and edge inputs."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels
from kernels.config import FILL_SLOPE_WINDOW, RAISED
from tests import naive

NAN = float("nan")


def same(a, b):
    return len(a) == len(b) and all((isinstance(x, float) and math.isnan(x) and math.isnan(y)) or x == y
                                    for x, y in zip(list(a), list(b)))


def arrays(readings, bins):
    slot = np.array([r[0] for r in readings], dtype=np.int32)
    ts = np.array([r[1] for r in readings], dtype=np.float64)
    columns = [np.array([r[k] for r in readings], dtype=np.float64) for k in range(2, len(readings[0]))] \
        if readings else []
    return slot, ts, columns


def state(bins, fill=NAN):
    return np.full(bins, fill)


readings_strategy = st.lists(st.tuples(st.integers(-1, 3), st.sampled_from([0.0, 3600.0, 7200.0, 9000.0, NAN])
                                       .flatmap(lambda t: st.just(t) if math.isnan(t) else
                                                st.floats(0, 90000).map(lambda x: float(int(x) // 600 * 600))),
                                       st.one_of(st.just(NAN), st.sampled_from([0.05, 0.3, 0.3, 0.76, 0.92, 0.5]),
                                                 st.floats(0, 1))),
                             max_size=40)


def sort(readings):
    return sorted(readings, key=lambda r: (math.isnan(r[1]), r[1] if not math.isnan(r[1]) else 0))


def facts(slot, ts, fill, last_ts, last_fill):
    """The waste tracker's facts for a slice (as WasteTracker computes them), folding the bins' newest reading
    into ``last_ts`` and their last fill level into ``last_fill``: the kernels take these instead of keeping
    their own copy, and the naive references (which keep their own, as the detectors did) must agree."""
    _prev_ts, prev_fill, new = kernels.previous_readings(slot, ts, last_ts, fill, last_fill, value_required=False,
                                                         fold=True, finite_values=True)
    return new, prev_fill


def pieces(readings, split):
    """The readings as the slices a pipeline may hand over: whole, or cut at ``split``."""
    if split is None or not 0 < split < len(readings):
        return [readings]
    return [readings[:split], readings[split:]]


# --- overflow ------------------------------------------------------------------------------------

def run_overflow(readings, bins=4, split=None):
    last, last_fill, since = state(bins), state(bins), state(bins)
    codes, starts = [], []
    for piece in pieces(readings, split):
        if piece:
            slot, ts, (fill,) = arrays(piece, bins)
        else:
            slot, ts, fill = np.empty(0, np.int32), np.empty(0), np.empty(0)
        new, _prev_fill = facts(slot, ts, fill, last, last_fill)
        c, st_ = kernels.update_overflow(slot, ts, fill, new, 0.9, 0.7, since)
        codes += list(c)
        starts += list(st_)
    ref = naive.update_overflow(readings, 0.9, 0.7, [NAN] * bins, [NAN] * bins)
    assert same(codes, ref[0]) and same(starts, ref[1]) and same(last, ref[2]) and same(since, ref[3])
    return list(codes)


def test_overflow_raises_once_and_clears_with_hysteresis():
    codes = run_overflow([(0, 0.0, 0.5), (0, 1.0, 0.91), (0, 2.0, 0.95), (0, 3.0, 0.85), (0, 4.0, 0.69),
                          (0, 5.0, 0.92)])
    assert codes == [0, 1, 0, 0, 2, 1]


def test_overflow_edges():
    assert run_overflow([]) == []
    assert run_overflow([(0, 0.0, 0.95)]) == [RAISED]
    assert run_overflow([(0, 5.0, 0.95), (0, 5.0, 0.1), (0, 4.0, 0.1), (1, NAN, 0.95), (-1, 1.0, 0.99),
                         (2, 1.0, NAN)]) == [1, 0, 0, 0, 0, 0]


@settings(max_examples=60, deadline=None)
@given(readings_strategy, st.integers(0, 40))
def test_overflow_matches_naive(readings, split):
    run_overflow(sort(readings), split=split)


# --- fire -----------------------------------------------------------------------------------------

def run_fire(readings, bins=4, split=None):
    s = [state(bins) for _ in range(4)]
    last_fill = state(bins)
    codes, starts = [], []
    for piece in pieces(readings, split):
        slot, ts, (temp, status) = arrays(piece, bins)
        new, _prev_fill = facts(slot, ts, np.full(len(piece), NAN), s[0], last_fill)   # fire reads no fill level
        c, st_ = kernels.update_fire(slot, ts, temp, status, new, 60.0, 15.0, 10800.0, 30.0, *s[1:])
        codes += list(c)
        starts += list(st_)
    ref = naive.update_fire(readings, 60.0, 15.0, 10800.0, 30.0, *([[NAN] * bins] * 4))
    assert same(codes, ref[0]) and same(starts, ref[1])
    for kernel_state, ref_state in zip(s, ref[2:]):
        assert same(kernel_state, ref_state)
    return list(codes)


def test_fire_absolute_jump_status_and_clear():
    assert run_fire([(0, 0.0, 15.0, NAN), (0, 3600.0, 40.0, NAN), (0, 7200.0, 80.0, NAN), (0, 10800.0, 35.0, NAN),
                     (0, 14400.0, 20.0, NAN)]) == [0, 1, 0, 0, 2]
    assert run_fire([(1, 0.0, 65.0, NAN), (1, 3600.0, 20.0, 5.0), (1, 7200.0, 20.0, 0.0)]) == [1, 0, 2]
    assert run_fire([(2, 0.0, 10.0, NAN), (2, 20000.0, 40.0, NAN)]) == [0, 0]   # rise too slow to count


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 40).map(lambda k: k * 1800.0),
                          st.one_of(st.just(NAN), st.floats(-10, 120)), st.sampled_from([NAN, 0.0, 5.0])),
                max_size=40), st.integers(0, 40))
def test_fire_matches_naive(readings, split):
    if readings:
        run_fire(sort(readings), split=split)


# --- collection late ------------------------------------------------------------------------------

def run_late(readings, ticks, bins=4, split=None):
    s = [state(bins) for _ in range(4)]
    ref_state = [[NAN] * bins for _ in range(4)]
    codes, starts = [], []
    for piece in pieces(readings, split):
        slot, ts, (fill,) = arrays(piece, bins)
        new, prev_fill = facts(slot, ts, fill, s[0], s[1])
        c, st_ = kernels.update_collection_late(slot, ts, fill, new, prev_fill, 0.75, s[2], s[3])
        codes += list(c)
        starts += list(st_)
    ref = naive.update_collection_late(readings, 0.75, *ref_state)
    assert same(codes, ref[0]) and same(starts, ref[1])
    for a, b in zip(s, ref[2:]):
        assert same(a, b)
    swept = []
    late_ref = ref[5]
    for tick in ticks:
        out = kernels.sweep_collection_late(tick, 86400.0, s[2], s[3])
        ref_codes, late_ref = naive.sweep_collection_late(tick, 86400.0, ref[4], late_ref)
        assert same(out, ref_codes) and same(s[3], late_ref)
        swept.append(list(out))
    return list(codes), swept


def test_late_after_a_day_full_and_cleared_by_an_emptying():
    codes, swept = run_late([(0, 0.0, 0.5), (0, 3600.0, 0.78), (0, 7200.0, 0.74)], [80000.0, 90000.0, 99999.0])
    assert codes == [0, 0, 0] and [row[0] for row in swept] == [0, 1, 0]
    codes, _ = run_late([(0, 0.0, 0.8), (0, 100000.0, 0.05)], [90000.0])
    assert codes == [0, 0]   # the sweep was not run in between here: nothing open, nothing to clear


@settings(max_examples=60, deadline=None)
@given(readings_strategy, st.lists(st.floats(0, 200000), max_size=4), st.integers(0, 40))
def test_late_matches_naive(readings, ticks, split):
    if readings:
        run_late(sort(readings), sorted(ticks), split=split)


# --- fill forecast --------------------------------------------------------------------------------

def run_forecast(readings, bins=4, horizon=43200.0, min_readings=4, split=None):
    last, prev, since = state(bins), state(bins), state(bins)
    count = np.zeros(bins, dtype=np.int32)
    wt, wf = np.full((FILL_SLOPE_WINDOW, bins), NAN), np.full((FILL_SLOPE_WINDOW, bins), NAN)
    codes, starts = [], []
    for piece in pieces(readings, split):
        slot, ts, (fill, nxt) = arrays(piece, bins)
        new, prev_fill = facts(slot, ts, fill, last, prev)
        c, st_ = kernels.update_fill_forecast(slot, ts, fill, nxt, new, prev_fill, 0.9, horizon, 0.01 / 3600,
                                              min_readings, count, wt, wf, since)
        codes += list(c)
        starts += list(st_)
    ref = naive.update_fill_forecast(readings, 0.9, horizon, 0.01 / 3600, min_readings, [NAN] * bins,
                                     [NAN] * bins, [[] for _ in range(bins)], [NAN] * bins)
    assert same(codes, ref[0]) and same(starts, ref[1]) and same(since, ref[5])
    assert same(last, ref[2]) and same(prev, ref[3])
    assert list(count) == [len(w) for w in ref[4]]
    return list(codes)


def test_forecast_raises_for_a_fast_filler_and_clears_on_emptying():
    collection = 30 * 3600.0
    surge = [(0, h * 3600.0, 0.1 + 0.06 * h, collection) for h in range(6)]
    codes = run_forecast(surge + [(0, 6 * 3600.0, 0.05, collection)])
    assert codes == [0, 0, 0, 1, 0, 0, 2]


def test_forecast_stays_quiet_for_slow_bins_overdue_collections_and_full_bins():
    slow = [(0, h * 3600.0, 0.1 + 0.015 * h, 30 * 3600.0) for h in range(6)]
    overdue = [(1, h * 3600.0, 0.3 + 0.06 * h, 1000.0) for h in range(6)]   # the pending collection is past
    soon = [(2, h * 3600.0, 0.1 + 0.06 * h, 5 * 3600.0 + 600) for h in range(6)]   # collected before it fills
    assert run_forecast(sorted(slow + overdue + soon, key=lambda r: r[1])) == [0] * 18


def test_slope_helper_matches_naive_and_is_robust():
    times = [0.0, 3600.0, 7200.0, 10800.0, 14400.0]
    levels = [0.1, 0.11, 0.9, 0.13, 0.14]   # one wild echo
    slope, level = kernels.fill_slope_and_level(times, levels)
    assert (slope, level) == naive.fill_slope_and_level(times, levels)
    assert slope * 3600 == pytest.approx(0.01, abs=1e-9)
    assert math.isnan(kernels.fill_slope_and_level([5.0], [0.3])[0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 40).map(lambda k: k * 1800.0),
                          st.one_of(st.just(NAN), st.floats(0, 1)),
                          st.sampled_from([NAN, 0.0, 50000.0, 80000.0])), max_size=40),
       st.integers(2, FILL_SLOPE_WINDOW), st.integers(0, 40))
def test_forecast_matches_naive(readings, min_readings, split):
    if readings:
        run_forecast(sort(readings), min_readings=min_readings, split=split)


# --- stuck level ----------------------------------------------------------------------------------

def run_stuck(readings, bins=4, n=6, split=None):
    last, prev, start, since = state(bins), state(bins), state(bins), state(bins)
    run = np.zeros(bins, dtype=np.int32)
    codes, starts = [], []
    for piece in pieces(readings, split):
        slot, ts, (fill,) = arrays(piece, bins)
        new, prev_fill = facts(slot, ts, fill, last, prev)
        c, st_ = kernels.update_stuck_level(slot, ts, fill, new, prev_fill, n, run, start, since)
        codes += list(c)
        starts += list(st_)
    ref = naive.update_stuck_level(readings, n, [NAN] * bins, [NAN] * bins, [0] * bins, [NAN] * bins, [NAN] * bins)
    assert same(codes, ref[0]) and same(starts, ref[1]) and list(run) == ref[4] and same(since, ref[6])
    assert same(last, ref[2]) and same(prev, ref[3])
    return list(codes), list(starts)


def test_stuck_after_six_identical_readings_cleared_by_a_new_value():
    readings = [(0, 0.0, 0.2)] + [(0, h * 3600.0, 0.3) for h in range(1, 7)] + [(0, 7 * 3600.0, 0.1)]
    codes, starts = run_stuck(readings)
    assert codes == [0, 0, 0, 0, 0, 0, 1, 2] and starts[6] == 3600.0 and starts[7] == 3600.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 40).map(lambda k: k * 1800.0),
                          st.sampled_from([NAN, 0.3, 0.3, 0.3, 0.3004, 0.5])), max_size=40), st.integers(2, 6),
       st.integers(0, 40))
def test_stuck_matches_naive(readings, n, split):
    if readings:
        run_stuck(sort(readings), n=n, split=split)


def test_wrappers_validate():
    new = np.ones(1, dtype=np.bool_)
    with pytest.raises(TypeError):
        kernels.update_overflow(np.zeros(1, np.int64), np.zeros(1), np.zeros(1), new, 0.9, 0.7, state(1))
    with pytest.raises(ValueError):
        kernels.update_overflow(np.zeros(1, np.int32), np.zeros(1), np.zeros(1), new, 0.7, 0.9, state(1))
    with pytest.raises(TypeError):     # the tracker's "new" is bool
        kernels.update_overflow(np.zeros(1, np.int32), np.zeros(1), np.zeros(1), np.ones(1), 0.9, 0.7, state(1))
    with pytest.raises(ValueError):    # one "new" per reading
        kernels.update_overflow(np.zeros(1, np.int32), np.zeros(1), np.zeros(1), np.ones(2, np.bool_), 0.9, 0.7,
                                state(1))
    with pytest.raises(ValueError):
        kernels.update_stuck_level(np.zeros(1, np.int32), np.zeros(1), np.zeros(1), new, state(1), 1,
                                   np.zeros(1, np.int32), state(1), state(1))
    with pytest.raises(ValueError):    # prev_fill is per reading
        kernels.update_collection_late(np.zeros(1, np.int32), np.zeros(1), np.zeros(1), new, state(2), 0.75,
                                       state(1), state(1))
    with pytest.raises(ValueError):
        kernels.update_fill_forecast(np.zeros(1, np.int32), np.zeros(1), np.zeros(1), np.zeros(1), new, state(1), 0.9,
                                     1.0, 0.0, 4, np.zeros(2, np.int32), np.zeros((FILL_SLOPE_WINDOW, 1)),
                                     np.zeros((FILL_SLOPE_WINDOW, 2)), state(2))
    kernels.warm_up_waste()
