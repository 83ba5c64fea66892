"""Water kernels against the naive references: fixed, random, NaN and edge inputs."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kernels
from kernels import config as kc
from tests import naive

NAN = float("nan")


def same(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def run_apply(readings, n_meters, n_gateways, state=None):
    slot = np.array([r[0] for r in readings], dtype=np.int32)
    ts = np.array([r[1] for r in readings], dtype=np.float64)
    index = np.array([r[2] for r in readings], dtype=np.float64)
    gw = np.array([r[3] for r in readings], dtype=np.int32)
    if state is None:
        state = (np.full(n_meters, NAN), np.full(n_meters, NAN), np.full(n_meters, NAN),
                 np.full(n_meters, -1, dtype=np.int32), np.full(n_gateways, NAN))
    arrays = tuple(a.copy() for a in state)
    codes = kernels.apply_meter_readings(slot, ts, index, gw, *arrays)
    expected = naive.apply_meter_readings(readings, *[a.tolist() for a in state])
    return codes, arrays, expected


def assert_apply_matches(readings, n_meters=3, n_gateways=2, state=None):
    codes, arrays, expected = run_apply(readings, n_meters, n_gateways, state)
    assert codes.tolist() == expected[0]
    for got, want in zip(arrays, expected[1:]):
        assert same(got, want), (got, want)
    return codes, arrays


def test_apply_fixed_sequence_codes_and_state():
    readings = [(0, 100.0, 1.000, 0),   # new
                (0, 200.0, 1.000, 0),   # flat
                (0, 300.0, 1.002, 0),   # use
                (0, 250.0, 5.000, 0),   # stale (older than last seen)
                (0, 400.0, 0.500, 1),   # backwards: rebaseline, not use; gateway changes to 1
                (1, 50.0, 7.0, -1),     # new, no gateway
                (0, 500.0, 0.5004, 1)]  # flat: rise below MIN_USE_M3
    codes, (seen, index, use, gw, gw_seen) = assert_apply_matches(readings)
    assert codes.tolist() == [kc.APPLIED_NEW, kc.APPLIED_FLAT, kc.APPLIED_USE, kc.SKIPPED_STALE,
                              kc.APPLIED_BACKWARDS, kc.APPLIED_NEW, kc.APPLIED_FLAT]
    assert seen[0] == 500.0 and use[0] == 300.0 and index[0] == 0.5 and gw[0] == 1
    assert gw_seen.tolist() == [300.0, 500.0]   # newest delivery per gateway; a stale one never moves it back
    assert math.isnan(seen[2]) and gw[1] == -1


def test_apply_empty_batch_changes_nothing():
    state = (np.array([1.0, NAN]), np.array([2.0, NAN]), np.array([1.0, NAN]),
             np.array([0, -1], dtype=np.int32), np.array([1.0]))
    codes, arrays = assert_apply_matches([], n_meters=2, n_gateways=1, state=state)
    assert codes.shape == (0,)
    assert all(same(a, b) for a, b in zip(arrays, state))


def test_apply_single_reading():
    codes, (seen, index, use, gw, gw_seen) = assert_apply_matches([(2, 10.0, 3.5, 1)])
    assert codes.tolist() == [kc.APPLIED_NEW] and seen[2] == 10.0 and gw_seen[1] == 10.0


def test_apply_nan_and_out_of_range_are_skipped_not_applied():
    readings = [(0, NAN, 1.0, 0), (0, 5.0, NAN, 0), (0, 5.0, math.inf, 0), (7, 5.0, 1.0, 0), (-1, 5.0, 1.0, 0),
                (0, 6.0, 1.0, 0)]
    codes, (seen, *_rest) = assert_apply_matches(readings)
    assert codes.tolist() == [kc.SKIPPED_INVALID] * 5 + [kc.APPLIED_NEW]
    assert seen[0] == 6.0


def test_apply_index_going_backwards_never_counts_as_use():
    readings = [(0, 0.0, 10.0, 0), (0, 3600.0, 9.0, 0), (0, 7200.0, 8.0, 0), (0, 10800.0, 8.0, 0)]
    codes, (seen, index, use, *_rest) = assert_apply_matches(readings)
    assert codes.tolist() == [kc.APPLIED_NEW, kc.APPLIED_BACKWARDS, kc.APPLIED_BACKWARDS, kc.APPLIED_FLAT]
    assert use[0] == 0.0 and index[0] == 8.0


def test_apply_rejects_wrong_dtypes_and_lengths():
    f = np.full(2, NAN)
    i = np.zeros(2, dtype=np.int32)
    with pytest.raises(TypeError, match="ts must have dtype float64"):
        kernels.apply_meter_readings(i, i, f, i, f.copy(), f.copy(), f.copy(), i.copy(), f.copy())
    with pytest.raises(ValueError, match="index must have length 2"):
        kernels.apply_meter_readings(i, f, np.zeros(3), i, f.copy(), f.copy(), f.copy(), i.copy(), f.copy())
    ro = f.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        kernels.apply_meter_readings(i, f, f, i, ro, f.copy(), f.copy(), i.copy(), f.copy())


reading = st.tuples(st.integers(-1, 5), st.one_of(st.floats(0, 1e6), st.just(NAN)),
                    st.one_of(st.floats(0, 1000), st.just(NAN)), st.integers(-1, 3))


@settings(max_examples=300, deadline=None)
@given(st.lists(reading, max_size=60))
def test_apply_random_matches_naive(readings):
    assert_apply_matches(readings, n_meters=5, n_gateways=3)


def test_apply_large_random_batch_matches_naive():
    rng = np.random.default_rng(7)
    n = 5000
    readings = list(zip(rng.integers(0, 200, n).tolist(), np.sort(rng.uniform(0, 1e6, n)).tolist(),
                        np.cumsum(rng.choice([0.0, 0.0, 0.001, 0.01, -0.5], n)).clip(0).tolist(),
                        rng.integers(-1, 10, n).tolist()))
    assert_apply_matches(readings, n_meters=200, n_gateways=10)


# --- sweeps ----------------------------------------------------------------------------------

def arr(values, dtype=np.float64):
    return np.array(values, dtype=dtype)


def test_gateway_sweep_fixed():
    seen = arr([0.0, 5000.0, NAN, 100.0])
    since = arr([NAN, NAN, NAN, 50.0])
    codes = kernels.sweep_absence(7200.0, 7200.0, seen, since)
    assert codes.tolist() == [kc.RAISED, kc.NO_CHANGE, kc.NO_CHANGE, kc.CLEARED]
    assert since[0] == 0.0 and math.isnan(since[3])
    want_codes, want_since = naive.sweep_absence(7200.0, 7200.0, [0.0, 5000.0, NAN, 100.0],
                                                        [NAN, NAN, NAN, 50.0])
    assert codes.tolist() == want_codes and same(since, want_since)


def test_silent_sweep_suppressed_by_gateway_outage():
    last_seen = arr([0.0, 0.0, 20000.0, NAN])
    meter_gw = arr([0, 1, 1, 0], np.int32)
    gw_out = arr([NAN, 0.0])
    since = arr([NAN, NAN, 100.0, NAN])
    codes = kernels.sweep_meter_silent(10800.0, 10800.0, last_seen, meter_gw, gw_out, since)
    assert codes.tolist() == [kc.RAISED, kc.NO_CHANGE, kc.CLEARED, kc.NO_CHANGE]


def test_no_use_sweep_needs_reporting_meter_and_clears_on_use():
    day = 86400.0
    w = 2 * day
    last_seen = arr([w - 3600, w - 20000, w - 3600, w - 3600, w])
    last_use = arr([w - day, w - day - 5, w - day + 1, w - day - 10, w - 10])
    meter_gw = arr([0, 0, 0, 1, 0], np.int32)
    gw_out = arr([NAN, 5.0])
    since = arr([NAN, NAN, NAN, NAN, w - day - 100])
    codes = kernels.sweep_no_use(w, day, 10800.0, last_seen, last_use, meter_gw, gw_out, since)
    # reporting & 24h: raised; not reporting: no; 1 s short: no; gateway out: held back; use resumed: cleared
    assert codes.tolist() == [kc.RAISED, kc.NO_CHANGE, kc.NO_CHANGE, kc.NO_CHANGE, kc.CLEARED]
    assert since[0] == w - day and math.isnan(since[4])


def test_sweeps_on_empty_state():
    e = np.empty(0)
    ei = np.empty(0, dtype=np.int32)
    assert kernels.sweep_absence(1.0, 1.0, e, e.copy()).shape == (0,)
    assert kernels.sweep_meter_silent(1.0, 1.0, e, ei, e, e.copy()).shape == (0,)
    assert kernels.sweep_no_use(1.0, 1.0, 1.0, e, e, ei, e, e.copy()).shape == (0,)


def test_sweep_rejects_non_finite_watermark():
    e = np.empty(0)
    with pytest.raises(ValueError, match="finite"):
        kernels.sweep_absence(NAN, 1.0, e, e.copy())


maybe_time = st.one_of(st.floats(0, 4e5), st.just(NAN))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_sweeps_random_match_naive(data):
    n = data.draw(st.integers(0, 12))
    g = data.draw(st.integers(0, 4))
    watermark = data.draw(st.floats(0, 5e5))
    last_seen = data.draw(st.lists(maybe_time, min_size=n, max_size=n))
    last_use = data.draw(st.lists(maybe_time, min_size=n, max_size=n))
    meter_gw = data.draw(st.lists(st.integers(-1, max(g - 1, -1) + 1), min_size=n, max_size=n))
    gw_seen = data.draw(st.lists(maybe_time, min_size=g, max_size=g))
    gw_since = data.draw(st.lists(maybe_time, min_size=g, max_size=g))
    silent_since = data.draw(st.lists(maybe_time, min_size=n, max_size=n))
    no_use_since = data.draw(st.lists(maybe_time, min_size=n, max_size=n))

    got_since = arr(gw_since)
    codes = kernels.sweep_absence(watermark, 7200.0, arr(gw_seen), got_since)
    want = naive.sweep_absence(watermark, 7200.0, gw_seen, gw_since)
    assert codes.tolist() == want[0] and same(got_since, want[1])

    got_silent = arr(silent_since)
    codes = kernels.sweep_meter_silent(watermark, 10800.0, arr(last_seen), arr(meter_gw, np.int32), got_since,
                                       got_silent)
    want = naive.sweep_meter_silent(watermark, 10800.0, last_seen, meter_gw, got_since.tolist(), silent_since)
    assert codes.tolist() == want[0] and same(got_silent, want[1])

    got_no_use = arr(no_use_since)
    codes = kernels.sweep_no_use(watermark, 86400.0, 10800.0, arr(last_seen), arr(last_use),
                                 arr(meter_gw, np.int32), got_since, got_no_use)
    want = naive.sweep_no_use(watermark, 86400.0, 10800.0, last_seen, last_use, meter_gw, got_since.tolist(),
                              no_use_since)
    assert codes.tolist() == want[0] and same(got_no_use, want[1])
