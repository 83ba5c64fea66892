"""Water flow kernels against the naive references: fixed, random, NaN and edge inputs."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kernels
from kernels import config as kc
from kernels.water_flow import ALARM_CLEARED, ALARM_RAISED, DEVICE_ALARM_CODES, NIGHT_BINS, NIGHT_HISTORY
from tests import naive

NAN = float("nan")
H = 3600.0


def same(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def columns(readings, n):
    return [np.array([r[k] for r in readings], dtype=np.int32 if k == 0 else np.float64) for k in range(n)]


def nans(n, k):
    return [np.full(n, NAN) for _ in range(k)]


def facts(slot, ts, index, last_ts, last_index):
    """The tracker's facts for a slice (kernels.previous_readings), folding the meters' newest reading into
    ``last_ts`` / ``last_index``: the kernels below take these instead of keeping their own copy, and the
    naive references (which keep their own copy, as the detectors did) must agree with them."""
    return kernels.previous_readings(slot, ts, last_ts, index, last_index, fold=True)


# --- continuous flow --------------------------------------------------------------------------------------------

def check_continuous(readings, n_meters=2, after=4 * H, max_interval=1.5 * H, state=None):
    slot, ts, index = columns(readings, 3) if readings else (np.empty(0, np.int32), np.empty(0), np.empty(0))
    state = state or nans(n_meters, 4)
    arrays = [a.copy() for a in state]
    seen = (~np.isnan(arrays[0])).astype(np.int8)
    prev_ts, prev_index, new = facts(slot, ts, index, arrays[0], arrays[1])
    codes, starts = kernels.continuous_flow(slot, ts, index, prev_ts, prev_index, new, after, max_interval, seen,
                                            arrays[2], arrays[3])
    want = naive.continuous_flow(readings, after, max_interval, *[a.tolist() for a in state])
    assert codes.tolist() == want[0] and same(starts, want[1])
    for got, expected in zip(arrays, want[2:]):
        assert same(got, expected)
    return codes.tolist(), starts.tolist(), arrays


def test_continuous_flow_raises_after_a_day_without_a_still_interval_and_clears_on_one():
    rows = [(0, k * H, 1.0 + 0.01 * k) for k in range(6)] + [(0, 6 * H, 1.05), (0, 7 * H, 1.06)]
    codes, starts, (_ts, _x, flow_since, since) = check_continuous(rows)
    assert codes == [0, 0, 0, 0, kc.RAISED, 0, kc.CLEARED, 0]   # 4 flowing hours since t=0, then a still one
    assert starts[4] == 0.0 and starts[6] == 0.0 and np.isnan(since[0]) and flow_since[0] == 6 * H


def test_continuous_flow_long_gap_or_backwards_restarts_the_count():
    rows = [(0, 0.0, 1.0), (0, H, 1.1), (0, 2 * H, 1.2), (0, 5 * H, 1.5),   # 3 h gap: unknown
            (0, 6 * H, 1.6), (0, 7 * H, 1.5), (0, 8 * H, 1.6)]               # backwards
    codes, _s, _a = check_continuous(rows, after=3 * H)
    assert codes == [0] * 7


def test_continuous_flow_stale_nan_and_bad_slots_are_skipped():
    rows = [(0, 0.0, 1.0), (0, H, 1.1), (0, 0.5 * H, 9.0), (0, NAN, 1.2), (0, 2 * H, NAN), (5, 3 * H, 1.0),
            (-1, 3 * H, 1.0), (0, 3 * H, 1.3)]
    codes, _s, (ts, index, _f, _since) = check_continuous(rows)
    assert codes == [0] * 8 and ts[0] == 3 * H and index[0] == 1.3


def test_continuous_flow_empty_and_one_reading():
    assert check_continuous([])[0] == []
    assert check_continuous([(1, 10.0, 2.0)])[0] == [0]


def test_continuous_flow_validates():
    new, seen = np.ones(1, dtype=np.bool_), np.zeros(1, dtype=np.int8)
    with pytest.raises(TypeError):
        kernels.continuous_flow(np.zeros(1, np.int64), np.zeros(1), np.zeros(1), *nans(1, 2), new, 1.0, 1.0, seen,
                                *nans(1, 2))
    with pytest.raises(ValueError):
        kernels.continuous_flow(np.zeros(1, np.int32), np.zeros(1), np.zeros(1), *nans(1, 2), new, NAN, 1.0, seen,
                                *nans(1, 2))
    with pytest.raises(ValueError):
        kernels.continuous_flow(np.zeros(2, np.int32), np.zeros(1), np.zeros(1), *nans(1, 2), new, 1.0, 1.0, seen,
                                *nans(1, 2))
    with pytest.raises(TypeError):    # the facts' "new" is bool
        kernels.continuous_flow(np.zeros(1, np.int32), np.zeros(1), np.zeros(1), *nans(1, 2), seen, 1.0, 1.0, seen,
                                *nans(1, 2))


def test_continuous_flow_first_reading_after_a_reset_is_a_baseline_again():
    """The consent gate resets the detector's state (``seen`` to 0) while the tracker keeps the meter's previous
    reading: the next reading is a baseline, as it was when the detector kept its own copy."""
    slot, ts, index = np.zeros(3, np.int32), np.array([0.0, H, 2 * H]), np.array([1.0, 1.1, 1.2])
    prev_ts, prev_index, new = facts(slot, ts, index, np.array([-H]), np.array([0.9]))
    seen, flow_since, since = np.zeros(1, np.int8), *nans(1, 2)
    kernels.continuous_flow(slot, ts, index, prev_ts, prev_index, new, 2 * H, 1.5 * H, seen, flow_since, since)
    assert seen[0] == 1 and flow_since[0] == 0.0     # the run starts at the baseline, not at the reading before


# --- burst ------------------------------------------------------------------------------------------------------

def check_burst(readings, n_meters=2, share=0.5, duration=0.5 * H, max_interval=1.5 * H, state=None):
    if readings:
        slot, ts, index, peak, nominal = columns(readings, 5)
    else:
        slot, ts, index, peak, nominal = np.empty(0, np.int32), *[np.empty(0) for _ in range(4)]
    state = state or nans(n_meters, 5)
    arrays = [a.copy() for a in state]
    prev_ts, prev_index, new = facts(slot, ts, index, arrays[0], arrays[1])
    codes, starts = kernels.burst(slot, ts, index, peak, nominal, prev_ts, prev_index, new, share, duration,
                                  max_interval, *arrays[2:])
    want = naive.burst(readings, share, duration, max_interval, *[a.tolist() for a in state])
    assert codes.tolist() == want[0] and same(starts, want[1])
    for got, expected in zip(arrays, want[2:]):
        assert same(got, expected)
    return codes.tolist(), starts.tolist(), arrays


def test_burst_needs_volume_and_peak_and_clears_on_a_normal_interval():
    rows = [(0, 0.0, 10.0, 0.0, 2.5),
            (0, H, 10.3, 0.6, NAN),      # normal hour; Q3 kept from the first reading
            (0, 2 * H, 11.0, 1.0, NAN),  # 0.7 m3 but peak below 1.25 m3/h: not a burst
            (0, 3 * H, 12.5, 1.5, NAN),  # burst
            (0, 4 * H, 14.0, NAN, NAN),  # still high (no peak reported: volume decides)
            (0, 5 * H, 14.2, 0.5, NAN)]  # normal again
    codes, starts, _a = check_burst(rows)
    assert codes == [0, 0, 0, kc.RAISED, 0, kc.CLEARED] and starts[3] == 2 * H and starts[5] == 2 * H


def test_burst_short_intervals_must_last_the_minimum_duration_and_long_ones_are_not_judged():
    q = 2.0   # limit 1 m3/h, 15-minute readings carrying 0.3 m3 each
    rows = [(0, 0.0, 0.0, 0.0, q)] + [(0, k * 900.0, 0.3 * k, 1.2, q) for k in range(1, 4)]
    codes, starts, _a = check_burst(rows)
    assert codes == [0, 0, kc.RAISED, 0] and starts[2] == 0.0
    codes, _s, _a = check_burst([(1, 0.0, 0.0, 0.0, q), (1, 3 * H, 9.0, 3.0, q)])
    assert codes == [0, 0]


def test_burst_without_nominal_flow_never_raises_and_edges():
    assert check_burst([(0, 0.0, 0.0, NAN, NAN), (0, H, 5.0, 5.0, NAN)])[0] == [0, 0]
    assert check_burst([])[0] == []
    assert check_burst([(0, 0.0, 1.0, NAN, 2.5)])[0] == [0]
    assert check_burst([(0, NAN, 1.0, 1.0, 2.5), (0, 0.0, NAN, 1.0, 2.5)])[0] == [0, 0]
    with pytest.raises(ValueError):
        check_burst([(0, 0.0, 1.0, NAN, 2.5)], share=0.0)


# --- backflow -----------------------------------------------------------------------------------------------------

def check_backflow(readings, n_meters=2, min_drop=0.002, replacement=5.0, state=None):
    slot, ts, index = columns(readings, 3) if readings else (np.empty(0, np.int32), np.empty(0), np.empty(0))
    state = state or nans(n_meters, 3)
    arrays = [a.copy() for a in state]
    prev_ts, prev_index, new = facts(slot, ts, index, arrays[0], arrays[1])
    codes, starts = kernels.backflow(slot, ts, index, prev_ts, prev_index, new, min_drop, replacement, arrays[2])
    want = naive.backflow(readings, min_drop, replacement, *[a.tolist() for a in state])
    assert codes.tolist() == want[0] and same(starts, want[1])
    for got, expected in zip(arrays, want[2:]):
        assert same(got, expected)
    return codes.tolist(), starts.tolist(), arrays


def test_backflow_raises_on_a_falling_index_and_ignores_jitter_and_meter_swaps():
    rows = [(0, 0.0, 100.0), (0, H, 99.999),   # 1 L: below the 2 L minimum
            (0, 2 * H, 99.98), (0, 3 * H, 99.96), (0, 4 * H, 99.96),   # falls twice, then flat: cleared
            (0, 5 * H, 0.01), (0, 6 * H, 0.02)]                        # swap: no alert
    codes, starts, _a = check_backflow(rows)
    assert codes == [0, 0, kc.RAISED, 0, kc.CLEARED, 0, 0] and starts[2] == H and starts[4] == H
    assert check_backflow([])[0] == [] and check_backflow([(1, 0.0, 3.0)])[0] == [0]
    assert check_backflow([(0, 0.0, 3.0), (0, NAN, 1.0), (0, H, NAN), (0, -1.0, 1.0)])[0] == [0] * 4


# --- device alarms ------------------------------------------------------------------------------------------------

def check_alarm(readings, n_meters=2, clear_after=2.0, state=None):
    slot, ts, alarm = columns(readings, 3) if readings else (np.empty(0, np.int32), np.empty(0), np.empty(0))
    state = state or (np.full(n_meters, NAN), np.zeros(n_meters, np.int8), np.zeros(n_meters), np.full(n_meters, NAN))
    arrays = [a.copy() for a in state]
    _prev_ts, _none, new = kernels.previous_readings(slot, ts, arrays[0], fold=True)   # no index: time alone
    out, cleared, raised = kernels.device_alarm(slot, ts, alarm, new, clear_after, *arrays[1:])
    want = naive.device_alarm(readings, clear_after, *[a.tolist() for a in state])
    got = []
    for i in range(len(readings)):
        events = []
        if out[i] & ALARM_CLEARED:
            events.append(("cleared", cleared[i]))
        if out[i] & ALARM_RAISED:
            events.append(("raised", raised[i]))
        got.append(events)
    assert got == want[0]
    for array, expected in zip(arrays, want[1:]):
        assert same(array, expected)
    return got


def test_device_alarm_one_episode_per_code_cleared_after_two_quiet_readings():
    leak, tamper = DEVICE_ALARM_CODES["leak"], DEVICE_ALARM_CODES["tamper"]
    rows = [(0, 0.0, NAN), (0, H, leak), (0, 2 * H, leak), (0, 3 * H, 0.0),   # one quiet reading: still open
            (0, 4 * H, leak), (0, 5 * H, tamper),                             # another code: close + open
            (0, 6 * H, NAN), (0, 7 * H, NAN), (0, 8 * H, 99.0)]                # two quiet: cleared; unknown = none
    events = check_alarm(rows)
    assert events == [[], [("raised", H)], [], [], [], [("cleared", H), ("raised", 5 * H)], [],
                      [("cleared", 5 * H)], []]


def test_device_alarm_edges():
    assert check_alarm([]) == []
    assert check_alarm([(1, 0.0, 3.0)]) == [[("raised", 0.0)]]
    assert check_alarm([(0, NAN, 3.0), (0, 0.0, 2.0), (0, -5.0, 1.0), (7, 0.0, 1.0)]) == [[], [("raised", 0.0)], [], []]


# --- night flow ---------------------------------------------------------------------------------------------------

def run_night(readings, sweeps, n_meters=4, n_districts=2, thresholds=(7200.0, 3600.0, 2.0, 2.0, 1.5, 0.003),
              max_interval=5400.0):
    """Feed readings, then the sweeps in order (each after the readings dated before it); compare all along."""
    night_start, close_after, min_meters, min_nights, ratio, margin = thresholds
    meters = nans(n_meters, 2)
    night, closed = nans(n_districts, 2)
    sums, counts = np.zeros((n_districts, NIGHT_BINS)), np.zeros((n_districts, NIGHT_BINS))
    history = np.full((n_districts, NIGHT_HISTORY), NAN)
    nights, since = np.zeros(n_districts), np.full(n_districts, NAN)
    ref = {"meters": [m.tolist() for m in meters], "night": night.tolist(), "closed": closed.tolist(),
           "sum": sums.tolist(), "count": counts.tolist(), "history": [[] for _ in range(n_districts)],
           "since": since.tolist()}
    found = []
    pending = sorted(readings, key=lambda r: r[1])
    for tick in sorted(sweeps):
        batch = [r for r in pending if r[1] < tick]
        pending = [r for r in pending if r[1] >= tick]
        if batch:
            slot, ts, index, district = columns(batch, 4)
            district = district.astype(np.int32)
            prev_ts, prev_index, new = facts(slot, ts, index, *meters)
            kernels.night_flow_accumulate(slot, ts, index, prev_ts, prev_index, new, district, night_start,
                                          max_interval, night, closed, sums, counts)
            (*ref["meters"], ref["night"], ref["closed"], ref["sum"], ref["count"]) = naive.night_flow_accumulate(
                batch, night_start, max_interval, *ref["meters"], ref["night"], ref["closed"], ref["sum"],
                ref["count"])
        codes, levels = kernels.sweep_night_flow(tick, night_start, close_after, min_meters, min_nights, ratio,
                                                 margin, night, closed, sums, counts, history, nights, since)
        want, ref["night"], ref["closed"], ref["sum"], ref["count"], ref["history"], ref["since"] = \
            naive.sweep_night_flow(tick, night_start, close_after, min_meters, min_nights, ratio, margin,
                                   ref["night"], ref["closed"], ref["sum"], ref["count"], ref["history"], ref["since"])
        assert codes.tolist() == want
        assert same(night, ref["night"]) and same(closed, ref["closed"]) and same(since, ref["since"])
        assert np.allclose(sums, ref["sum"]) and same(counts, ref["count"])
        for g in range(n_districts):
            kept = int(nights[g])
            assert same(history[g, :kept], ref["history"][g])
        found += [(tick, g, int(c)) for g, c in enumerate(codes) if c]
    return found, since


def night_readings(day, meters_litres, district=0, hours=range(1, 7)):
    """Hourly readings of day ``day`` at hours ``hours``, each meter using ``litres`` per hour."""
    rows = []
    for m, litres in meters_litres:
        for h in hours:
            rows.append((m, day * 86400.0 + h * H + m, 10.0 + (day * 24 + h) * litres / 1000.0, district))
    return rows


def test_night_flow_learns_two_nights_then_raises_on_a_rise_and_clears_when_it_falls():
    normal = [(0, 1.0), (1, 2.0), (2, 0.0)]
    risen = [(0, 20.0), (1, 25.0), (2, 15.0)]
    rows = []
    for day, use in ((1, normal), (2, normal), (3, risen), (4, risen), (5, normal)):
        rows += night_readings(day, use)
    ticks = [day * 86400.0 + 5.5 * H for day in range(1, 6)]
    found, since = run_night(rows, ticks)
    assert found == [(ticks[2], 0, kc.RAISED), (ticks[4], 0, kc.CLEARED)]
    assert np.isnan(since[0])


def test_night_flow_skips_thin_nights_late_readings_and_long_intervals():
    rows = night_readings(1, [(0, 1.0)])                     # one meter only: below min_meters=2
    rows += night_readings(2, [(0, 1.0), (1, 1.0)], hours=(1, 5, 6))   # a 4 h interval: not filed
    found, _since = run_night(rows, [86400.0 + 5.5 * H, 2 * 86400.0 + 5.5 * H])
    assert found == []


def test_night_flow_empty_and_one_reading_and_validation():
    assert run_night([], [1000.0])[0] == []
    assert run_night([(0, 2.5 * H, 1.0, 0)], [6 * H])[0] == []
    with pytest.raises(ValueError):
        kernels.sweep_night_flow(0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, *nans(1, 2), np.zeros((1, NIGHT_BINS)),
                                 np.zeros((1, NIGHT_BINS)), np.zeros((1, NIGHT_HISTORY)), np.zeros(1), np.full(1, NAN))
    with pytest.raises(ValueError):
        kernels.sweep_night_flow(0.0, 0.0, 0.0, 1.0, 2.0, 1.0, 0.0, *nans(2, 2), np.zeros((1, NIGHT_BINS)),
                                 np.zeros((1, NIGHT_BINS)), np.zeros((1, NIGHT_HISTORY)), np.zeros(1), np.full(1, NAN))


# --- random inputs --------------------------------------------------------------------------------------------------

maybe = st.one_of(st.floats(-1.0, 30.0, allow_nan=False), st.just(NAN))
steps = st.lists(st.tuples(st.integers(-1, 3), st.floats(0.0, 3.0), st.floats(-0.05, 2.0), maybe, maybe,
                           st.integers(0, 6)), max_size=60)


def walk(items):
    """Random steps -> readings with mostly rising times and indices (cumulative), some stale or falling."""
    t, x, rows = 0.0, {}, []
    for slot, dt_h, use, peak, nominal, alarm in items:
        t += dt_h * H
        x[slot] = x.get(slot, 5.0) + use
        rows.append((slot, t, x[slot], peak, nominal, float(alarm) if alarm < 6 else NAN))
    return rows


@settings(max_examples=150, deadline=None)
@given(steps)
def test_random_streams_match_the_references(items):
    rows = walk(items)
    check_continuous([r[:3] for r in rows], n_meters=4, after=5 * H)
    check_burst([r[:5] for r in rows], n_meters=4)
    check_backflow([r[:3] for r in rows], n_meters=4, min_drop=0.01)
    check_alarm([(r[0], r[1], r[5]) for r in rows], n_meters=4)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.integers(0, 9), st.floats(0.0, 40.0)),
                max_size=120), st.lists(st.integers(0, 4 * 24 * 4), max_size=12))
def test_random_night_flow_matches_the_reference(items, ticks):
    rows, index = [], {}
    for meter, day, hour, litres in items:
        index[meter] = index.get(meter, 1.0) + litres / 1000.0
        rows.append((meter % 4, day * 86400.0 + hour * H + meter, index[meter], meter // 4 - (meter == 5)))
    run_night(rows, [t * 900.0 for t in ticks], thresholds=(7200.0, 1800.0, 1.0, 1.0, 1.2, 0.001))


def test_warm_up_flow_runs():
    kernels.warm_up_flow()


def test_alarm_codes_are_defined_once_and_agree_with_the_schema_and_the_simulator():
    import schemas
    from kernels.water_flow import DEVICE_ALARMS
    from streams.simulate.water import DEVICE_ALARM_KINDS

    enum = schemas.load("water-reading")["definitions"]["reading"]["properties"]["deviceAlarm"]["enum"]
    assert tuple(enum) == DEVICE_ALARMS and DEVICE_ALARM_KINDS == DEVICE_ALARMS[1:]
    assert DEVICE_ALARM_CODES == {name: code for code, name in enumerate(DEVICE_ALARMS)}
