"""The reporting-cadence kernel and the cadence-aware absence sweeps against their naive references:
fixed, random, NaN and edge inputs, and the estimator's promised behaviour (robust to one long gap,
following a real change of rhythm)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kernels
from kernels import config as kc
from tests import naive

NAN = float("nan")
H = 3600.0


def same(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def learn(readings, n, state=None, fold=False):
    """Kernel and naive on the same readings and state; returns (codes, last_seen, cadence, count) of
    the kernel after checking it equals the naive reference."""
    slot = np.array([r[0] for r in readings], dtype=np.int32)
    ts = np.array([r[1] for r in readings], dtype=np.float64)
    if state is None:
        state = (np.full(n, NAN), np.full(n, NAN), np.zeros(n, dtype=np.int32))
    last_seen, cadence, count = (a.copy() for a in state)
    codes = kernels.learn_cadence(slot, ts, last_seen, cadence, count, fold=fold)
    want = naive.learn_cadence(readings, *[a.tolist() for a in state], fold=fold)
    assert codes.tolist() == want[0]
    assert same(last_seen, want[1]) and same(cadence, want[2]) and count.tolist() == want[3]
    return codes, last_seen, cadence, count


def series(times, slot=0):
    return [(slot, float(t)) for t in times]


def test_naive_constants_are_the_kernels():
    assert (naive.CADENCE_MEMORY_S, naive.CADENCE_CLIP, naive.CADENCE_MIN_INTERVALS, naive.CADENCE_MERGE_S) == \
        (kc.CADENCE_MEMORY_S, kc.CADENCE_CLIP, kc.CADENCE_MIN_INTERVALS, kc.CADENCE_MERGE_S)
    assert (naive.LEARNT, naive.SAME_DELIVERY, naive.FIRST) == \
        (kc.ARRIVAL_LEARNT, kc.ARRIVAL_SAME_DELIVERY, kc.ARRIVAL_FIRST)


def test_hourly_meter_learns_an_hour_and_counts_up_to_the_minimum():
    codes, seen, cadence, count = learn(series(np.arange(10) * H), 1, fold=True)
    assert codes.tolist() == [kc.ARRIVAL_FIRST] + [kc.ARRIVAL_LEARNT] * 9
    assert cadence[0] == H and count[0] == kc.CADENCE_MIN_INTERVALS and seen[0] == 9 * H


def test_codes_for_stale_invalid_and_same_delivery_readings():
    readings = [(0, 0.0), (0, 30.0), (0, 20.0), (0, 30.0), (5, 100.0), (-1, 100.0), (0, NAN), (0, 3630.0)]
    codes, seen, cadence, count = learn(readings, 2, fold=True)
    assert codes.tolist() == [kc.ARRIVAL_FIRST, kc.ARRIVAL_SAME_DELIVERY, kc.SKIPPED_STALE, kc.SKIPPED_STALE,
                              kc.SKIPPED_INVALID, kc.SKIPPED_INVALID, kc.SKIPPED_INVALID, kc.ARRIVAL_LEARNT]
    # the interval runs from the newest reading (30 s), not the first of the delivery
    assert seen[0] == 3630.0 and cadence[0] == 3600.0 and count[0] == 1
    assert math.isnan(seen[1]) and count[1] == 0


def test_without_fold_last_seen_is_only_read_and_the_batch_is_chained_in_scratch():
    state = (np.array([0.0, NAN]), np.array([NAN, NAN]), np.zeros(2, dtype=np.int32))
    readings = series([H, 2 * H, 3 * H]) + series([10.0, 4000.0], slot=1)
    codes, seen, cadence, count = learn(readings, 2, state=state, fold=False)
    assert seen.tolist()[0] == 0.0 and math.isnan(seen[1])          # untouched: the domain folds it later
    assert cadence.tolist() == [H, 3990.0] and count.tolist() == [3, 1]
    assert codes.tolist() == [kc.ARRIVAL_LEARNT] * 3 + [kc.ARRIVAL_FIRST, kc.ARRIVAL_LEARNT]


def test_an_outage_right_after_installation_teaches_nothing():
    times = [0.0, 2 * 86400.0] + [2 * 86400.0 + k * H for k in range(1, 10)]
    _codes, _seen, cadence, count = learn(series(times), 1, fold=True)
    assert cadence[0] == pytest.approx(H, rel=1e-9) and count[0] == kc.CADENCE_MIN_INTERVALS


def run_hourly(days, then=()):
    """An hourly subject for ``days`` days, then the given gaps (h) each followed by a day of hourly readings;
    returns the silence limit (s, 3 missed reports, floor 3 h) before each gap and the final state."""
    t = list(np.arange(0, days * 24) * H)
    limits = []
    state = (np.full(1, NAN), np.full(1, NAN), np.zeros(1, dtype=np.int32))
    _c, *state = learn(series(t), 1, state=state, fold=True)
    for gap in then:
        limits.append(float(kernels.silence_limits(3 * H, 3.0, state[1], state[2])[0]))
        start = t[-1] + gap * H
        t = [start + k * H for k in range(24)]
        _c, *state = learn(series(t), 1, state=tuple(state), fold=True)
    return limits, state


def test_one_silence_does_not_teach_that_silence_is_normal():
    """An hourly meter's 8 h outages: the limit before each stays under 8 h, so every one is seen."""
    limits, _state = run_hourly(10, then=[8, 8, 8])
    assert all(limit < 8 * H for limit in limits), limits
    limits, _state = run_hourly(10, then=[8, 1, 1, 8])   # outages a few hours apart too
    assert max(limits) < 8 * H
    limits, _state = run_hourly(10, then=[72, 8])        # a three-day outage is clipped: the next is seen
    assert limits[1] < 8 * H


def test_a_real_change_of_rhythm_is_followed_either_way():
    hourly = list(np.arange(0, 10 * 24) * H)
    six = [hourly[-1] + k * 6 * H for k in range(1, 9)]            # two days every 6 h
    _c, seen, cadence, count = learn(series(hourly + six), 1, fold=True)
    limits = [float(kernels.silence_limits(3 * H, 3.0, cadence, count)[0])]
    # replay interval by interval: how many 6-hourly reports come later than the limit then in force
    state = (np.full(1, NAN), np.full(1, NAN), np.zeros(1, dtype=np.int32))
    _c, *state = learn(series(hourly), 1, state=state, fold=True)
    late = 0
    for t in six:
        limit = float(kernels.silence_limits(3 * H, 3.0, state[1], state[2])[0])
        late += 6 * H > limit
        _c, *state = learn(series([t]), 1, state=tuple(state), fold=True)
    assert late <= 3 and limits[0] > 2 * 6 * H, (late, limits)   # two days on: over two of the new reports
    # and back to hourly: within two days the limit is under 6 h again
    back = [six[-1] + k * H for k in range(1, 49)]
    _c, *state = learn(series(back), 1, state=tuple(state), fold=True)
    assert float(kernels.silence_limits(3 * H, 3.0, state[1], state[2])[0]) < 6 * H


def test_silence_limits_floor_until_learnt_then_missed_reports():
    cadence = np.array([6 * H, 6 * H, H, NAN, 0.5 * H])
    count = np.array([kc.CADENCE_MIN_INTERVALS, kc.CADENCE_MIN_INTERVALS - 1, 9, 9, 9], dtype=np.int32)
    limits = kernels.silence_limits(3 * H, 3.0, cadence, count)
    assert limits.tolist() == [18 * H, 3 * H, 3 * H, 3 * H, 3 * H]
    assert limits.tolist() == [naive.silence_limit(3 * H, 3.0, cadence.tolist(), count.tolist(), s) for s in range(5)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 3),
                          st.one_of(st.floats(0, 3e5, allow_nan=False), st.just(NAN), st.floats(0, 120))),
                max_size=60),
       st.booleans(), st.integers(0, 6))
def test_learn_matches_naive_on_random_input(raw, fold, initial_count):
    readings = sorted(raw, key=lambda r: -1.0 if math.isnan(r[1]) else r[1])
    state = (np.array([NAN, 50.0, 1000.0]), np.array([NAN, 200.0, 3600.0]),
             np.array([0, min(initial_count, 3), initial_count], dtype=np.int32))
    learn(readings, 3, state=state, fold=fold)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(1, 6 * H), min_size=2, max_size=80), st.integers(1, 5))
def test_one_batch_or_many_learn_the_same(intervals, pieces):
    times = np.cumsum(intervals).tolist()
    _c, _s, whole, whole_n = learn(series(times), 1, fold=True)
    state = (np.full(1, NAN), np.full(1, NAN), np.zeros(1, dtype=np.int32))
    cut = np.array_split(np.array(times), pieces)
    for part in cut:
        _c, *state = learn(series(part.tolist()), 1, state=tuple(state), fold=True)
    assert same(state[1], whole) and state[2].tolist() == whole_n.tolist()


def test_learn_refuses_bad_arguments():
    i, f = np.zeros(2, dtype=np.int32), np.zeros(2)
    c, n = np.full(3, NAN), np.zeros(3, dtype=np.int32)
    with pytest.raises(TypeError):
        kernels.learn_cadence(f, f, np.zeros(3), c, n)
    with pytest.raises(ValueError):
        kernels.learn_cadence(i, np.zeros(3), np.zeros(3), c, n)
    with pytest.raises(ValueError):
        kernels.learn_cadence(i, f, np.zeros(3), np.full(2, NAN), n)
    ro = np.zeros(3)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="writable"):
        kernels.learn_cadence(i, f, ro, c, n, fold=True)
    kernels.learn_cadence(i, f, ro, c, n)            # read only is fine when not folding
    with pytest.raises(ValueError, match="together"):
        kernels.sweep_absence(1.0, 1.0, np.zeros(3), np.full(3, NAN), cadence=c)
    with pytest.raises(ValueError, match="missed_reports"):
        kernels.sweep_absence(1.0, 1.0, np.zeros(3), np.full(3, NAN), cadence=c, cadence_count=n, missed_reports=-1)
    with pytest.raises(ValueError):
        kernels.silence_limits(NAN, 3.0, c, n)
    e = np.empty(0)
    assert kernels.learn_cadence(np.empty(0, dtype=np.int32), e, e, e.copy(), np.empty(0, dtype=np.int32)).shape == (0,)


# --- the absence sweeps with a learnt cadence ----------------------------------------------------

def test_a_six_hourly_meter_is_silent_after_missed_reports_an_hourly_one_after_the_floor():
    last_seen = np.array([0.0, 0.0, 0.0])
    cadence = np.array([6 * H, H, 6 * H])
    count = np.array([9, 9, 1], dtype=np.int32)        # the third is new: the floor alone
    gw, gw_out = np.full(3, -1, dtype=np.int32), np.empty(0)
    learnt = {"cadence": cadence, "cadence_count": count, "missed_reports": 3.0}
    since = np.full(3, NAN)
    codes = kernels.sweep_meter_silent(3 * H, 3 * H, last_seen, gw, gw_out, since, **learnt)
    assert codes.tolist() == [kc.NO_CHANGE, kc.RAISED, kc.RAISED]
    codes = kernels.sweep_meter_silent(18 * H, 3 * H, last_seen, gw, gw_out, since, **learnt)
    assert codes.tolist() == [kc.RAISED, kc.NO_CHANGE, kc.NO_CHANGE]
    # without a cadence the floor alone, as before
    since = np.full(3, NAN)
    assert kernels.sweep_meter_silent(3 * H, 3 * H, last_seen, gw, gw_out, since).tolist() == [kc.RAISED] * 3


def test_no_use_counts_a_six_hourly_meter_as_still_reporting_between_its_reports():
    last_seen, last_use = np.array([20 * H, 20 * H]), np.array([0.0, 0.0])
    cadence, count = np.array([6 * H, H]), np.array([9, 9], dtype=np.int32)
    gw, since = np.full(2, -1, dtype=np.int32), np.full(2, NAN)
    codes = kernels.sweep_no_use(25 * H, 24 * H, 3 * H, last_seen, last_use, gw, np.empty(0), since,
                                 cadence=cadence, cadence_count=count, missed_reports=3.0)
    assert codes.tolist() == [kc.RAISED, kc.NO_CHANGE]   # the hourly meter, 5 h quiet, is silent: a device case


def _random_absence_case(data, n):
    floats = st.one_of(st.just(NAN), st.floats(0, 1e5))
    seen = data.draw(st.lists(floats, min_size=n, max_size=n))
    since = data.draw(st.lists(floats, min_size=n, max_size=n))
    cadence = data.draw(st.lists(st.one_of(st.just(NAN), st.floats(0, 4e4)), min_size=n, max_size=n))
    count = data.draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    k = data.draw(st.sampled_from([0.0, 2.0, 3.0, 4.5]))
    watermark = data.draw(st.floats(0, 2e5))
    return seen, since, cadence, count, k, watermark


def arr(values, dtype=np.float64):
    return np.array(values, dtype=dtype)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_cadence_aware_sweeps_match_naive_on_random_state(data):
    n = data.draw(st.integers(0, 6))
    seen, since, cadence, count, k, w = _random_absence_case(data, n)
    learnt = {"cadence": arr(cadence), "cadence_count": arr(count, np.int32), "missed_reports": k}
    got_since = arr(since)
    codes = kernels.sweep_absence(w, 7200.0, arr(seen), got_since, **learnt)
    want = naive.sweep_absence(w, 7200.0, seen, since, cadence, count, k)
    assert codes.tolist() == want[0] and same(got_since, want[1])

    meter_gw = data.draw(st.lists(st.integers(-1, 2), min_size=n, max_size=n))
    gw_out = data.draw(st.lists(st.one_of(st.just(NAN), st.floats(0, 1e5)), min_size=2, max_size=2))
    got_since = arr(since)
    codes = kernels.sweep_meter_silent(w, 10800.0, arr(seen), arr(meter_gw, np.int32), arr(gw_out), got_since,
                                       **learnt)
    want = naive.sweep_meter_silent(w, 10800.0, seen, meter_gw, gw_out, since, cadence, count, k)
    assert codes.tolist() == want[0] and same(got_since, want[1])

    last_use = data.draw(st.lists(st.one_of(st.just(NAN), st.floats(0, 1e5)), min_size=n, max_size=n))
    got_since = arr(since)
    codes = kernels.sweep_no_use(w, 86400.0, 10800.0, arr(seen), arr(last_use), arr(meter_gw, np.int32),
                                 arr(gw_out), got_since, **learnt)
    want = naive.sweep_no_use(w, 86400.0, 10800.0, seen, last_use, meter_gw, gw_out, since, cadence, count, k)
    assert codes.tolist() == want[0] and same(got_since, want[1])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 3), st.one_of(st.just(NAN), st.floats(0, 1e5))), max_size=30),
       st.lists(st.one_of(st.just(NAN), st.floats(0, 1e5)), min_size=3, max_size=3))
def test_close_absence_matches_naive(readings, since):
    got_since = arr(since)
    codes, starts = kernels.close_absence(arr([r[0] for r in readings], np.int32), arr([r[1] for r in readings]),
                                          got_since)
    want_codes, want_starts, want_since = naive.close_absence(readings, since)
    assert codes.tolist() == want_codes and same(starts, want_starts) and same(got_since, want_since)


def test_close_absence_closes_with_the_reading_that_ends_it():
    since = np.array([100.0, NAN])
    codes, starts = kernels.close_absence(np.array([0, 0, 1], dtype=np.int32), np.array([50.0, 150.0, 160.0]), since)
    assert codes.tolist() == [kc.NO_CHANGE, kc.CLEARED, kc.NO_CHANGE] and starts[1] == 100.0
    assert np.isnan(since).all()


def test_an_injected_silence_in_a_learnt_hourly_series_is_seen_and_ordinary_gaps_are_not():
    """End to end over the kernels: learn, then sweep every 5 min; a 6-hourly meter's ordinary gaps raise
    nothing, an 8 h silence of the hourly meter and a 20 h silence of the 6-hourly one raise once each."""
    hourly = [(0, k * H) for k in range(48)] + [(0, 55 * H + k * H) for k in range(0, 26)]
    six = [(1, k * 6 * H) for k in range(1, 10)] + [(1, 74 * H)]
    readings = sorted(hourly + six, key=lambda r: r[1])
    # the 6-hourly meter has its cadence already (a new one is judged by the floor: see above)
    last_seen, cadence = np.array([NAN, 0.0]), np.array([NAN, 6 * H])
    count = np.array([0, kc.CADENCE_MIN_INTERVALS], dtype=np.int32)
    since = np.full(2, NAN)
    raised = []
    position = 0
    for tick in np.arange(300.0, 80 * H, 300.0):
        batch = [r for r in readings[position:] if r[1] < tick]
        position += len(batch)
        if batch:
            kernels.learn_cadence(arr([r[0] for r in batch], np.int32), arr([r[1] for r in batch]), last_seen,
                                  cadence, count, fold=True)
        codes = kernels.sweep_absence(tick, 3 * H, last_seen, since, cadence=cadence, cadence_count=count,
                                      missed_reports=3.0)
        raised += [(s, float(tick)) for s in np.flatnonzero(codes == kc.RAISED)]
    assert [s for s, _t in raised] == [0, 1]
    assert raised[0][1] == pytest.approx(47 * H + 3 * H, abs=300)        # the hourly one after 3 h
    assert raised[1][1] >= 54 * H + 18 * H                                # the 6-hourly one after 3 reports


# --- the longest recent gap (kernels.cadence, step 4) ------------------------------------------------

def learn_gaps(readings, n, state=None, fold=True):
    """learn() with the longest gaps kept; kernel = naive. Returns (codes, last_seen, cadence, count, gap)."""
    slot = np.array([r[0] for r in readings], dtype=np.int32)
    ts = np.array([r[1] for r in readings], dtype=np.float64)
    if state is None:
        state = (np.full(n, NAN), np.full(n, NAN), np.zeros(n, dtype=np.int32), np.zeros(n))
    last_seen, cadence, count, gap = (a.copy() for a in state)
    codes = kernels.learn_cadence(slot, ts, last_seen, cadence, count, fold=fold, longest_gap=gap)
    want = naive.learn_cadence(readings, *[a.tolist() for a in state[:3]], fold=fold, gaps=state[3].tolist())
    assert codes.tolist() == want[0]
    assert same(last_seen, want[1]) and same(cadence, want[2]) and count.tolist() == want[3]
    assert np.allclose(gap, want[4], rtol=1e-12, atol=0, equal_nan=True)
    return codes, last_seen, cadence, count, gap


def test_gap_memory_constant_is_the_kernels():
    assert naive.CADENCE_GAP_MEMORY_S == kc.CADENCE_GAP_MEMORY_S == 30 * 86400.0


def test_longest_gap_keeps_the_longest_interval_and_fades_by_e_per_memory():
    times = [0.0, H, 2 * H, 11 * H, 12 * H]                   # a 9 h dropout among hourly readings
    *_, gap = learn_gaps(series(times), 1)
    assert gap[0] == pytest.approx(9 * H * math.exp(-H / kc.CADENCE_GAP_MEMORY_S))
    month = 12 * H + np.arange(1, 30 * 24 + 1) * H              # a month of hourly readings after it
    state = learn_gaps(series(times), 1)[1:]
    *_, gap_later = learn_gaps(series(month), 1, state=state)
    assert gap_later[0] == pytest.approx(gap[0] / math.e, rel=1e-9)


def test_longest_gap_ignores_same_delivery_stale_and_invalid_readings_and_repairs_nan():
    state = (np.array([0.0, 0.0]), np.array([H, H]), np.full(2, kc.CADENCE_MIN_INTERVALS, dtype=np.int32),
             np.array([NAN, 2 * H]))
    readings = [(0, 30.0), (0, 20.0), (5, 100.0), (1, NAN), (1, 10.0), (0, H)]
    *_, gap = learn_gaps(readings, 2, state=state)
    assert gap[0] == H - 30.0                # NaN replaced by the first real interval (from the 30 s one)
    assert gap[1] == 2 * H                   # 10 s after the last: one delivery, nothing learnt


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 3), st.one_of(st.just(NAN), st.floats(0, 4e6))), max_size=40),
       st.lists(st.one_of(st.just(NAN), st.floats(0, 1e5)), min_size=3, max_size=3),
       st.booleans())
def test_learning_with_gaps_matches_naive_on_random_readings(readings, gaps, fold):
    readings = sorted(readings, key=lambda r: (math.isnan(r[1]), r[1]))
    learn_gaps(readings, 3, state=(np.full(3, NAN), np.full(3, NAN), np.zeros(3, dtype=np.int32), arr(gaps)),
               fold=fold)


def test_silence_limit_with_gaps_margin_ceiling_and_warm_up():
    cadence = np.array([H, H, H, H, NAN])
    count = np.array([kc.CADENCE_MIN_INTERVALS] * 4 + [kc.CADENCE_MIN_INTERVALS], dtype=np.int32)
    count[3] = kc.CADENCE_MIN_INTERVALS - 1                      # not learnt yet: the floor
    gap = np.array([0.0, 9 * H, 100 * H, 100 * H, 9 * H])
    limits = kernels.silence_limits(3 * H, 3.0, cadence, count, longest_gap=gap, gap_margin=1.5,
                                    gap_ceiling=48 * H)
    assert limits.tolist() == [3 * H, 13.5 * H, 48 * H, 3 * H, 13.5 * H]
    want = [naive.silence_limit(3 * H, 3.0, cadence.tolist(), count.tolist(), s, gap.tolist(), 1.5, 48 * H)
            for s in range(5)]
    assert limits.tolist() == want
    off = kernels.silence_limits(3 * H, 3.0, cadence, count, longest_gap=gap, gap_margin=0.0, gap_ceiling=48 * H)
    assert off.tolist() == kernels.silence_limits(3 * H, 3.0, cadence, count).tolist()
    # a cadence rule longer than the ceiling is not cut by it: the ceiling bounds the gap term only
    slow = kernels.silence_limits(3 * H, 3.0, np.array([24 * H]), np.array([4], dtype=np.int32),
                                  longest_gap=np.array([30 * H]), gap_margin=1.5, gap_ceiling=48 * H)
    assert slow.tolist() == [72 * H]


def test_silence_rule_is_validated_in_one_place():
    c, n = np.full(2, H), np.full(2, 4, dtype=np.int32)
    seen, since = np.zeros(2), np.full(2, NAN)
    with pytest.raises(ValueError, match="gap_margin"):
        kernels.sweep_absence(1.0, 1.0, seen, since, cadence=c, cadence_count=n, longest_gap=np.zeros(2),
                              gap_margin=-1.0)
    with pytest.raises(ValueError, match="gap_ceiling"):
        kernels.silence_limits(1.0, 3.0, c, n, longest_gap=np.zeros(2), gap_margin=1.0, gap_ceiling=0.0)
    with pytest.raises(ValueError, match="longest_gap needs cadence"):
        kernels.sweep_absence(1.0, 1.0, seen, since, longest_gap=np.zeros(2))
    with pytest.raises(ValueError, match="longest_gap"):
        kernels.learn_cadence(np.zeros(1, dtype=np.int32), np.zeros(1), seen.copy(), c, n, longest_gap=np.zeros(3))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_gap_aware_sweeps_match_naive_on_random_state(data):
    n = data.draw(st.integers(0, 6))
    seen, since, cadence, count, k, w = _random_absence_case(data, n)
    gaps = data.draw(st.lists(st.one_of(st.just(NAN), st.floats(0, 2e5)), min_size=n, max_size=n))
    margin = data.draw(st.sampled_from([0.0, 1.0, 1.5, 3.0]))
    ceiling = data.draw(st.sampled_from([3600.0, 86400.0, math.inf]))
    learnt = {"cadence": arr(cadence), "cadence_count": arr(count, np.int32), "missed_reports": k,
              "longest_gap": arr(gaps), "gap_margin": margin, "gap_ceiling": ceiling}
    got_since = arr(since)
    codes = kernels.sweep_absence(w, 7200.0, arr(seen), got_since, **learnt)
    want = naive.sweep_absence(w, 7200.0, seen, since, cadence, count, k, gaps, margin, ceiling)
    assert codes.tolist() == want[0] and same(got_since, want[1])
    meter_gw = data.draw(st.lists(st.integers(-1, 2), min_size=n, max_size=n))
    gw_out = data.draw(st.lists(st.one_of(st.just(NAN), st.floats(0, 1e5)), min_size=2, max_size=2))
    gw_ended = data.draw(st.lists(st.one_of(st.just(NAN), st.floats(0, 1e5)), min_size=2, max_size=2))
    got_since = arr(since)
    codes = kernels.sweep_meter_silent(w, 10800.0, arr(seen), arr(meter_gw, np.int32), arr(gw_out), got_since,
                                       gateway_outage_ended=arr(gw_ended), **learnt)
    want = naive.sweep_meter_silent(w, 10800.0, seen, meter_gw, gw_out, since, cadence, count, k, gaps, margin,
                                    ceiling, gw_ended)
    assert codes.tolist() == want[0] and same(got_since, want[1])


def test_meters_get_one_cadence_of_grace_after_their_gateways_return():
    """A gateway back at 10 h after an outage (its first reading from one meter); the other hourly
    meters' first readings follow over the next minutes: none is silent at 10 h 05, and one that stays
    quiet is silent an hour (its cadence) after the gateway's return, with its own last reading as start."""
    last_seen = np.array([2 * H, 2 * H, 10 * H])     # meters 0 and 1 quiet since the outage began
    learnt = {"cadence": np.full(3, H), "cadence_count": np.full(3, kc.CADENCE_MIN_INTERVALS, dtype=np.int32),
              "missed_reports": 3.0}
    gw, gw_out, gw_ended = np.zeros(3, dtype=np.int32), np.array([NAN]), np.array([10 * H])
    since = np.full(3, NAN)
    assert kernels.sweep_meter_silent(10 * H + 300, 3 * H, last_seen, gw, gw_out, since, gateway_outage_ended=gw_ended,
                                      **learnt).tolist() == [kc.NO_CHANGE] * 3
    last_seen[0] = 10 * H + 900                       # meter 0's reading arrives; meter 1 stays quiet
    codes = kernels.sweep_meter_silent(11 * H, 3 * H, last_seen, gw, gw_out, since, gateway_outage_ended=gw_ended,
                                       **learnt)
    assert codes.tolist() == [kc.NO_CHANGE, kc.RAISED, kc.NO_CHANGE] and since[1] == 2 * H
    # without a learnt cadence there is no grace: judged at once, as before the gateway knew its return
    fresh = np.full(3, NAN)
    assert kernels.sweep_meter_silent(10 * H + 300, 3 * H, np.array([2 * H, 2 * H, 10 * H]), gw, gw_out, fresh,
                                      gateway_outage_ended=gw_ended).tolist() == [kc.RAISED, kc.RAISED, kc.NO_CHANGE]
    with pytest.raises(ValueError, match="gateway_outage_ended"):
        kernels.sweep_meter_silent(1.0, 1.0, last_seen, gw, gw_out, np.full(3, NAN), gateway_outage_ended=np.zeros(2))


def test_a_recurring_dropout_alerts_once_a_stop_within_the_ceiling_a_steady_meter_after_the_floor():
    """End to end over the kernels, 5-minute sweeps: meter 0 drops out for 9 h twice a week apart (the
    first is an alert, the second is not); it then stops for 4 days (an alert at 1.5 x its longest gap,
    within the 48 h ceiling). Meter 1 reports hourly without fail until it misses 11 h (an alert after
    3 h), reports once more and stops (an alert after 1.5 x 11 h)."""
    flaky = [k * H for k in range(0, 48)] + [57 * H + k * H for k in range(0, 160)] + \
            [226 * H + k * H for k in range(0, 100)] + [425 * H + k * H for k in range(0, 3)]
    steady = [k * H for k in range(0, 300)] + [310 * H]
    readings = sorted([(0, t) for t in flaky] + [(1, t) for t in steady], key=lambda r: r[1])
    last_seen, cadence = np.full(2, NAN), np.full(2, NAN)
    count, gap, since = np.zeros(2, dtype=np.int32), np.zeros(2), np.full(2, NAN)
    raised, position = [], 0
    for tick in np.arange(300.0, 430 * H, 300.0):
        end = position
        while end < len(readings) and readings[end][1] < tick:
            end += 1
        if end > position:
            batch = readings[position:end]
            kernels.learn_cadence(arr([r[0] for r in batch], np.int32), arr([r[1] for r in batch]), last_seen,
                                  cadence, count, fold=True, longest_gap=gap)
            position = end
        codes = kernels.sweep_absence(tick, 3 * H, last_seen, since, cadence=cadence, cadence_count=count,
                                      missed_reports=3.0, longest_gap=gap, gap_margin=1.5, gap_ceiling=48 * H)
        raised += [(int(s), float(tick)) for s in np.flatnonzero(codes == kc.RAISED)]
    flaky_alerts = [t for s, t in raised if s == 0]
    steady_alerts = [t for s, t in raised if s == 1]
    assert len(flaky_alerts) == 2
    assert flaky_alerts[0] == pytest.approx(47 * H + 3 * H, abs=300)            # the first dropout: after 3 h
    stop_start = 325 * H
    assert stop_start + 13 * H < flaky_alerts[1] <= stop_start + 48 * H + 300     # the stop: ~1.5 x 9 h, <= 48 h
    # the steady one: after 3 h; back at 310 h, then stopped for good: 1.5 x the 11 h it has just learnt
    assert steady_alerts == [pytest.approx(299 * H + 3 * H, abs=300), pytest.approx(310 * H + 16.5 * H, abs=300)]
