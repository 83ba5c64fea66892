"""Lighting kernels against their naive references (tests/naive.py) and against almanac sunrise/sunset."""

import math
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kernels
from kernels import (solar_elevation, sun_times, update_cycling, update_day_burner, update_lamp_failure,
                     update_power_out_of_range)
from kernels.config import CABINET, CLEARED, LAMP, RAISED
from streams.detectors.lighting.cycling import Cycling
from streams.detectors.lighting.day_burner import DayBurner
from streams.detectors.lighting.lamp_failure import LampFailure
from streams.detectors.lighting.power_out_of_range import PowerOutOfRange
from tests import naive

NAN = float("nan")
DIJON = (47.32, 5.04)
WINTER_NIGHT = datetime.fromisoformat("2026-01-10T22:00:00+00:00").timestamp()
WINTER_NOON = datetime.fromisoformat("2026-01-10T12:00:00+00:00").timestamp()


def epoch(text):
    return datetime.fromisoformat(text).timestamp()


# --- the sun ------------------------------------------------------------------------------------

@pytest.mark.parametrize("city, lat, lon, date, sunrise, sunset", [
    # Almanac times (UTC) of well-known dates: Paris 05:47 / 21:58 CEST and 08:41 / 16:56 CET,
    # London 04:43 / 21:21 BST on the June solstice.
    ("Paris", 48.8566, 2.3522, "2024-06-21", "03:47", "19:58"),
    ("Paris", 48.8566, 2.3522, "2024-12-21", "07:41", "15:56"),
    ("London", 51.5074, -0.1278, "2024-06-21", "03:43", "20:21"),
])
def test_sunrise_and_sunset_match_the_almanac_within_three_minutes(city, lat, lon, date, sunrise, sunset):
    day = epoch(f"{date}T00:00:00+00:00")
    rise, set_ = sun_times(np.array([day + 3600.0]), lat, lon)
    assert abs(rise[0] - epoch(f"{date}T{sunrise}:00+00:00")) < 180, city
    assert abs(set_[0] - epoch(f"{date}T{sunset}:00+00:00")) < 180, city


def test_sun_times_agree_with_a_bisection_of_the_naive_elevation():
    days = [epoch("2026-03-20T00:00:00+00:00") + d * 86400 * 23 for d in range(16)]
    rise, set_ = sun_times(np.array(days), *DIJON)
    for day, r, s in zip(days, rise, set_):
        ref_rise, ref_set = naive.sun_times(day, *DIJON)
        assert abs(r - ref_rise) < 20 and abs(s - ref_set) < 20


def test_polar_day_and_night_give_nan_and_nan_days_give_nan():
    rise, set_ = sun_times(np.array([epoch("2024-06-21T00:00:00+00:00"), epoch("2024-12-21T00:00:00+00:00"), NAN]),
                           78.22, 15.65)   # Longyearbyen
    assert np.isnan(rise).all() and np.isnan(set_).all()


def test_elevation_at_the_horizon_at_sunrise_and_high_at_noon():
    rise, set_ = sun_times(np.array([epoch("2026-06-01T00:00:00+00:00")]), *DIJON)
    assert solar_elevation(np.array([rise[0], set_[0]]), *DIJON) == pytest.approx([-0.833, -0.833], abs=0.02)
    noon = solar_elevation(np.array([epoch("2026-06-21T11:40:00+00:00")]), *DIJON)[0]
    assert noon == pytest.approx(90 - 47.32 + 23.44, abs=0.5)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(946684800.0, 4102444800.0), max_size=20),
       st.floats(-89.0, 89.0), st.floats(-180.0, 180.0))
def test_solar_elevation_matches_naive(times, lat, lon):
    got = solar_elevation(np.array(times, dtype=np.float64), lat, lon)
    want = [naive.solar_elevation(t, lat, lon) for t in times]
    assert np.allclose(got, want, atol=1e-7)


def test_solar_elevation_edges_and_validation():
    assert solar_elevation(np.empty(0), *DIJON).shape == (0,)
    assert np.isnan(solar_elevation(np.array([NAN]), *DIJON)[0])
    with pytest.raises(ValueError):
        solar_elevation(np.zeros(1), 91.0, 0.0)
    with pytest.raises(TypeError):
        solar_elevation(np.zeros(1, dtype=np.float32), *DIJON)


# --- detector kernels vs naive ------------------------------------------------------------------

def _lamp_readings(draw_rows):
    """rows: (slot, dt_s, kind, power, state, rating, level) -> arrays, times from WINTER_NIGHT - 16 h."""
    slot = np.array([r[0] for r in draw_rows], dtype=np.int32)
    ts = np.array([WINTER_NIGHT - 16 * 3600 + r[1] for r in draw_rows], dtype=np.float64)
    cols = [np.array([r[i] for r in draw_rows], dtype=np.float64) for i in range(2, 7)]
    return slot, ts, cols


maybe_nan = st.one_of(st.just(NAN), st.floats(0.0, 200.0))
rows = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 30 * 3600).map(lambda s: s - s % 900 + 17),
                          st.sampled_from([float(LAMP), float(LAMP), float(CABINET), NAN]),
                          st.one_of(maybe_nan, st.sampled_from([0.4, 30.0, 60.0, 90.0])),
                          st.sampled_from([0.0, 1.0, NAN]), st.sampled_from([60.0, NAN]),
                          st.sampled_from([1.0, 0.5, 0.0, NAN])), max_size=60).map(
    lambda r: sorted(r, key=lambda x: x[1]))


def _compare(codes, starts, reference):
    assert [int(c) for c in codes] == [c for c, _ in reference]
    for (code, start), got in zip(reference, starts):
        if code in (RAISED, CLEARED):
            assert got == start
        else:
            assert math.isnan(got)


def _keys(slot):
    return [f"lamp-{s}" for s in slot]


def lamp_facts(slot, ts, kind, last=None):
    """The lighting tracker's facts (as LightingTracker computes them: over the lamp readings alone),
    folding each lamp's newest lamp reading into ``last``: the kernels take these instead of keeping their
    own copy, and the naive references (which keep their own, as the detectors did) must agree."""
    last = np.full(max(3, int(slot.max(initial=0)) + 1), NAN) if last is None else last
    lamps = np.where(kind == LAMP, slot, -1).astype(np.int32)
    prev_ts, _none, new = kernels.previous_readings(lamps, ts, last, fold=True)
    return new, prev_ts


def sliced(call, slot, ts, columns, split, last=None):
    """``call(slot, ts, columns, new, prev_ts)`` over the readings whole or cut at ``split`` (two slices, the
    tracker's state carried over): the concatenated ``(codes, starts)``."""
    n = len(slot)
    cuts = [0, split, n] if split is not None and 0 < split < n else [0, n]
    last = np.full(3, NAN) if last is None else last
    codes, starts = [], []
    for a, b in zip(cuts[:-1], cuts[1:]):
        cols = [c[a:b] for c in columns]
        new, prev_ts = lamp_facts(slot[a:b], ts[a:b], cols[0], last)
        c, st_ = call(slot[a:b], ts[a:b], cols, new, prev_ts)
        codes += list(c)
        starts += list(st_)
    return codes, starts


@settings(max_examples=150, deadline=None)
@given(rows, st.integers(0, 60))
def test_lamp_failure_matches_naive(data, split):
    th = LampFailure.Thresholds()
    slot, ts, (kind, power, _state, _rating, _level) = _lamp_readings(data)
    state = [np.full(3, NAN) for _ in range(2)]
    codes, starts = sliced(lambda sl, t, c, new, prev: update_lamp_failure(
        sl, t, c[0], c[1], new, prev, th.latitude_deg, th.longitude_deg, th.horizon_deg, th.night_margin_s,
        th.dark_below_w, th.confirm_s, th.max_gap_s, *state), slot, ts, [kind, power], split)
    reference = naive.lamp_failure(list(zip(_keys(slot), ts, kind, power)), {}, th)
    _compare(codes, starts, reference)


@settings(max_examples=150, deadline=None)
@given(rows, st.integers(0, 60))
def test_day_burner_matches_naive(data, split):
    th = DayBurner.Thresholds()
    slot, ts, (kind, power, power_state, _rating, _level) = _lamp_readings(data)
    state = [np.full(3, NAN) for _ in range(2)]
    codes, starts = sliced(lambda sl, t, c, new, _prev: update_day_burner(
        sl, t, c[0], c[1], c[2], new, th.latitude_deg, th.longitude_deg, th.horizon_deg, th.day_margin_s,
        th.lit_above_w, th.confirm_s, *state), slot, ts, [kind, power, power_state], split)
    reference = naive.day_burner(list(zip(_keys(slot), ts, kind, power, power_state)), {}, th)
    _compare(codes, starts, reference)


@settings(max_examples=150, deadline=None)
@given(rows, st.integers(0, 60))
def test_power_out_of_range_matches_naive(data, split):
    th = PowerOutOfRange.Thresholds()
    slot, ts, (kind, power, _state, rating, level) = _lamp_readings(data)
    state = [np.full(3, NAN) for _ in range(2)]
    codes, starts = sliced(lambda sl, t, c, new, _prev: update_power_out_of_range(
        sl, t, c[0], c[1], c[2], c[3], new, th.lit_above_w, th.tolerance, th.clear_tolerance, th.confirm_s, *state),
        slot, ts, [kind, power, rating, level], split)
    reference = naive.power_out_of_range(list(zip(_keys(slot), ts, kind, power, rating, level)), {}, th)
    _compare(codes, starts, reference)


def _cycling_state(n):
    return (np.full(n, -1, dtype=np.int8), np.full(n, NAN), np.zeros(n, dtype=np.int32),
            np.full(n, NAN), np.full(n, NAN))


@settings(max_examples=150, deadline=None)
@given(rows, st.integers(1, 5), st.integers(0, 60))
def test_cycling_matches_naive(data, min_transitions, split):
    import dataclasses

    th = dataclasses.replace(Cycling.Thresholds(), min_transitions=min_transitions, steady_for_s=4 * 3600.0)
    slot, ts, (kind, power, power_state, _rating, _level) = _lamp_readings(data)
    state = _cycling_state(3)
    codes, starts = sliced(lambda sl, t, c, new, _prev: update_cycling(
        sl, t, c[0], c[1], c[2], new, th.latitude_deg, th.longitude_deg, th.horizon_deg, th.twilight_margin_s,
        th.lit_above_w, th.window_s, th.min_transitions, th.steady_for_s, *state), slot, ts, [kind, power, power_state],
        split)
    reference = naive.cycling(list(zip(_keys(slot), ts, kind, power, power_state)), {}, th)
    _compare(codes, starts, reference)


# --- fixed cases ----------------------------------------------------------------------------------

def test_lamp_failure_fixed_case_raises_after_confirm_and_clears_when_lit():
    th = LampFailure.Thresholds()
    ts = np.array([WINTER_NIGHT, WINTER_NIGHT + 900, WINTER_NIGHT + 1800, WINTER_NOON + 86400,
                   WINTER_NIGHT + 86400])
    power = np.array([0.5, 0.4, 0.4, 0.3, 60.0])
    state = [np.full(1, NAN) for _ in range(2)]
    slot, kind = np.zeros(5, dtype=np.int32), np.zeros(5)
    codes, starts = update_lamp_failure(slot, ts, kind, power, *lamp_facts(slot, ts, kind, np.full(1, NAN)), *DIJON,
                                        -0.833, th.night_margin_s, th.dark_below_w, th.confirm_s, th.max_gap_s, *state)
    assert codes.tolist() == [0, RAISED, 0, 0, CLEARED]
    assert starts[1] == WINTER_NIGHT and starts[4] == WINTER_NIGHT


def test_dark_readings_either_side_of_a_missed_report_are_not_consecutive():
    """A cycling lamp whose on-reading was lost looks dark twice in a row, 30 min apart: no failure
    from those two; a lamp that stays dark is confirmed one reading after the gap instead."""
    th = LampFailure.Thresholds()
    gap = th.max_gap_s + 1.0
    ts = np.array([WINTER_NIGHT, WINTER_NIGHT + gap, WINTER_NIGHT + gap + th.confirm_s])
    state = [np.full(1, NAN) for _ in range(2)]
    slot, kind = np.zeros(3, dtype=np.int32), np.zeros(3)
    codes, starts = update_lamp_failure(slot, ts, kind, np.full(3, 0.4), *lamp_facts(slot, ts, kind, np.full(1, NAN)),
                                        *DIJON, -0.833, th.night_margin_s, th.dark_below_w, th.confirm_s, th.max_gap_s,
                                        *state)
    assert codes.tolist() == [0, 0, RAISED] and starts[2] == WINTER_NIGHT + gap
    within = np.array([WINTER_NIGHT, WINTER_NIGHT + th.max_gap_s])
    slot, kind = np.zeros(2, dtype=np.int32), np.zeros(2)
    codes, starts = update_lamp_failure(slot, within, kind, np.full(2, 0.4),
                                        *lamp_facts(slot, within, kind, np.full(1, NAN)), *DIJON, -0.833,
                                        th.night_margin_s, th.dark_below_w, th.confirm_s, th.max_gap_s,
                                        *[np.full(1, NAN) for _ in range(2)])
    assert codes.tolist() == [0, RAISED] and starts[1] == WINTER_NIGHT


def test_a_dark_lamp_by_day_or_a_cabinet_is_no_failure():
    th = LampFailure.Thresholds()
    ts = np.array([WINTER_NOON, WINTER_NOON + 900, WINTER_NIGHT, WINTER_NIGHT + 900])
    kind = np.array([LAMP, LAMP, CABINET, CABINET], dtype=np.float64)
    slot = np.zeros(4, dtype=np.int32)
    codes, _ = update_lamp_failure(slot, ts, kind, np.zeros(4), *lamp_facts(slot, ts, kind, np.full(1, NAN)), *DIJON,
                                   -0.833, th.night_margin_s, th.dark_below_w, th.confirm_s, th.max_gap_s,
                                   *[np.full(1, NAN) for _ in range(2)])
    # a cabinet reading is never a lamp's new or previous reading (even under the lamp's id)
    new, prev_ts = lamp_facts(slot, ts, kind, np.full(1, NAN))
    assert new.tolist() == [True, True, False, False] and prev_ts[1] == WINTER_NOON
    assert not codes.any()


def test_single_reading_empty_batch_and_stale_readings():
    th = DayBurner.Thresholds()
    state = [np.full(1, NAN) for _ in range(2)]
    last = np.full(1, NAN)       # the tracker's newest lamp reading, carried over from slice to slice
    empty = np.empty(0)
    nothing = np.empty(0, dtype=np.int32)
    codes, starts = update_day_burner(nothing, empty, empty, empty, empty, lamp_facts(nothing, empty, empty, last)[0],
                                      *DIJON, -0.833, th.day_margin_s, th.lit_above_w, th.confirm_s, *state)
    assert codes.shape == starts.shape == (0,)
    one = np.array([WINTER_NOON])
    slot, kind = np.zeros(1, dtype=np.int32), np.zeros(1)
    codes, _ = update_day_burner(slot, one, kind, np.array([60.0]), np.ones(1), lamp_facts(slot, one, kind, last)[0],
                                 *DIJON, -0.833, th.day_margin_s, th.lit_above_w, th.confirm_s, *state)
    assert codes.tolist() == [0]
    # a duplicate of that reading is stale: it confirms nothing
    two = np.array([WINTER_NOON, WINTER_NOON + 900])
    slot, kind = np.zeros(2, dtype=np.int32), np.zeros(2)
    codes, _ = update_day_burner(slot, two, kind, np.array([60.0, 60.0]), np.ones(2),
                                 lamp_facts(slot, two, kind, last)[0], *DIJON, -0.833,
                                 th.day_margin_s, th.lit_above_w, th.confirm_s, *state)
    assert codes.tolist() == [0, RAISED]


def test_kernels_refuse_wrong_inputs():
    f = np.full(1, NAN)
    new = np.ones(1, dtype=np.bool_)
    with pytest.raises(ValueError, match="clear_tolerance"):
        update_power_out_of_range(np.zeros(1, dtype=np.int32), f, f, f, f, f, new, 3.0, 0.1, 0.2, 900.0,
                                  f.copy(), f.copy())
    with pytest.raises(TypeError):
        update_power_out_of_range(np.zeros(1, dtype=np.int64), f, f, f, f, f, new, 3.0, 0.2, 0.1, 900.0,
                                  f.copy(), f.copy())
    with pytest.raises(TypeError):     # the tracker's "new" is bool
        update_power_out_of_range(np.zeros(1, dtype=np.int32), f, f, f, f, f, f, 3.0, 0.2, 0.1, 900.0,
                                  f.copy(), f.copy())
    with pytest.raises(ValueError):    # prev_ts per reading
        update_lamp_failure(np.zeros(1, dtype=np.int32), f, f, f, new, np.zeros(2), *DIJON, -0.833, 1.0, 1.0, 1.0,
                            1.0, f.copy(), f.copy())
    with pytest.raises(ValueError, match="min_transitions"):
        update_cycling(np.zeros(1, dtype=np.int32), f, f, f, f, new, *DIJON, -0.833, 1800.0, 3.0, 7200.0, 0, 86400.0,
                       *_cycling_state(1))


# --- energy KPI ---------------------------------------------------------------------------------

DIJON = (47.32, 5.04)


def test_night_seconds_over_a_whole_night_day_and_the_twilights():
    day = datetime(2026, 3, 20).timestamp() // 86400 * 86400       # an equinox: ~12 h nights
    rise, set_ = sun_times(np.array([day + 43200.0]), *DIJON)
    rise, set_ = float(rise[0]), float(set_[0])
    starts = np.array([day, day + 43200.0, rise - 1800.0, set_ - 600.0, set_ + 60.0])
    ends = np.array([day + 3600.0, day + 46800.0, rise + 1800.0, set_ + 3000.0, set_ + 60.0])
    got = kernels.night_seconds(starts, ends, *DIJON)
    assert got[0] == 3600.0                      # midnight UTC: all night
    assert got[1] == 0.0                         # noon: all day
    assert abs(got[2] - 1800.0) < 0.1            # half an hour either side of sunrise
    assert abs(got[3] - 3000.0) < 0.1            # sunset 10 min into the interval
    assert got[4] == 0.0                         # an empty interval
    nan = np.nan                                 # no previous reading (NaN) or a reversed interval: nothing
    assert kernels.night_seconds(np.array([nan, day, day + 60.0]), np.array([day, nan, day]), *DIJON).tolist() == [
        0.0, 0.0, 0.0]


@settings(max_examples=40, deadline=None)
@given(start=st.floats(1.6e9, 1.9e9), length=st.floats(0.0, 3600.0), lat=st.floats(-60.0, 60.0),
       lon=st.floats(-180.0, 180.0))
def test_night_seconds_matches_naive_sampling(start, length, lat, lon):
    got = kernels.night_seconds(np.array([start]), np.array([start + length]), lat, lon)[0]
    assert abs(got - naive.night_seconds(start, start + length, lat, lon, step=5.0)) <= 5.0


def _energy_case(rng, n_lamps=4, n=300, with_gaps=True):
    """Lamp and cabinet readings over about three days, 15-min cadence with jitter, some duplicates,
    out-of-order copies, missing power/rating and long silences."""
    start = datetime(2026, 11, 2).timestamp()
    rows = []
    clock = {lamp: start + rng.uniform(0, 900) for lamp in range(n_lamps)}
    for _ in range(n):
        lamp = int(rng.integers(n_lamps))
        step = 900.0 + rng.uniform(-30, 30)
        if with_gaps and rng.random() < 0.03:
            step = 3 * 3600.0                      # a silence the KPI must not integrate across
        clock[lamp] += step
        ts = clock[lamp]
        kind = "cabinet" if rng.random() < 0.05 else "lamp"
        power = None if rng.random() < 0.05 else float(rng.choice([0.0, 35.0, 70.0, 71.5]))
        rating = None if rng.random() < 0.05 else 70.0
        rows.append(dict(lamp=lamp, ts=ts, kind=kind, power=power, rating=rating))
        if rng.random() < 0.05:
            rows.append(dict(rows[-1]))            # a duplicate
        if rng.random() < 0.03:
            rows.append(dict(rows[-1], ts=ts - 400.0))   # an older copy, out of order
    return rows


def _energy_kernel(rows, *coordinates, max_gap_s=3600.0):
    """Run the kernel over ``rows`` in order, with the tracker's facts computed as the pipeline does."""
    slot = np.array([r["lamp"] for r in rows], dtype=np.int32)
    ts = np.array([r["ts"] for r in rows])
    kind = np.array([LAMP if r["kind"] == "lamp" else CABINET for r in rows], dtype=np.float64)
    nan = float("nan")
    power = np.array([nan if r["power"] is None else r["power"] for r in rows])
    rating = np.array([nan if r["rating"] is None else r["rating"] for r in rows])
    lamps = np.where(kind == LAMP, slot, np.int32(-1)).astype(np.int32)
    last = np.full(int(slot.max()) + 1, np.nan)
    prev_ts, _none, new = kernels.previous_readings(lamps, ts, last, fold=True)
    return kernels.lighting_energy(ts, kind, power, rating, new, prev_ts, *coordinates, max_gap_s=max_gap_s)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_lighting_energy_matches_naive(seed):
    rows = _energy_case(np.random.default_rng(seed))
    used, full = _energy_kernel(rows, *DIJON)
    naive_used, naive_full = naive.lighting_energy(rows, *DIJON)
    assert used == pytest.approx(naive_used, rel=1e-12)
    assert full == pytest.approx(naive_full, rel=2e-3)          # naive night sampled every second
    assert 0.0 < used and 0.0 < full


def test_lighting_energy_of_a_lamp_at_full_power_all_night_saves_nothing_and_dimmed_saves_half():
    day = datetime(2026, 12, 1).timestamp() // 86400 * 86400
    rise, set_ = (float(x[0]) for x in sun_times(np.array([day + 43200.0]), *DIJON))
    next_rise = float(sun_times(np.array([day + 86400 + 43200.0]), *DIJON)[0][0])
    for level, expected_saving in ((1.0, 0.0), (0.5, 0.5)):
        times = np.arange(set_ - 7200.0, next_rise + 7200.0, 900.0)
        night = np.array([not (rise <= t <= set_ or t >= next_rise) for t in times])
        rows = [dict(lamp=0, ts=float(t), kind="lamp", power=70.0 * level if lit else 0.0, rating=70.0)
                for t, lit in zip(times, night)]
        used, full = _energy_kernel(rows, *DIJON)
        # the 15-min readings quantise the switching instants: within one interval at each end of the night
        assert 1.0 - used / full == pytest.approx(expected_saving, abs=70.0 * 900.0 * 2 / full + 1e-9)
        assert full == pytest.approx(70.0 * (next_rise - set_), rel=1e-6)


def test_lighting_energy_edges_and_validation():
    empty = np.empty(0)
    assert kernels.lighting_energy(empty, empty, empty, empty, np.empty(0, dtype=np.bool_), empty,
                                   *DIJON) == (0.0, 0.0)
    one = np.ones(1)
    with pytest.raises(TypeError):
        kernels.lighting_energy(one, one, one, one, np.ones(1, dtype=np.int8), one, *DIJON)
    with pytest.raises(ValueError, match="latitude"):
        kernels.lighting_energy(one, one, one, one, np.ones(1, dtype=np.bool_), one, 95.0, 5.0)
    with pytest.raises(ValueError, match="finite"):
        kernels.lighting_energy(one, one, one, one, np.ones(1, dtype=np.bool_), one, *DIJON, max_gap_s=np.nan)
    # only a silence longer than the gap: nothing counted
    rows = [dict(lamp=0, ts=0.0, kind="lamp", power=70.0, rating=70.0),
            dict(lamp=0, ts=7200.0, kind="lamp", power=70.0, rating=70.0)]
    assert _energy_kernel(rows, *DIJON) == (0.0, 0.0)
    assert _energy_kernel(rows, *DIJON, max_gap_s=7200.0)[0] == 70.0 * 7200.0
