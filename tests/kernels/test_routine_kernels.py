"""The household routine kernel (kernels/routine.py) against its naive reference: fixed, random, NaN and
edge inputs, state round trips, argument checks, and the behaviour it exists for."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kernels
from kernels import config as kc
from kernels.routine import BIN_FIELDS, SLOT_FIELDS, new_routine_state
from tests import naive_routine

NAN = float("nan")
H = 3600.0
DAY = 86400.0
T0 = 1_790_035_200.0          # a UTC midnight
#: The detector's defaults, in the kernel's argument order.
DEFAULT = dict(half_life=14.0, warmup=14.0, spread_after=7.0, recent_weight=0.5, spread_days=30.0, unusual_spread=3.0,
               min_distance=0.2, consecutive=3.0, adapt=14.0, min_daily_use=0.02, min_coverage=72000.0,
               max_interval=5400.0)
#: Short memories and loose bounds, so that a few days of random readings open and close episodes.
QUICK = dict(DEFAULT, half_life=2.0, warmup=2.0, spread_after=1.0, spread_days=3.0, unusual_spread=0.5,
             min_distance=0.0, consecutive=2.0, adapt=4.0, min_daily_use=0.001, min_coverage=0.0)


def arrays(readings):
    if not readings:
        return np.empty(0, np.int32), np.empty(0), np.empty(0)
    return (np.array([r[0] for r in readings], dtype=np.int32), np.array([r[1] for r in readings], dtype=np.float64),
            np.array([r[2] for r in readings], dtype=np.float64))


def kernel_state(state) -> dict:
    fields, *bins = state
    result = {name: array.copy() for name, array in zip(SLOT_FIELDS, fields)}
    for kind, group in zip(BIN_FIELDS, bins):
        result[kind] = np.stack([a.copy() for a in group], axis=1)
    return result


def naive_state(meters) -> dict:
    """The naive meters as the kernel's arrays (None as NaN)."""
    def value(x):
        return NAN if x is None else float(x)

    rows = {"prev_ts": [value(m["prev"] and m["prev"][0]) for m in meters],
            "prev_index": [value(m["prev"] and m["prev"][1]) for m in meters],
            "day": [value(m["day"]) for m in meters], "covered": [m["covered"] for m in meters],
            "days": [m["days"] for m in meters], "spread_days": [m["spread_n"] for m in meters],
            "spread_mean": [m["spread_mean"] for m in meters], "spread_square": [m["spread_square"] for m in meters],
            "run": [m["run"] for m in meters], "run_start": [value(m["run_start"]) for m in meters],
            "since": [value(m["since"]) for m in meters]}
    result = {name: np.array(v, dtype=np.float64) for name, v in rows.items()}
    for kind in BIN_FIELDS:
        result[kind] = np.array([m[kind] for m in meters], dtype=np.float64).reshape(len(meters), -1)
    return result


def close(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-12, atol=1e-15, equal_nan=True))


def run_kernel(readings, th, state):
    slot, ts, index = arrays(readings)
    return kernels.routine_change(slot, ts, index, *th.values(), *state)


def check(readings, th=DEFAULT, n_meters=2, state=None, meters=None):
    """Run kernel and reference on the same readings; assert they agree on every output and the state."""
    state = state if state is not None else new_routine_state(n_meters)
    meters = meters if meters is not None else [naive_routine.new_meter() for _ in range(n_meters)]
    codes, starts, distances = run_kernel(readings, th, state)
    want = naive_routine.routine_change(readings, meters, th)
    assert codes.tolist() == [w[0] for w in want]
    assert close(starts, [w[1] for w in want])
    assert close(distances, [w[2] for w in want])
    got, expected = kernel_state(state), naive_state(meters)
    for name in expected:
        assert close(got[name], expected[name]), name
    return codes, starts, distances, state


def hourly(meter, day, uses, start_index=1.0, offset=20.0):
    """Hourly readings of one meter over day ``day`` (0 = T0): ``uses`` m3 per hour (24 values), the first
    reading at 00:00 + offset closing the last hour of the day before."""
    rows, x = [], start_index
    for h, use in enumerate(uses):
        x += use
        rows.append((meter, T0 + day * DAY + (h + 1) * H + offset, x))
    return rows, x


# --- fixed inputs ------------------------------------------------------------------------------------------------

def test_a_day_is_filed_by_interval_middles_and_closed_by_the_first_reading_after_midnight():
    uses = [0.0] * 24
    uses[6], uses[7], uses[19] = 0.030, 0.010, 0.020          # the hours ending 07:00, 08:00 and 20:00
    first = [(0, T0 + 20.0, 1.0)]
    day, _x = hourly(0, 0, uses)
    codes, _s, distances, state = check(first + day, n_meters=1)
    got = kernel_state(state)
    # the reading at 00:00:20 of the next day closed the first day (its interval's middle, 23:30:20, is in it),
    # judged nothing (no usual routine yet), learnt it and began day 1 with nothing filed
    assert codes.tolist() == [0] * 25 and np.all(np.isnan(distances))
    assert got["days"][0] == 1.0 and got["day"][0] == T0 // DAY + 1
    assert close(got["usual"][0], [0.0, 2 / 3, 0.0, 0.0, 1 / 3, 0.0])        # middles 06:30, 07:30 and 19:30
    assert close(got["recent"][0], got["usual"][0])
    assert got["covered"][0] == 0.0 and np.all(got["today"][0] == 0.0)


def test_a_reading_exactly_at_midnight_files_into_the_day_it_ends_and_closes_it():
    rows = [(0, T0 + 22 * H, 1.0), (0, T0 + 23 * H, 1.05), (0, T0 + DAY, 1.10)]
    _c, _s, _d, state = check(rows, th=dict(DEFAULT, min_coverage=0.0), n_meters=1)
    got = kernel_state(state)
    assert got["days"][0] == 1.0 and close(got["usual"][0], [0, 0, 0, 0, 0, 1.0])
    assert got["covered"][0] == 0.0 and got["day"][0] == T0 // DAY + 1


def test_days_with_too_little_use_or_coverage_are_skipped_and_long_or_backward_intervals_not_filed():
    th = dict(DEFAULT, min_coverage=20 * H)
    rows = [(0, T0 + 20.0, 1.0)]
    x = 1.0
    for h in range(1, 25):                                       # a dry day: 10 L
        x += 0.010 / 24
        rows.append((0, T0 + h * H + 20.0, x))
    rows += [(0, T0 + DAY + 6 * H, x + 0.5),                    # 6 h gap: not filed
             (0, T0 + DAY + 7 * H, x + 0.4),                    # backwards: not filed
             (0, T0 + 2 * DAY + 10.0, x + 0.6)]                 # 17 h gap: not filed
    _c, _s, distances, state = check(rows, th=th, n_meters=1)
    got = kernel_state(state)
    assert got["days"][0] == 0.0 and np.all(np.isnan(distances))   # neither day taught anything
    assert got["covered"][0] == 0.0


def test_a_stable_routine_then_a_shift_raises_after_the_consecutive_days_and_clears_on_the_return():
    rng = np.random.default_rng(1)
    rows, x = [(0, T0 + 20.0, 1.0)], 1.0
    for day in range(40):
        uses = [0.0] * 24
        for h in (6, 7, 8) if not 25 <= day < 30 else (0, 1, 2):   # mornings at night on days 25-29
            uses[h] = rng.uniform(0.015, 0.040)
        for h in (18, 19, 20):
            uses[h] = rng.uniform(0.005, 0.020)
        day_rows, x = hourly(0, day, uses, x)
        rows += day_rows
    codes, starts, _d, _state = check(rows, n_meters=1)
    raised, cleared = np.flatnonzero(codes == kc.RAISED), np.flatnonzero(codes == kc.CLEARED)
    assert len(raised) == 1 and len(cleared) == 1
    ts = np.array([r[1] for r in rows])
    assert starts[raised[0]] == T0 + 25 * DAY                   # the first shifted day
    assert T0 + 28 * DAY < ts[raised[0]] < T0 + 28 * DAY + H    # closing its third day
    assert starts[cleared[0]] == T0 + 25 * DAY and T0 + 30 * DAY < ts[cleared[0]] < T0 + 33 * DAY


def test_a_lasting_change_becomes_the_usual_routine_after_adapt_days():
    rows, x = [(0, T0 + 20.0, 1.0)], 1.0
    for day in range(50):
        uses = [0.0] * 24
        for h in (7, 19) if day < 20 else (1, 13):
            uses[h] = 0.030
        uses[(day * 5) % 24] += 0.002                           # a little noise, so the spread is not zero
        day_rows, x = hourly(0, day, uses, x)
        rows += day_rows
    codes, _starts, _d, state = check(rows, n_meters=1)
    events = [(int(c), round((r[1] - T0) / DAY)) for c, r in zip(codes, rows) if c]
    assert events == [(kc.RAISED, 23), (kc.CLEARED, 35)]        # 3 days, then 14 unusual days, then usual
    assert kernel_state(state)["usual"][0][0] > 0.4            # the night bin is usual now


# --- random inputs -------------------------------------------------------------------------------------------------

STEP_HOURS = st.sampled_from([1.0, 1.0, 1.0, 1.0, 0.5, 2.0, 7.0, 26.0, 0.0, -0.5])
USE = st.one_of(st.sampled_from([0.0, 0.0, 0.0004, -0.01, NAN]), st.floats(0.0, 0.05))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 2), STEP_HOURS, USE), max_size=150), st.sampled_from([QUICK, DEFAULT]))
def test_random_readings_agree_with_the_reference(steps, th):
    t, x, rows = [T0 + 600.0] * 3, [1.0] * 3, []
    for meter, step, use in steps:
        m = max(meter, 0)
        t[m] += step * H
        x[m] = x[m] + use if math.isfinite(use) else x[m]
        rows.append((meter, t[m], use if not math.isfinite(use) else x[m]))   # a NaN use: a NaN index
    check(rows, th=th, n_meters=2)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_weeks_of_random_households_agree_with_the_reference_and_a_shift_is_raised(seed):
    """Two households for five weeks, one missing now and then a report; the other's mornings move to the
    night for six days."""
    rng = np.random.default_rng(seed)
    rows, x = [], [1.0, 1.0]
    for day in range(36):
        for h in range(24):
            for m in (0, 1):
                if m == 0 and rng.random() < 0.03:
                    continue                                    # a missed report
                shifted = m == 1 and 24 <= day < 30
                busy = h in ((0, 1, 2) if shifted else (6, 7, 19))
                if busy and (shifted or rng.random() < 0.8):
                    x[m] += rng.uniform(0.01, 0.03)
                rows.append((m, T0 + day * DAY + h * H + rng.uniform(0, 60), x[m]))
    rows.sort(key=lambda r: r[1])
    codes, starts, _d, _state = check(rows, n_meters=2)
    slots = np.array([r[0] for r in rows])
    raised = starts[(slots == 1) & (codes == kc.RAISED)]
    assert ((raised >= T0 + 20 * DAY) & (raised < T0 + 30 * DAY)).any()   # the shift (or a run leading into it)


# --- NaN and edge inputs ----------------------------------------------------------------------------------------------

def test_nan_times_and_indices_and_bad_slots_change_nothing():
    rows = [(0, T0 + 60.0, 1.0), (0, NAN, 2.0), (0, T0 + H, NAN), (5, T0 + H, 1.0), (-1, T0 + H, 1.0),
            (0, T0 + 1.25 * H, 1.01), (0, T0 + H, 7.0), (0, T0 + 1.25 * H, 9.0)]
    codes, starts, distances, state = check(rows, n_meters=1)
    got = kernel_state(state)
    assert codes.tolist() == [0] * 8 and np.all(np.isnan(starts)) and np.all(np.isnan(distances))
    assert got["prev_ts"][0] == T0 + 1.25 * H and got["prev_index"][0] == 1.01   # stale and duplicate ignored
    assert close(got["today"][0], [0.01, 0, 0, 0, 0, 0]) and got["covered"][0] == 1.25 * H - 60.0


def test_all_nan_readings_never_raise():
    rows = [(0, T0 + k * H, NAN) for k in range(24 * 40)] + [(0, NAN, NAN)]
    codes, *_ = check(rows, th=QUICK, n_meters=1)
    assert not codes.any()


def test_empty_batch_and_a_single_reading():
    codes, starts, distances, state = check([], n_meters=1)
    assert codes.shape == starts.shape == distances.shape == (0,)
    codes, *_ = check([(0, T0, 1.0)], n_meters=1)
    assert codes.tolist() == [0]
    got = kernel_state(state)
    assert np.isnan(got["prev_ts"][0]) and got["days"][0] == 0.0   # the empty batch left fresh state


def test_processing_in_two_halves_equals_processing_all_at_once():
    rng = np.random.default_rng(7)
    rows, x = [], [1.0, 1.0, 1.0]
    for h in range(24 * 35):
        for m in range(3):
            busy = (h % 24 in (7, 8, 20)) != (m == 0 and 24 * 20 <= h < 24 * 26)
            x[m] += rng.uniform(0.01, 0.03) if busy else (0.001 if rng.random() < 0.1 else 0.0)
            rows.append((m, T0 + h * H + 30.0 * m, x[m]))
    whole_codes, whole_starts, whole_d, whole = check(rows, n_meters=3)
    assert (whole_codes == kc.RAISED).any()
    for cut in (1, len(rows) // 3, len(rows) // 2, len(rows) - 1):
        state, meters = new_routine_state(3), [naive_routine.new_meter() for _ in range(3)]
        first = check(rows[:cut], n_meters=3, state=state, meters=meters)
        second = check(rows[cut:], n_meters=3, state=state, meters=meters)
        assert np.concatenate([first[0], second[0]]).tolist() == whole_codes.tolist()
        assert close(np.concatenate([first[1], second[1]]), whole_starts)
        assert close(np.concatenate([first[2], second[2]]), whole_d)
        got, want = kernel_state(state), kernel_state(whole)
        assert all(close(got[name], want[name]) for name in want)


def test_one_reading_per_call_equals_one_batch():
    rows = [(0, T0 + h * H + 5.0, 1.0 + 0.01 * h + (0.02 if h % 24 in (7, 19) else 0.0)) for h in range(24 * 20)]
    whole = check(rows, th=QUICK, n_meters=1)
    state, meters = new_routine_state(1), [naive_routine.new_meter()]
    codes = [check([row], th=QUICK, n_meters=1, state=state, meters=meters)[0][0] for row in rows]
    assert codes == whole[0].tolist()


# --- argument checks ---------------------------------------------------------------------------------------------------

def test_arguments_are_validated():
    slot, ts, index = np.zeros(1, np.int32), np.zeros(1), np.zeros(1)
    th = list(DEFAULT.values())
    with pytest.raises(TypeError):
        kernels.routine_change(slot.astype(np.int64), ts, index, *th, *new_routine_state(1))
    with pytest.raises(ValueError, match="length"):
        kernels.routine_change(slot, np.zeros(2), index, *th, *new_routine_state(1))
    with pytest.raises(ValueError, match="spread_after <= warmup"):
        kernels.routine_change(slot, ts, index, *dict(DEFAULT, spread_after=20.0).values(), *new_routine_state(1))
    with pytest.raises(ValueError, match="adapt >= consecutive"):
        kernels.routine_change(slot, ts, index, *dict(DEFAULT, adapt=2.0).values(), *new_routine_state(1))
    for bad in (dict(half_life=0.0), dict(recent_weight=1.5), dict(min_distance=1.0), dict(min_coverage=2 * DAY),
                dict(max_interval=NAN), dict(min_daily_use=0.0)):
        with pytest.raises(ValueError):
            kernels.routine_change(slot, ts, index, *dict(DEFAULT, **bad).values(), *new_routine_state(1))
    fields, today, usual, recent = new_routine_state(1)
    with pytest.raises(ValueError, match="slot arrays"):
        kernels.routine_change(slot, ts, index, *th, fields[:-1], today, usual, recent)
    with pytest.raises(ValueError, match="one per bin"):
        kernels.routine_change(slot, ts, index, *th, fields, today[:-1], usual, recent)
    with pytest.raises(ValueError, match="length"):
        kernels.routine_change(slot, ts, index, *th, fields, today, usual, (*recent[:-1], np.zeros(2)))
    frozen = fields[0].copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        kernels.routine_change(slot, ts, index, *th, (frozen, *fields[1:]), today, usual, recent)
