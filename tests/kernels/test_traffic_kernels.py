"""Traffic kernels against their naive references (tests/naive.py): fixed, random, NaN and edge inputs."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels
from kernels.config import CLEARED, NO_CHANGE, RAISED
from streams.detectors.traffic.incident import TrafficIncident
from tests import naive

NAN = float("nan")
DAY = 86400.0
MONDAY = 1_790_000_000.0 - 1_790_000_000.0 % DAY   # 2026-09-21, a Monday, 00:00 UTC


def same(a, b):
    a, b = list(a), list(b)
    return len(a) == len(b) and all((isinstance(x, float) and math.isnan(x) and math.isnan(y)) or x == y
                                    for x, y in zip(a, b))


def column(readings, k, dtype=np.float64):
    return np.array([r[k] for r in readings], dtype=dtype)


def by_time(readings):
    return sorted(readings, key=lambda r: (math.isnan(r[1]), 0.0 if math.isnan(r[1]) else r[1]))


times = st.one_of(st.just(NAN), st.integers(0, 60).map(lambda k: 300.0 * k))


# --- shared detector state ------------------------------------------------------------------------

def run_apply(readings, m=4):
    state = [np.full(m, NAN), np.full(m, -1, dtype=np.int32), np.full(m, NAN), np.full(m, NAN)]
    codes = kernels.apply_traffic_readings(column(readings, 0, np.int32), column(readings, 1),
                                           column(readings, 2, np.int32), column(readings, 3), column(readings, 4),
                                           *state)
    ref = naive.apply_traffic_readings(readings, [NAN] * m, [-1] * m, [NAN] * m, [NAN] * m)
    assert same(codes, ref[0])
    for got, want in zip(state, ref[1:]):
        assert same(got, want)
    return list(codes), state


def test_apply_keeps_the_newest_reading_and_skips_stale_and_invalid():
    codes, (last_seen, segment, position, occupancy) = run_apply(
        [(0, 300.0, 1, 400.0, 0.1), (0, 300.0, 1, 400.0, 0.9), (1, NAN, 0, 0.0, 0.2), (5, 600.0, 0, 0.0, 0.2),
         (0, 600.0, -1, NAN, 0.3)])
    assert codes == [0, 4, 5, 5, 0]
    assert last_seen[0] == 600.0 and segment[0] == 1 and position[0] == 400.0 and occupancy[0] == 0.3
    assert math.isnan(last_seen[1])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 4), times, st.integers(-1, 2), st.sampled_from([NAN, 0.0, 400.0]),
                          st.sampled_from([NAN, 0.0, 0.05, 0.6])), max_size=30))
def test_apply_matches_reference_on_random_input(readings):
    run_apply(by_time(readings))


def test_apply_on_an_empty_batch_changes_nothing():
    codes, state = run_apply([])
    assert codes == [] and all(np.isnan(state[0]))


# --- traffic.silent ---------------------------------------------------------------------------------

def test_silent_raises_after_the_gap_and_clears_on_the_next_reading():
    last_seen, since = np.array([0.0, 1000.0, NAN]), np.full(3, NAN)
    assert list(kernels.sweep_absence(1200.0, 1200.0, last_seen, since)) == [RAISED, NO_CHANGE, NO_CHANGE]
    assert since[0] == 0.0
    assert list(kernels.sweep_absence(1500.0, 1200.0, last_seen, since)) == [NO_CHANGE] * 3
    last_seen[0] = 1600.0
    assert list(kernels.sweep_absence(1700.0, 1200.0, last_seen, since)) == [CLEARED, NO_CHANGE, NO_CHANGE]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(times, times), min_size=1, max_size=8), st.integers(0, 60).map(lambda k: 300.0 * k))
def test_silent_matches_reference_on_random_input(pairs, watermark):
    last_seen = np.array([p[0] for p in pairs])
    since = np.array([p[1] for p in pairs])
    want = naive.sweep_absence(watermark, 1200.0, list(last_seen), list(since))
    codes = kernels.sweep_absence(watermark, 1200.0, last_seen, since)
    assert same(codes, want[0]) and same(since, want[1])


# --- traffic.stuck -----------------------------------------------------------------------------------

STUCK_KEYS = ("last_ts", "q", "o", "v", "flat_since", "impossible_since", "since", "ended")


def stuck_facts(slot, ts, occupancy, last_seen, last_occupancy):
    """The traffic tracker's facts for a slice (as TrafficTracker computes them), folding each detector's newest
    reading into ``last_seen`` / ``last_occupancy``: update_stuck takes these instead of keeping its own copy,
    and the naive reference (which keeps its own, as the detector did) must agree."""
    prev_ts, prev_occupancy, new = kernels.previous_readings(slot, ts, last_seen, occupancy, last_occupancy,
                                                             value_required=False, fold=True)
    return new, prev_ts, prev_occupancy


def run_stuck(readings, m=3, flat_after=1500.0, impossible_after=900.0, split=None):
    arrays = [np.full(m, NAN) for _ in STUCK_KEYS]      # last_ts and o: the tracker's; the others the kernel's
    cuts = [0, split, len(readings)] if split is not None and 0 < split < len(readings) else [0, len(readings)]
    codes, starts = [], []
    for a, b in zip(cuts[:-1], cuts[1:]):
        piece = readings[a:b]
        slot, ts, q, o, v = (column(piece, 0, np.int32), column(piece, 1), column(piece, 2), column(piece, 3),
                             column(piece, 4))
        new, prev_ts, prev_o = stuck_facts(slot, ts, o, arrays[0], arrays[2])
        c, st_ = kernels.update_stuck(slot, ts, q, o, v, new, prev_ts, prev_o, flat_after, impossible_after,
                                      arrays[1], *arrays[3:])
        codes += list(c)
        starts += list(st_)
    ref_codes, ref_starts, ref_state = naive.update_stuck(readings, flat_after, impossible_after,
                                                          [{k: NAN for k in STUCK_KEYS} for _ in range(m)])
    assert same(codes, ref_codes) and same(starts, ref_starts)
    for k, arr in zip(STUCK_KEYS, arrays):
        assert same(arr, [d[k] for d in ref_state]), k
    return list(codes), list(starts)


def test_a_flat_run_raises_at_flat_after_with_its_first_reading_as_start_and_clears_on_change():
    readings = [(0, 300.0 * k, 12.0, 0.05, 48.0) for k in range(1, 8)] + [(0, 2400.0, 13.0, 0.05, 48.0)]
    codes, starts = run_stuck(readings)
    assert codes == [0, 0, 0, 0, 0, RAISED, 0, CLEARED]      # 300 -> 1800: 1500 s of identical readings
    assert starts[5] == 300.0 and starts[7] == 300.0


def test_zero_counts_are_a_quiet_road_and_speed_without_vehicles_is_impossible():
    quiet = [(0, 300.0 * k, 0.0, 0.0, NAN) for k in range(1, 12)]
    assert run_stuck(quiet)[0] == [0] * 11
    impossible = [(1, 300.0 * k, 0.0, 0.0, 40.0) for k in range(1, 6)] + [(1, 1800.0, 0.0, 0.0, NAN)]
    codes, starts = run_stuck(impossible)
    assert codes == [0, 0, 0, RAISED, 0, CLEARED] and starts[3] == 300.0


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 3), times, st.sampled_from([NAN, 0.0, 5.0, 5.0, 9.0]),
                          st.sampled_from([NAN, 0.0, 0.03, 0.03]), st.sampled_from([NAN, 0.0, 40.0, 40.0])),
                max_size=40), st.integers(0, 40))
def test_stuck_matches_reference_on_random_input(readings, split):
    run_stuck(by_time(readings), flat_after=900.0, impossible_after=600.0, split=split)


def test_stuck_on_empty_batch_and_one_nan_reading():
    assert run_stuck([]) == ([], [])
    assert run_stuck([(0, NAN, NAN, NAN, NAN)])[0] == [0]


def test_stuck_validates_the_facts():
    i, f, new = np.zeros(1, dtype=np.int32), np.full(1, NAN), np.ones(1, dtype=np.bool_)
    with pytest.raises(TypeError):     # the tracker's "new" is bool
        kernels.update_stuck(i, f, f, f, f, f, f, f, 1.0, 1.0, *[np.full(1, NAN) for _ in range(6)])
    with pytest.raises(ValueError):    # prev_ts per reading
        kernels.update_stuck(i, f, f, f, f, new, np.zeros(2), f, 1.0, 1.0, *[np.full(1, NAN) for _ in range(6)])
    with pytest.raises(ValueError):    # a new reading outside the state
        kernels.update_stuck(i + 1, f, f, f, f, new, f, f, 1.0, 1.0, *[np.full(1, NAN) for _ in range(6)])


# --- traffic.incident --------------------------------------------------------------------------------

def test_downstream_neighbour_is_the_next_station_of_the_same_segment():
    segment = np.array([0, 0, 0, 1, 0, 0, -1], dtype=np.int32)
    position = np.array([0.0, 800.0, 400.0, 400.0, 400.0, NAN, 0.0])
    got = kernels.adjacent_downstream(segment, position, 2)
    assert list(got) == [2, -1, 1, -1, 1, -1, -1]     # two lanes at 400 m: the lower slot is the neighbour
    assert same(got, naive.adjacent_downstream(list(segment), list(position), 2))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 2), st.sampled_from([NAN, 0.0, 400.0, 800.0, 1200.0])), max_size=10))
def test_downstream_matches_reference_on_random_input(detectors):
    segment = np.array([d[0] for d in detectors], dtype=np.int32)
    position = np.array([d[1] for d in detectors], dtype=np.float64)
    assert same(kernels.adjacent_downstream(segment, position, 2),
                naive.adjacent_downstream(list(segment), list(position), 2))


def run_incident_sweeps(ticks, last_seen, segment, position, occupancy, stuck_since, n_segments=2):
    """``occupancy``/``last_seen``: per tick, the detectors' values. Returns codes per tick; checks the reference."""
    th = TrafficIncident.Thresholds()
    m = len(segment)
    segment = np.array(segment, dtype=np.int32)
    position = np.array(position, dtype=np.float64)
    stuck = np.array(stuck_since, dtype=np.float64)
    state = [np.full(m, NAN) for _ in range(3)]
    open_since, ended = np.full(n_segments, NAN), np.full(n_segments, NAN)
    ref_state = [{"congested": NAN, "calm": NAN, "since": NAN} for _ in range(m)]
    ref_ended = [NAN] * n_segments
    result = []
    for t, seen, occ in zip(ticks, last_seen, occupancy):
        seen, occ = np.array(seen, dtype=np.float64), np.array(occ, dtype=np.float64)
        codes = kernels.sweep_incident(t, th.occupancy_difference, th.relative_difference, th.persist_after_s,
                                       th.clear_after_s, th.fresh_within_s, seen, segment, position, occ, stuck,
                                       *state, open_since, ended)
        ref_codes, ref_state, ref_open, ref_now = naive.sweep_incident(t, th, list(seen), list(segment),
                                                                       list(position), list(occ), list(stuck),
                                                                       ref_state, n_segments)
        for g, when in ref_now.items():
            ref_ended[g] = when
        assert same(codes, ref_codes) and same(open_since, ref_open) and same(ended, ref_ended)
        for name, arr in zip(("congested", "calm", "since"), state):
            assert same(arr, [d[name] for d in ref_state])
        result.append(list(codes))
    return result


def test_a_lasting_queue_above_free_flow_raises_on_the_upstream_detector_and_clears():
    ticks = [300.0 * k for k in range(1, 16)]
    queue = [0.6 if 3 <= k < 9 else 0.1 for k in range(15)]
    occupancy = [[q, 0.05, 0.05] for q in queue]
    seen = [[t - 10.0] * 3 for t in ticks]
    codes = run_incident_sweeps(ticks, seen, [0, 0, 0], [0.0, 400.0, 800.0], occupancy, [NAN] * 3)
    raised = [k for k, c in enumerate(codes) if c[0] == RAISED]
    cleared = [k for k, c in enumerate(codes) if c[0] == CLEARED]
    assert raised == [6] and cleared == [12]   # 900 s after the first congested (k=3) and first calm (k=9) sweeps
    assert all(c[1] == c[2] == NO_CHANGE for c in codes)


def test_a_stuck_or_silent_detector_is_no_evidence():
    ticks = [300.0 * k for k in range(1, 10)]
    occupancy = [[0.6, 0.05]] * 9
    fresh = [[t - 10.0] * 2 for t in ticks]
    assert all(c == [0, 0] for c in run_incident_sweeps(ticks, fresh, [0, 0], [0.0, 400.0], occupancy, [NAN, 5.0]))
    stale = [[t - 10.0, 0.0] for t in ticks]
    assert all(c == [0, 0] for c in run_incident_sweeps(ticks, stale, [0, 0], [0.0, 400.0], occupancy, [NAN] * 2))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 1), st.sampled_from([NAN, 0.0, 400.0, 800.0]),
                          st.sampled_from([NAN, 5.0])), min_size=1, max_size=5),
       st.lists(st.lists(st.sampled_from([NAN, 0.02, 0.1, 0.4, 0.7]), min_size=5, max_size=5), min_size=1,
                max_size=25),
       st.sampled_from([10.0, 10.0, 1000.0]))
def test_incident_matches_reference_on_random_input(detectors, occupancies, age):
    m = len(detectors)
    ticks = [300.0 * (k + 1) for k in range(len(occupancies))]
    run_incident_sweeps(ticks, [[t - age] * m for t in ticks], [d[0] for d in detectors], [d[1] for d in detectors],
                        [o[:m] for o in occupancies], [d[2] for d in detectors])


# --- traffic.anomaly_score (the shared series scorer is tested in test_series_kernels.py) ---------------

def test_channels_match_reference():
    q, o, v = np.array([0.0, 9.0, NAN]), np.array([0.0, 0.1, 0.5]), np.array([NAN, 50.0, 0.0])
    got = kernels.traffic_channels(q, o, v)
    for i in range(3):
        assert same([c[i] for c in got], naive.traffic_channels(q[i], o[i], v[i]))


FLOORS = np.array([0.5, 0.12, 0.06])
SCORE = dict(alert_score=0.5, calm_score=0.3, clip=3.0, bin_rate=0.3, baseline_age=43200.0)


def daily_flow(days, step=300.0, anomaly=None):
    """(ts, values [n, 3]) of a detector's (sqrt count, log occupancy, log speed) on a fixed daily rhythm."""
    rng = np.random.default_rng(4)
    ts, rows = [], []
    for k in range(int(days * DAY / step)):
        t = MONDAY + step * (k + 1)
        hour = (t % DAY) / 3600.0
        count = 5.0 + 60.0 * math.exp(-0.5 * ((hour - 8.0) / 1.5) ** 2) + rng.normal(0, 1.0)
        values = (math.sqrt(max(count, 0.0)), math.log(0.002 * count + 0.02), math.log(50.0 + rng.normal(0, 1.0)))
        if anomaly is not None and anomaly[0] <= t < anomaly[1]:
            values = (values[0] * 0.3, values[1], values[2])
        ts.append(t)
        rows.append(values)
    return np.array(ts), np.ascontiguousarray(np.array(rows))


def score_flow(ts, values, quarantined=None):
    from kernels.series import new_series_state
    state = new_series_state(1, 3)
    quarantined = np.full(1, NAN) if quarantined is None else np.array([quarantined])
    scores = kernels.score_series(np.zeros(ts.shape[0], dtype=np.int32), ts, values, FLOORS, *SCORE.values(),
                                  quarantined, *state)
    return scores, state


def test_a_disturbance_on_a_learnt_day_scores_high_and_normal_days_score_low():
    start = MONDAY + 2 * DAY + 9 * 3600.0
    ts, values = daily_flow(3, anomaly=(start, start + 3600.0))
    scores, _ = score_flow(ts, values)
    during = (ts >= start) & (ts < start + 3600.0)
    recovering = (ts >= start) & (ts < start + 2 * 3600.0)     # the hour after: the slow horizon calms down
    normal = (ts >= MONDAY + DAY + 3600.0) & ~recovering & (ts < MONDAY + 3 * DAY - 3600.0)
    assert scores[during].min() >= SCORE["alert_score"]          # the whole hour is one run of high scores
    assert np.percentile(scores[normal], 99) < SCORE["calm_score"] and scores[normal].max() < SCORE["alert_score"]


def test_a_quarantined_detector_teaches_what_is_usual_nothing():
    from kernels.series import BIN_FIELDS, CHANNEL_FIELDS
    ts, values = daily_flow(2)
    _scores, free = score_flow(ts, values)
    _scores, held = score_flow(ts, values, quarantined=5.0)
    first = BIN_FIELDS.index("first")
    assert not np.isnan(free[2][first]).all() and np.isnan(held[2][first]).all()   # no seasonal bin learnt
    short = CHANNEL_FIELDS.index("short_level")
    assert np.array_equal(free[1][short], held[1][short])                              # the short view follows


def test_sweep_raises_unexplained_runs_only_and_clears_after_calm():
    """The detector's sweep: a run explained by a stuck episode or an incident on the segment is theirs."""
    from streams.detectors.traffic.anomaly_score import TrafficAnomalyScore
    from streams.state.partition import PartitionState

    from streams.detectors.access import DeclaredState, field_specs, prepare_reads
    from streams.domains import DOMAINS

    raw = PartitionState()
    detector = TrafficAnomalyScore()
    detector.prepare(raw)
    prepare_reads(raw, detector, field_specs(DOMAINS["traffic"]))   # the fields it reads, at their fills
    state = DeclaredState(raw, detector)
    raw.subjects.slots_for(["a", "b", "c", "d"])
    raw.group("segment").slots_for(["s0"])
    col = state.subject
    col("anomaly_last_ts")[:] = 4000.0
    col("anomaly_first_ts")[:] = 0.0
    col("anomaly_seen")[:] = 1000.0
    col("anomaly_interval")[:] = 300.0
    col("anomaly_hot_since")[:] = [1000.0, 1000.0, 1000.0, 3000.0]
    raw.subject("stuck_ended")[:] = [NAN, 900.0, NAN, NAN]          # traffic.stuck's, read only here
    raw.subject("stuck_since")[:] = [NAN, 800.0, NAN, NAN]          # b: an open stuck episode explains it
    raw.subject("segment")[:] = [-1, -1, 0, -1]
    raw.group_column("segment", "incident_ended")[0] = 1500.0       # c: its segment's incident ended after
    found = detector.sweep(state, 4000.0)
    assert [(t.subject, t.state, t.episode_start) for t in found] == [("a", "raised", 1000.0)]   # d: 1000 s hot
    col("anomaly_last_ts")[0], col("anomaly_hot_since")[0], col("anomaly_cold_since")[0] = 5000.0, NAN, 4100.0
    assert [(t.subject, t.state) for t in detector.sweep(state, 5000.0)] == [("a", "cleared")]
