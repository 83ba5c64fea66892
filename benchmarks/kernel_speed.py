"""Each detector's kernel on one core: readings per second, and per event against its naive reference.

One *case* per detector: the kernel its ``update`` or ``sweep`` calls (``kernels/``) and the
pure-Python reference the kernel tests compare it with (``tests/naive*.py``), fed the same
synthetic data: ``subjects`` sensors reporting in rounds (time-sorted, as a batch arrives), each
reading one sensor's next value. An update kernel's unit is a reading; a sweep kernel's (absence
detectors) is a subject swept once, the work a sweep does per sensor. The kernel is timed on
``n`` (10M) units after a warm-up call (Numba compiles or loads its cache then); the reference on
a small prefix of the same kind of data (``naive_n``), and the ratio is per event.

Nothing here is a second copy of a kernel: each case only builds arrays and calls the public
wrapper (``kernels.<name>``) and the reference the tests trust.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from dataclasses import dataclass
from typing import Callable

import numpy as np

NAN = float("nan")
H = 3600.0
T0 = 1_790_000_000.0 - 1_790_000_000.0 % 86400.0   # a Monday, 00:00 UTC
WINTER_NIGHT = 1_768_082_400.0                      # 2026-01-10T22:00Z: lamps must burn


@dataclass
class Case:
    detector: str        # the detector whose hot path this kernel is
    kernel: str          # kernels.<name>
    reference: str       # tests/naive*.py function
    unit: str            # "readings" or "subjects swept"
    #: (n, rng) -> (kernel, reference): ``kernel()`` allocates fresh state and returns the call to time;
    #: ``reference()`` runs the naive reference (its state is made inside: part of its cost, as in the tests)
    build: Callable


def _rounds(n: int, subjects: int, cadence: float, rng, start: float = T0):
    """slot (int32) and ts (s) of ``n`` readings: ``subjects`` sensors reporting every ``cadence`` s
    (each with its own offset), in time order, as the worker sorts a batch."""
    rounds = -(-n // subjects)
    slot = np.tile(np.arange(subjects, dtype=np.int32), rounds)[:n]
    offset = rng.uniform(0, cadence * 0.9, subjects)
    ts = start + np.repeat(np.arange(rounds) * cadence, subjects)[:n] + offset[slot]
    order = np.argsort(ts, kind="stable")
    return slot[order], ts[order]


def _index(slot, subjects, rng, use_p=0.6, litres=(1, 40)):
    """A cumulative meter index (m3) per reading: each meter's own running sum of hourly use."""
    use = np.where(rng.random(len(slot)) < use_p, rng.integers(*litres, len(slot)) / 1000.0, 0.0)
    index = np.empty(len(slot))
    base = rng.uniform(10, 500, subjects)
    # a running sum per slot, in the readings' order
    order = np.argsort(slot, kind="stable")
    sorted_slot, sorted_use = slot[order], use[order]
    csum = np.cumsum(sorted_use)
    starts = np.searchsorted(sorted_slot, np.arange(subjects))
    first = np.concatenate([[0.0], csum])[starts]
    index[order] = base[sorted_slot] + csum - first[sorted_slot]
    return index


def _rows(*columns):
    return list(zip(*(c.tolist() for c in columns)))


def _subjects(n: int) -> int:
    """Sensors for ``n`` readings: 100 readings each, at most 100k sensors."""
    return max(10, min(100_000, n // 100))


# --- cases ---------------------------------------------------------------------------------------

def _facts(slot, ts, m, index=None):
    """The tracker's previous-reading facts for fresh meters (computed once, outside the timing: the
    tracker's own kernel is measured as its own case)."""
    import kernels
    if index is None:
        prev_ts, _none, new = kernels.previous_readings(slot, ts, np.full(m, NAN))
        return prev_ts, new
    return kernels.previous_readings(slot, ts, np.full(m, NAN), index, np.full(m, NAN))


def _water_flow(kind):
    def build(n, rng):
        import kernels
        from tests import naive
        m = _subjects(n)
        slot, ts = _rounds(n, m, H, rng)
        index = _index(slot, m, rng)
        if kind == "continuous_flow":
            args = (4 * H, 1.5 * H)
            facts = _facts(slot, ts, m, index)
            return (lambda: partial(kernels.continuous_flow, slot, ts, index, *facts, *args, np.zeros(m, np.int8),
                                    np.full(m, NAN), np.full(m, NAN)),
                    lambda: naive.continuous_flow(_rows(slot, ts, index), *args, *[[NAN] * m for _ in range(4)]))
        if kind == "burst":
            peak = rng.uniform(0, 2.0, n)
            nominal = np.where(rng.random(n) < 0.05, 2.5, NAN)
            args = (0.5, 0.5 * H, 1.5 * H)
            facts = _facts(slot, ts, m, index)
            return (lambda: partial(kernels.burst, slot, ts, index, peak, nominal, *facts, *args,
                                    *[np.full(m, NAN) for _ in range(3)]),
                    lambda: naive.burst(_rows(slot, ts, index, peak, nominal), *args, *[[NAN] * m for _ in range(5)]))
        if kind == "backflow":
            back = index - np.where(rng.random(n) < 0.001, 0.01, 0.0)
            args = (0.002, 5.0)
            facts = _facts(slot, ts, m, back)
            return (lambda: partial(kernels.backflow, slot, ts, back, *facts, *args, np.full(m, NAN)),
                    lambda: naive.backflow(_rows(slot, ts, back), *args, *[[NAN] * m for _ in range(3)]))
        if kind == "device_alarm":
            alarm = np.where(rng.random(n) < 0.001, rng.integers(1, 4, n).astype(np.float64), NAN)
            _prev_ts, new = _facts(slot, ts, m)
            return (lambda: partial(kernels.device_alarm, slot, ts, alarm, new, 2.0, np.zeros(m, np.int8),
                                    np.zeros(m), np.full(m, NAN)),
                    lambda: naive.device_alarm(_rows(slot, ts, alarm), 2.0, [NAN] * m, [0] * m, [0.0] * m, [NAN] * m))
        if kind == "night_flow":
            from kernels.water_flow import NIGHT_BINS
            g = max(1, m // 1000)
            district = (slot % g).astype(np.int32)
            facts = _facts(slot, ts, m, index)

            def run_kernel():
                return partial(kernels.night_flow_accumulate, slot, ts, index, *facts, district, 7200.0, 5400.0,
                               np.full(g, NAN), np.full(g, NAN), np.zeros((g, NIGHT_BINS)), np.zeros((g, NIGHT_BINS)))
            return (run_kernel,
                    lambda: naive.night_flow_accumulate(_rows(slot, ts, index, district), 7200.0, 5400.0, [NAN] * m,
                                                        [NAN] * m, [NAN] * g, [NAN] * g, [[0.0] * NIGHT_BINS] * g,
                                                        [[0.0] * NIGHT_BINS] * g))
        raise AssertionError(kind)
    return build


def _water_tracker(n, rng):
    import kernels
    from tests import naive
    m = _subjects(n)
    g = max(1, m // 500)
    slot, ts = _rounds(n, m, H, rng)
    index = _index(slot, m, rng)
    gw = (slot // 500).astype(np.int32) % g

    def state():
        return (np.full(m, NAN), np.full(m, NAN), np.full(m, NAN), np.full(m, -1, np.int32), np.full(g, NAN))
    return (lambda: partial(kernels.apply_meter_readings, slot, ts, index, gw, *state()),
            lambda: naive.apply_meter_readings(_rows(slot, ts, index, gw), *[a.tolist() for a in state()]))


def _sweep(kind):
    def build(n, rng):
        import kernels
        from tests import naive
        last_seen = T0 + 30 * 86400.0 - rng.uniform(0, 6 * H, n)
        last_seen[rng.random(n) < 0.001] = T0          # a few long silent
        watermark = T0 + 30 * 86400.0
        if kind == "no_use":
            last_use = np.where(rng.random(n) < 0.001, T0 + 28 * 86400.0, last_seen - rng.uniform(0, 12 * H, n))
            g = max(1, n // 500)
            meter_gw = (np.arange(n) // 500 % g).astype(np.int32)
            gw_out = np.full(g, NAN)
            return (lambda: partial(kernels.sweep_no_use, watermark, 86400.0, 3 * H, last_seen, last_use, meter_gw, gw_out,
                                                 np.full(n, NAN)),
                    lambda: naive.sweep_no_use(watermark, 86400.0, 3 * H, last_seen.tolist(), last_use.tolist(),
                                               meter_gw.tolist(), gw_out.tolist(), [NAN] * n))
        if kind == "meter_silent":
            g = max(1, n // 500)
            meter_gw = (np.arange(n) // 500 % g).astype(np.int32)
            gw_out = np.full(g, NAN)
            return (lambda: partial(kernels.sweep_meter_silent, watermark, 3 * H, last_seen, meter_gw, gw_out, np.full(n, NAN)),
                    lambda: naive.sweep_meter_silent(watermark, 3 * H, last_seen.tolist(), meter_gw.tolist(),
                                                     gw_out.tolist(), [NAN] * n))
        if kind == "absence":
            return (lambda: partial(kernels.sweep_absence, watermark, 3 * H, last_seen, np.full(n, NAN)),
                    lambda: naive.sweep_absence(watermark, 3 * H, last_seen.tolist(), [NAN] * n))
        raise AssertionError(kind)
    return build


def _waste(kind):
    def build(n, rng):
        import kernels
        from tests import naive
        m = _subjects(n)
        slot, ts = _rounds(n, m, H, rng)
        fill = np.clip((ts - T0) / (5 * 86400.0) + rng.uniform(0, 1, m)[slot], 0, 10) % 1.0
        # the waste tracker's facts (outside the timing): a reading is new, the bin's previous fill
        _prev_ts, prev_fill, new = kernels.previous_readings(slot, ts, np.full(m, NAN), fill, np.full(m, NAN),
                                                             value_required=False, finite_values=True)
        if kind == "overflow":
            return (lambda: partial(kernels.update_overflow, slot, ts, fill, new, 0.9, 0.7, np.full(m, NAN)),
                    lambda: naive.update_overflow(_rows(slot, ts, fill), 0.9, 0.7, [NAN] * m, [NAN] * m))
        if kind == "fire":
            temp = rng.normal(15, 3, n)
            status = np.zeros(n)
            args = (60.0, 15.0, 10800.0, 30.0)
            return (lambda: partial(kernels.update_fire, slot, ts, temp, status, new, *args,
                                    *[np.full(m, NAN) for _ in range(3)]),
                    lambda: naive.update_fire(_rows(slot, ts, temp, status), *args, *[[NAN] * m for _ in range(4)]))
        if kind == "collection_late":
            return (lambda: partial(kernels.update_collection_late, slot, ts, fill, new, prev_fill, 0.75,
                                    *[np.full(m, NAN) for _ in range(2)]),
                    lambda: naive.update_collection_late(_rows(slot, ts, fill), 0.75, *[[NAN] * m for _ in range(4)]))
        if kind == "fill_forecast":
            from kernels.config import FILL_SLOPE_WINDOW
            nxt = T0 + (np.floor((ts - T0) / (3 * 86400.0)) + 1) * 3 * 86400.0

            def run_kernel():
                return partial(kernels.update_fill_forecast, slot, ts, fill, nxt, new, prev_fill, 0.9, 43200.0,
                                                    0.01 / 3600, 4, np.zeros(m, np.int32),
                                                    np.full((FILL_SLOPE_WINDOW, m), NAN),
                                                    np.full((FILL_SLOPE_WINDOW, m), NAN), np.full(m, NAN))
            return (run_kernel,
                    lambda: naive.update_fill_forecast(_rows(slot, ts, fill, nxt), 0.9, 43200.0, 0.01 / 3600, 4,
                                                       [NAN] * m, [NAN] * m, [[] for _ in range(m)], [NAN] * m))
        if kind == "stuck_level":
            level = np.round(fill, 1)
            _prev_ts, prev_level, new_level = kernels.previous_readings(
                slot, ts, np.full(m, NAN), level, np.full(m, NAN), value_required=False, finite_values=True)

            def run_kernel():
                return partial(kernels.update_stuck_level, slot, ts, level, new_level, prev_level, 6,
                                                  np.zeros(m, np.int32), np.full(m, NAN), np.full(m, NAN))
            return (run_kernel,
                    lambda: naive.update_stuck_level(_rows(slot, ts, level), 6, [NAN] * m, [NAN] * m, [0] * m,
                                                     [NAN] * m, [NAN] * m))
        raise AssertionError(kind)
    return build


def _traffic_stuck(n, rng):
    import kernels
    from tests import naive
    m = _subjects(n)
    slot, ts = _rounds(n, m, 300.0, rng)
    q = rng.poisson(20, n).astype(np.float64)
    o = rng.uniform(0, 0.4, n)
    v = rng.uniform(20, 60, n)
    keys = ("last_ts", "q", "o", "v", "flat_since", "impossible_since", "since", "ended")
    # the traffic tracker's facts (outside the timing): new, previous time and occupancy
    prev_ts, prev_o, new = kernels.previous_readings(slot, ts, np.full(m, NAN), o, np.full(m, NAN),
                                                     value_required=False)
    return (lambda: partial(kernels.update_stuck, slot, ts, q, o, v, new, prev_ts, prev_o, 1500.0, 900.0,
                            *[np.full(m, NAN) for _ in range(6)]),
            lambda: naive.update_stuck(_rows(slot, ts, q, o, v), 1500.0, 900.0, [{k: NAN for k in keys}] * m))


def _traffic_score(n, rng):
    """traffic.anomaly_score: the series scorer over three channels (sqrt count, log occupancy, log speed)
    of detectors reporting every 5 minutes with a daily rhythm."""
    import kernels
    from kernels import series as ks
    from tests import naive_series as ref
    m = max(10, min(1_000, n // 1000))     # per-slot seasonal state is 4,032 rows: 1,000 detectors, 10k readings each
    slot, ts = _rounds(n, m, 300.0, rng)
    day = np.sin((ts % 86400.0) / 86400.0 * 2 * np.pi)
    intensity = np.maximum(0, rng.poisson(np.maximum(1.0, 30 + 20 * day)))
    occupancy = np.clip(0.1 + 0.08 * day + rng.normal(0, 0.02, n), 0, 1)
    speed = np.clip(50 - 10 * day + rng.normal(0, 4, n), 1, 130)
    values = np.ascontiguousarray(np.column_stack(kernels.traffic_channels(intensity, occupancy, speed)))
    floors = np.zeros(3)
    th = ref.Thresholds(alert_score=0.5, calm_score=0.4, clip=3.0, bin_rate=0.3, baseline_age=43200.0)
    scores = (th.alert_score, th.calm_score, th.clip, th.bin_rate, th.baseline_age)

    def run_kernel():
        return partial(kernels.score_series, slot, ts, values, floors, *scores, np.full(m, NAN), *ks.new_series_state(m, 3))

    def run_reference():
        state = ks.new_series_state(m, 3)
        rows = list(zip(slot.tolist(), ts.tolist(), values.tolist()))
        return ref.score_series(rows, [0.0] * 3, th, [NAN] * m, ref.from_kernel_state(*state, 3))
    return run_kernel, run_reference


def _lighting(kind):
    def build(n, rng):
        import kernels
        from kernels.config import LAMP
        from tests import naive
        detector = _lighting_detector(kind)
        th = detector.Thresholds()
        m = _subjects(n)
        slot, ts = _rounds(n, m, 900.0, rng, start=WINTER_NIGHT - 16 * H)
        kind_col = np.full(n, float(LAMP))
        power = np.where(rng.random(n) < 0.05, 0.4, 60.0)
        state_col = np.where(power > 1, 1.0, 0.0)
        keys = [f"lamp-{s}" for s in slot.tolist()]
        # the lighting tracker's facts (outside the timing): a lamp reading is new, the previous one's time
        prev_ts, _none, new = kernels.previous_readings(slot, ts, np.full(m, NAN))
        if kind == "lamp_failure":
            args = (th.latitude_deg, th.longitude_deg, th.horizon_deg, th.night_margin_s, th.dark_below_w,
                    th.confirm_s, th.max_gap_s)
            return (lambda: partial(kernels.update_lamp_failure, slot, ts, kind_col, power, new, prev_ts, *args,
                                                        *[np.full(m, NAN) for _ in range(2)]),
                    lambda: naive.lamp_failure(list(zip(keys, ts.tolist(), kind_col.tolist(), power.tolist())), {}, th))
        if kind == "day_burner":
            args = (th.latitude_deg, th.longitude_deg, th.horizon_deg, th.day_margin_s, th.lit_above_w, th.confirm_s)
            return (lambda: partial(kernels.update_day_burner, slot, ts, kind_col, power, state_col, new, *args,
                                                      *[np.full(m, NAN) for _ in range(2)]),
                    lambda: naive.day_burner(list(zip(keys, ts.tolist(), kind_col.tolist(), power.tolist(),
                                                      state_col.tolist())), {}, th))
        if kind == "power_out_of_range":
            rating, level = np.full(n, 60.0), np.ones(n)
            args = (th.lit_above_w, th.tolerance, th.clear_tolerance, th.confirm_s)
            return (lambda: partial(kernels.update_power_out_of_range, slot, ts, kind_col, power, rating, level, new,
                                                              *args, *[np.full(m, NAN) for _ in range(2)]),
                    lambda: naive.power_out_of_range(list(zip(keys, ts.tolist(), kind_col.tolist(), power.tolist(),
                                                              rating.tolist(), level.tolist())), {}, th))
        if kind == "cycling":
            args = (th.latitude_deg, th.longitude_deg, th.horizon_deg, th.twilight_margin_s, th.lit_above_w,
                    th.window_s, th.min_transitions, th.steady_for_s)

            def run_kernel():
                return partial(kernels.update_cycling, slot, ts, kind_col, power, state_col, new, *args,
                                              np.full(m, -1, np.int8), np.full(m, NAN), np.zeros(m, np.int32),
                                              np.full(m, NAN), np.full(m, NAN))
            return (run_kernel,
                    lambda: naive.cycling(list(zip(keys, ts.tolist(), kind_col.tolist(), power.tolist(),
                                                   state_col.tolist())), {}, th))
        raise AssertionError(kind)
    return build


def _lighting_detector(kind):
    from streams.detectors.lighting.cycling import Cycling
    from streams.detectors.lighting.day_burner import DayBurner
    from streams.detectors.lighting.lamp_failure import LampFailure
    from streams.detectors.lighting.power_out_of_range import PowerOutOfRange
    return {"lamp_failure": LampFailure, "day_burner": DayBurner, "power_out_of_range": PowerOutOfRange,
            "cycling": Cycling}[kind]


def _close_absence(n, rng):
    import kernels
    from tests import naive
    m = _subjects(n)
    slot, ts = _rounds(n, m, 900.0, rng)
    since = np.where(rng.random(m) < 0.01, T0 - H, NAN)
    return (lambda: partial(kernels.close_absence, slot, ts, since.copy()),
            lambda: naive.close_absence(_rows(slot, ts), since.tolist()))


R, S = "readings", "subjects swept"
CASES = [
    Case("water (tracker)", "apply_meter_readings", "naive.apply_meter_readings", R, _water_tracker),
    Case("water.no_use_24h", "sweep_no_use", "naive.sweep_no_use", S, _sweep("no_use")),
    Case("water.meter_silent", "sweep_meter_silent", "naive.sweep_meter_silent", S, _sweep("meter_silent")),
    Case("feed.gateway_outage", "sweep_absence", "naive.sweep_absence", S, _sweep("absence")),
    Case("water.continuous_flow", "continuous_flow", "naive.continuous_flow", R, _water_flow("continuous_flow")),
    Case("water.burst", "burst", "naive.burst", R, _water_flow("burst")),
    Case("water.backflow", "backflow", "naive.backflow", R, _water_flow("backflow")),
    Case("water.device_alarm", "device_alarm", "naive.device_alarm", R, _water_flow("device_alarm")),
    Case("water.night_flow", "night_flow_accumulate", "naive.night_flow_accumulate", R, _water_flow("night_flow")),
    Case("traffic.stuck", "update_stuck", "naive.update_stuck", R, _traffic_stuck),
    Case("traffic.anomaly_score", "score_series", "naive_series.score_series", R, _traffic_score),
    Case("waste.overflow", "update_overflow", "naive.update_overflow", R, _waste("overflow")),
    Case("waste.fire", "update_fire", "naive.update_fire", R, _waste("fire")),
    Case("waste.collection_late", "update_collection_late", "naive.update_collection_late", R,
         _waste("collection_late")),
    Case("waste.full_before_collection", "update_fill_forecast", "naive.update_fill_forecast", R,
         _waste("fill_forecast")),
    Case("waste.sensor_fault", "update_stuck_level", "naive.update_stuck_level", R, _waste("stuck_level")),
    Case("waste/traffic/lighting.silent", "close_absence", "naive.close_absence", R, _close_absence),
    Case("lighting.lamp_failure", "update_lamp_failure", "naive.lamp_failure", R, _lighting("lamp_failure")),
    Case("lighting.day_burner", "update_day_burner", "naive.day_burner", R, _lighting("day_burner")),
    Case("lighting.power_out_of_range", "update_power_out_of_range", "naive.power_out_of_range", R,
         _lighting("power_out_of_range")),
    Case("lighting.cycling", "update_cycling", "naive.cycling", R, _lighting("cycling")),
]

#: Detectors with no case here, and why (the table says so rather than leaving them out silently).
NOT_MEASURED = {
    "traffic.incident": "sweep_incident's reference takes per-detector dicts and segment layouts; not built here",
    "water.routine_change": "dormant by declaration: it does not run unless an audit log activates it",
    "feed.stalled": "no kernel: one comparison per feed at each sweep",
}


@dataclasses.dataclass
class Timing:
    detector: str
    kernel: str
    reference: str
    unit: str
    n: int
    seconds: float
    per_s: float
    naive_n: int
    naive_seconds: float
    naive_per_s: float
    ratio: float


def _best(factory: Callable, repeat: int) -> float:
    """Best of ``repeat`` timed calls, each on fresh state; one call only when it takes over a second."""
    best = float("inf")
    for _ in range(repeat):
        call = factory()
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
        if best > 1.0:
            break
    return best


def measure(n: int = 10_000_000, naive_n: int = 20_000, repeat: int = 2, only=None, seed: int = 7) -> list[Timing]:
    """Time every case (or those whose detector is in ``only``): kernel on ``n`` units, best of
    ``repeat`` after a warm-up; reference once on ``naive_n`` (the series scorer's on a tenth)."""
    out = []
    for case in CASES:
        if only and case.detector not in only:
            continue
        warm_kernel, _ = case.build(2_000, np.random.default_rng(seed))
        warm_kernel()()                                 # compile or load from Numba's cache
        run_kernel, _ = case.build(n, np.random.default_rng(seed))
        seconds = _best(run_kernel, repeat)
        del run_kernel
        small = max(200, naive_n // 10) if case.kernel == "score_series" else naive_n
        _, run_reference = case.build(small, np.random.default_rng(seed))
        naive_seconds = _best(lambda: run_reference, 1)
        per_s, naive_per_s = n / seconds, small / naive_seconds
        out.append(Timing(case.detector, case.kernel, case.reference, case.unit, n, seconds, per_s, small,
                          naive_seconds, naive_per_s, per_s / naive_per_s))
    return out
