"""The sweep kernels over an array of ticks against their single-tick naive references swept one tick after
another (tests/naive.py ``over_ticks``): fixed, random, NaN and edge inputs (no ticks, one tick, a subject
raising at the first or the last tick, a clear then a new raise in one run)."""

import math

import numpy as np
import pytest

import kernels
from kernels.config import CLEARED, NO_CHANGE, RAISED, REOPENED
from tests import naive

NAN = math.nan
H = 3600.0


def events_of(codes, raised_at):
    """The kernel's per-subject codes as naive.over_ticks' events."""
    found = []
    for s, code in enumerate(codes):
        if code in (CLEARED, REOPENED):
            found.append((0, s, "cleared"))
        if code in (RAISED, REOPENED):
            found.append((int(raised_at[s]), s, "raised"))
        if code == NO_CHANGE:
            assert raised_at[s] == -1
    return sorted(found)


def grid(first, count, step=300.0):
    return first + step * np.arange(count, dtype=np.float64)


def same(a, b):
    return np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), equal_nan=True)


def random_cadence(rng, n):
    cadence = np.where(rng.random(n) < 0.2, NAN, rng.uniform(600, 8 * H, n))
    count = rng.integers(0, 6, n).astype(np.int32)
    gaps = np.where(rng.random(n) < 0.1, NAN, rng.uniform(0, 20 * H, n))
    return cadence, count, gaps


def random_times(rng, n, around, spread, nan=0.15):
    return np.where(rng.random(n) < nan, NAN, around - rng.uniform(0, spread, n))


# --- sweep_absence -------------------------------------------------------------------------------------

def check_absence(ticks, floor, seen, since, cadence=None, count=None, k=0.0, gaps=None, margin=0.0, ceiling=np.inf):
    got_since = since.copy()
    raised_at = np.empty(len(seen), dtype=np.int32)
    learnt = {} if cadence is None else {"cadence": cadence, "cadence_count": count, "missed_reports": k}
    if gaps is not None:
        learnt.update(longest_gap=gaps, gap_margin=margin, gap_ceiling=ceiling)
    codes = kernels.sweep_absence(ticks, floor, seen, got_since, raised_at=raised_at, **learnt)
    want, want_since = naive.over_ticks(
        lambda t, s: naive.sweep_absence(t, floor, list(seen), s, None if cadence is None else list(cadence),
                                         None if count is None else list(count), k,
                                         None if gaps is None else list(gaps), margin, ceiling),
        ticks, list(since))
    assert events_of(codes, raised_at) == want
    assert same(got_since, want_since)
    return codes, raised_at


def test_absence_raises_at_the_first_and_at_the_last_tick():
    ticks = grid(10 * H, 13)                      # 10:00 .. 11:00
    seen = np.array([8 * H, 9 * H, 7 * H, NAN, 9 * H + 300])
    since = np.array([NAN, NAN, NAN, NAN, 5 * H])
    codes, at = check_absence(ticks, 2 * H, seen, since)
    # 8:00 + 2 h = 10:00, the first tick; 9:00 + 2 h = 11:00, the last; 7:00 long past: the first; never seen;
    # an open episode ended by a newer reading at the first tick, silent again at 11:05 (after the run)
    assert codes.tolist() == [RAISED, RAISED, RAISED, NO_CHANGE, CLEARED]
    assert at.tolist() == [0, 12, 0, -1, -1]


def test_absence_clears_then_raises_again_in_one_run():
    ticks = grid(10 * H, 40)
    seen, since = np.array([9 * H]), np.array([6 * H])
    codes, at = check_absence(ticks, 2 * H, seen, since)
    assert codes.tolist() == [REOPENED] and ticks[at[0]] == 11 * H


def test_no_ticks_change_nothing():
    seen, since = np.array([0.0, 5.0, NAN]), np.array([NAN, 1.0, NAN])
    for sweep in (lambda t: kernels.sweep_absence(t, 1.0, seen, since),
                  lambda t: kernels.sweep_collection_late(t, 1.0, seen, since),
                  lambda t: kernels.sweep_meter_silent(t, 1.0, seen, np.zeros(3, dtype=np.int32), np.full(1, NAN),
                                                       since),
                  lambda t: kernels.sweep_no_use(t, 1.0, 1.0, seen, seen, np.zeros(3, dtype=np.int32),
                                                 np.full(1, NAN), since)):
        before = since.copy()
        assert sweep(np.empty(0)).tolist() == [NO_CHANGE] * 3
        assert same(since, before)


def test_ticks_are_validated():
    seen, since = np.zeros(2), np.full(2, NAN)
    for bad in (np.array([1.0, 1.0]), np.array([2.0, 1.0]), np.array([0.0, NAN]), np.array([NAN]),
                np.array([0.0, np.inf])):
        with pytest.raises(ValueError):
            kernels.sweep_absence(bad, 1.0, seen, since)
    with pytest.raises(TypeError):
        kernels.sweep_absence(np.array([1, 2]), 1.0, seen, since)
    with pytest.raises(ValueError):
        kernels.sweep_absence(np.zeros((1, 1)), 1.0, seen, since)
    with pytest.raises(ValueError):
        kernels.sweep_absence(1.0, 1.0, seen, since, raised_at=np.zeros(3, dtype=np.int32))


@pytest.mark.parametrize("seed", range(25))
def test_absence_random(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 30))
    ticks = grid(50 * H, int(rng.choice([0, 1, 2, 7, 60, 300])))
    seen = random_times(rng, n, 50 * H, 30 * H)
    since = np.where(rng.random(n) < 0.5, NAN, seen - rng.choice([0.0, 600.0], n))
    cadence, count, gaps = random_cadence(rng, n)
    check_absence(ticks, 2 * H, seen, since)
    check_absence(ticks, 2 * H, seen, since, cadence, count, 3.0, gaps, 1.5, 24 * H)


# --- water: the gateways, then the meters behind them, over the same ticks --------------------------------

def water_run(rng, ticks, n_meters, n_gateways):
    gw_seen = random_times(rng, n_gateways, ticks[0] if len(ticks) else 0.0, 6 * H, nan=0.1)
    gw_since = np.where(rng.random(n_gateways) < 0.5, NAN, gw_seen - rng.choice([0.0, 900.0], n_gateways))
    gw_ended = np.where(rng.random(n_gateways) < 0.5, NAN, gw_seen - rng.uniform(0, 3 * H, n_gateways))
    seen = random_times(rng, n_meters, ticks[0] if len(ticks) else 0.0, 40 * H)
    used = np.where(rng.random(n_meters) < 0.5, seen, seen - rng.uniform(0, 40 * H, n_meters))
    meter_gw = rng.integers(-1, n_gateways + 1, n_meters).astype(np.int32)   # -1 and one past the end: no gateway
    silent = np.where(rng.random(n_meters) < 0.6, NAN, seen - rng.choice([0.0, 600.0], n_meters))
    no_use = np.where(rng.random(n_meters) < 0.6, NAN, used - rng.choice([0.0, 600.0], n_meters))
    cadence, count, gaps = random_cadence(rng, n_meters)
    return gw_seen, gw_since, gw_ended, seen, used, meter_gw, silent, no_use, cadence, count, gaps


@pytest.mark.parametrize("seed", range(30))
def test_meter_silent_and_no_use_follow_the_gateways_tick_by_tick(seed):
    rng = np.random.default_rng(100 + seed)
    ticks = grid(100 * H, int(rng.choice([0, 1, 3, 40, 400])))
    (gw_seen, gw_since, gw_ended, seen, used, meter_gw, silent, no_use, cadence, count,
     gaps) = water_run(rng, ticks, int(rng.integers(0, 40)), int(rng.integers(0, 5)))
    gw_floor, floor, day = 2 * H, 3 * H, 24 * H

    # the pipeline's way: the gateways over the whole run first (feed.gateway_outage), then the meters
    g_since, g_ended = gw_since.copy(), gw_ended.copy()
    g_opened = np.full(len(gw_seen), NAN)
    g_at = np.empty(len(gw_seen), dtype=np.int32)
    g_codes = kernels.sweep_absence(ticks, gw_floor, gw_seen, g_since, raised_at=g_at)
    ended = (g_codes == CLEARED) | (g_codes == REOPENED)
    g_ended[ended] = gw_seen[ended]
    g_opened[g_at >= 0] = ticks[g_at[g_at >= 0]]
    m_since, m_at = silent.copy(), np.empty(len(seen), dtype=np.int32)
    m_codes = kernels.sweep_meter_silent(ticks, floor, seen, meter_gw, g_since, m_since, cadence=cadence,
                                         cadence_count=count, missed_reports=3.0, longest_gap=gaps, gap_margin=1.5,
                                         gap_ceiling=48 * H, gateway_outage_ended=g_ended,
                                         gateway_outage_opened=g_opened, raised_at=m_at)
    u_since, u_at = no_use.copy(), np.empty(len(seen), dtype=np.int32)
    u_codes = kernels.sweep_no_use(ticks, day, floor, seen, used, meter_gw, g_since, u_since, cadence=cadence,
                                   cadence_count=count, missed_reports=3.0, gateway_outage_opened=g_opened,
                                   raised_at=u_at)

    # the reference: every tick in turn, gateways then meters
    ref_g_since, ref_g_ended, ref_m, ref_u = list(gw_since), list(gw_ended), list(silent), list(no_use)
    want_g, want_m, want_u = [], [], []
    for k, t in enumerate(ticks):
        codes, ref_g_since = naive.sweep_absence(t, gw_floor, list(gw_seen), ref_g_since)
        for g, c in enumerate(codes):
            if c == CLEARED:
                ref_g_ended[g] = gw_seen[g]
        want_g += [(k, g, "raised" if c == RAISED else "cleared") for g, c in enumerate(codes) if c]
        codes, ref_m = naive.sweep_meter_silent(t, floor, list(seen), list(meter_gw), ref_g_since, ref_m, list(cadence),
                                                list(count), 3.0, list(gaps), 1.5, 48 * H, ref_g_ended)
        want_m += [(k, m, "raised" if c == RAISED else "cleared") for m, c in enumerate(codes) if c]
        codes, ref_u = naive.sweep_no_use(t, day, floor, list(seen), list(used), list(meter_gw), ref_g_since, ref_u,
                                          list(cadence), list(count), 3.0)
        want_u += [(k, m, "raised" if c == RAISED else "cleared") for m, c in enumerate(codes) if c]
    assert events_of(g_codes, g_at) == want_g
    assert events_of(m_codes, m_at) == want_m
    assert events_of(u_codes, u_at) == want_u
    assert same(g_since, ref_g_since) and same(m_since, ref_m) and same(u_since, ref_u)


def test_a_meter_is_held_back_from_the_tick_its_gateway_goes_out():
    ticks = grid(10 * H, 13)
    gw_seen, gw_since = np.array([8 * H + 1800]), np.full(1, NAN)     # out from 10:30
    at = np.empty(1, dtype=np.int32)
    kernels.sweep_absence(ticks, 2 * H, gw_seen, gw_since, raised_at=at)
    opened = np.array([ticks[at[0]]])
    assert opened[0] == 10 * H + 1800
    seen = np.array([7 * H + 1200, 7 * H + 2400, 6 * H])              # silent at 10:20, 10:40; long silent
    since, m_at = np.full(3, NAN), np.empty(3, dtype=np.int32)
    codes = kernels.sweep_meter_silent(ticks, 3 * H, seen, np.zeros(3, dtype=np.int32), gw_since, since,
                                       gateway_outage_opened=opened, raised_at=m_at)
    assert codes.tolist() == [RAISED, NO_CHANGE, RAISED] and m_at.tolist() == [4, -1, 0]
    # without the opening tick the outage counts from the first tick (state from before the field)
    since = np.full(3, NAN)
    assert kernels.sweep_meter_silent(ticks, 3 * H, seen, np.zeros(3, dtype=np.int32), gw_since, since).tolist() \
        == [NO_CHANGE] * 3


# --- sweep_collection_late ------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(20))
def test_collection_late_random(seed):
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(0, 30))
    ticks = grid(80 * H, int(rng.choice([0, 1, 5, 300])))
    full = random_times(rng, n, 80 * H, 30 * H, nan=0.3)
    late = np.where(rng.random(n) < 0.7, NAN, full)
    got, at = late.copy(), np.empty(n, dtype=np.int32)
    codes = kernels.sweep_collection_late(ticks, 24 * H, full, got, raised_at=at)
    want, want_late = naive.over_ticks(lambda t, s: naive.sweep_collection_late(t, 24 * H, list(full), s), ticks,
                                       list(late))
    assert events_of(codes, at) == want
    assert same(got, want_late)


def test_collection_late_at_the_last_tick():
    ticks = grid(0.0, 289)                                              # a day and a tick
    full, late, at = np.array([0.0, 300.0, NAN]), np.full(3, NAN), np.empty(3, dtype=np.int32)
    codes = kernels.sweep_collection_late(ticks, 24 * H, full, late, raised_at=at)
    assert codes.tolist() == [RAISED, NO_CHANGE, NO_CHANGE] and at.tolist() == [288, -1, -1]
