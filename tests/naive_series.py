"""Naive pure-Python reference of :mod:`kernels.series`, the anomaly likelihood of sensor series.

Written from the kernel's module docstring and the ``SERIES_*`` constants of :mod:`kernels.config`,
in the order a person would explain the scorer: the cadence, the three views of each channel,
the deviations, the calibration, the learning, the runs, and the episode rule. Plain floats,
dicts and lists, ``math`` only; slow on purpose. ``tests/kernels/test_series_kernels.py``
compares it with the kernel.

State (``None`` = unknown / never), one dict per series slot::

    {"first_ts", "last_ts", "interval", "seen",       # the cadence: first/newest reading, learnt step, readings
     "smooth",                                        # the slow horizon's running statistic
     "calibration": {"count": calm readings learnt,
                     "fast": {"mean", "var", "tail", "excess", "excess_square"}, "slow": {...}},
     "novel",                                         # the newest reading was new (raises nothing)
     "hot_since", "cold_since",                       # the runs
     "channels": [channel, ...]}

    channel = {"short": {"level", "trend", "scale", "seen"},   # Holt's level + trend, its noise scale
               "long": {"level", "scale", "seen"},             # the usual level
               "seasonal": {"scale", "seen",                   # the daily profile's noise scale
                            "bins": {bin: {"level", "first"}}},  # only the bins learnt so far
               "last_value", "resolution"}                     # the newest value, the learnt step between values

:func:`from_kernel_state` / :func:`to_kernel_state` convert the kernel's state tuples (the
``SLOT_FIELDS`` / ``CHANNEL_FIELDS`` / ``BIN_FIELDS`` arrays) to this form and back. Only
those two converters touch numpy.

Each driver takes the state and returns a new one (it never writes into what it was given).
An optional ``trace`` (a ``collections.Counter``) counts which rules ran, so a test can check
that an input exercises what it means to.
"""

from __future__ import annotations

import math
from copy import deepcopy
from dataclasses import dataclass

from kernels.config import (
    SERIES_TAIL_PRIOR_EXCEEDANCES,
    CLEARED, EPOCH_WEEKDAY, NO_CHANGE, RAISED, SERIES_ADAPT_MIN_S, SERIES_ADAPT_READINGS, SERIES_ALERT_AFTER_READINGS,
    SERIES_ALERT_AFTER_S, SERIES_BIN_S, SERIES_BINS, SERIES_BINS_PER_DAY, SERIES_CALIBRATION_READINGS,
    SERIES_CALIBRATION_WARMUP, SERIES_INTERVAL_READINGS, SERIES_LONG_READINGS, SERIES_MAX_DEVIATION,
    SERIES_MAX_GAP_INTERVALS, SERIES_RELATIVE_FLOOR, SERIES_RESOLUTION_FRACTION, SERIES_RESOLUTION_RATE,
    SERIES_SCALE_READINGS, SERIES_SCORE_DECADES,
    SERIES_SEASONAL_MAX_INTERVAL_S, SERIES_SHORT_INTERVALS, SERIES_SHORT_MEMORY_S, SERIES_SMOOTH_READINGS,
    SERIES_TAIL_PRIOR, SERIES_TAIL_SHAPE_MAX, SERIES_TAIL_SHAPE_MIN, SERIES_TREND_GAIN, SERIES_USUAL_TOLERANCE,
    SERIES_WARMUP_READINGS, SERIES_WINSOR_EXCESS,
)

DAY_S = 86400.0
HORIZONS = ("fast", "slow")          # index = the row of SERIES_TAIL_PRIOR
SMALLEST_SCALE = 1e-300              # a noise scale is never 0 (the deviation is then capped, not infinite)
SMALLEST_TAIL, SMALLEST_EXCESS, SMALLEST_EXCESS_VARIANCE = 1e-6, 1e-9, 1e-18
SMALLEST_P = 1e-300


@dataclass(frozen=True)
class Thresholds:
    alert_score: float = 0.5
    calm_score: float = 0.3
    clip: float = 3.0
    bin_rate: float = 0.3
    baseline_age: float = 43200.0


def _unknown(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _note(trace, what):
    if trace is not None:
        trace[what] += 1


# --- fresh state ------------------------------------------------------------------------------------

def new_tail() -> dict:
    return {"mean": None, "var": None, "tail": None, "excess": None, "excess_square": None}


def new_channel() -> dict:
    return {"short": {"level": None, "trend": None, "scale": None, "seen": 0.0},
            "long": {"level": None, "scale": None, "seen": 0.0},
            "seasonal": {"scale": None, "seen": 0.0, "bins": {}}, "last_value": None, "resolution": None}


def new_slot(k: int) -> dict:
    return {"first_ts": None, "last_ts": None, "interval": None, "seen": 0.0, "smooth": None,
            "calibration": {"count": 0.0, "fast": new_tail(), "slow": new_tail()}, "novel": False,
            "hot_since": None, "cold_since": None, "channels": [new_channel() for _ in range(k)]}


def new_state(slots: int, k: int) -> list[dict]:
    return [new_slot(k) for _ in range(slots)]


# --- small helpers --------------------------------------------------------------------------------

def clip_to(r: float, bound: float | None) -> float:
    """r limited to [-bound, bound]; no bound (an unknown scale) limits nothing."""
    if bound is None:
        return r
    return min(max(r, -bound), bound)


def running_weight(n: float, memory: float) -> float:
    """Weight of the n-th value of a running mean that turns into an exponential one over ``memory`` values."""
    return max(1.0 / n, 1.0 / memory)


def robust_bound(clip: float, scale: float, n: float) -> float:
    """Residuals are clipped at ``clip`` noise scales once a view has warmed up; before, not at all."""
    return clip * scale if n > SERIES_WARMUP_READINGS else math.inf


def in_scales(residual: float, scale: float) -> float:
    return min(abs(residual) / scale, SERIES_MAX_DEVIATION)


def noise_floor(channel_floor: float, channel: dict) -> float:
    """The smallest noise scale of a channel: its own floor, 1e-9 of its usual level, a fraction of its
    learnt resolution, never 0."""
    quantum = 0.0 if channel["resolution"] is None else SERIES_RESOLUTION_FRACTION * channel["resolution"]
    return max(channel_floor, SERIES_RELATIVE_FLOOR * abs(channel["long"]["level"]), quantum, SMALLEST_SCALE)


def learn_resolution(channel: dict, x: float) -> None:
    """The newest value becomes x; a step from the previous one (larger than 1e-9 of the values: not
    floating-point rounding) teaches the resolution: its first such step, then the running median of the
    steps in the log domain (up or down by SERIES_RESOLUTION_RATE). From every reading, anomalous or not."""
    previous, channel["last_value"] = channel["last_value"], x
    if previous is None:
        return
    d = abs(x - previous)
    if d <= SERIES_RELATIVE_FLOOR * max(abs(x), abs(previous)):
        return
    if channel["resolution"] is None:
        channel["resolution"] = d
    else:
        up = d > channel["resolution"]
        channel["resolution"] *= math.exp(SERIES_RESOLUTION_RATE if up else -SERIES_RESOLUTION_RATE)


# --- time of day -----------------------------------------------------------------------------------

def _day_type_and_second(t: float) -> tuple[int, float]:
    day = math.floor(t / DAY_S)
    weekend = (day + EPOCH_WEEKDAY) % 7 >= 5           # Monday = 0: 5 and 6 are Saturday and Sunday
    return (1 if weekend else 0), t - day * DAY_S


def seasonal_bin(t: float) -> int:
    """weekend * SERIES_BINS_PER_DAY + the 30-minute bin of the day (UTC)."""
    day_type, second = _day_type_and_second(t)
    return day_type * SERIES_BINS_PER_DAY + min(int(second // SERIES_BIN_S), SERIES_BINS_PER_DAY - 1)


def bracketing_bins(t: float) -> tuple[int, int, float]:
    """The two bins of t's day type whose centres bracket t (wrapping at midnight) and the weight of the second."""
    day_type, second = _day_type_and_second(t)
    position = second / SERIES_BIN_S - 0.5              # in bin widths from the first bin's centre
    lower = math.floor(position)
    lo = lower % SERIES_BINS_PER_DAY
    hi = (lo + 1) % SERIES_BINS_PER_DAY
    return day_type * SERIES_BINS_PER_DAY + lo, day_type * SERIES_BINS_PER_DAY + hi, position - lower


# --- the cadence ------------------------------------------------------------------------------------

def learn_cadence(slot: dict, t: float) -> float | None:
    """Count the reading and learn the reporting interval, a log-domain mean of the steps (each step
    held within a quarter and four times the interval so far); returns the step, None for the first."""
    step = None
    if slot["last_ts"] is not None:
        step = t - slot["last_ts"]
        if slot["interval"] is None:
            slot["interval"] = step
        else:
            old = slot["interval"]
            held = min(max(step, 0.25 * old), 4.0 * old)
            weight = running_weight(slot["seen"] + 1.0, SERIES_INTERVAL_READINGS)
            slot["interval"] = math.exp(math.log(old) + weight * (math.log(held) - math.log(old)))
    slot["last_ts"] = t
    if slot["first_ts"] is None:
        slot["first_ts"] = t
    slot["seen"] += 1.0
    return step


def short_rate(step: float | None, interval: float | None) -> float:
    """How far the short view moves to a reading: exponential forgetting over SERIES_SHORT_INTERVALS
    intervals, at most SERIES_SHORT_MEMORY_S, a gap counting as SERIES_MAX_GAP_INTERVALS intervals at most."""
    if step is None:
        return 1.0
    memory = min(SERIES_SHORT_INTERVALS * interval, SERIES_SHORT_MEMORY_S)
    if not memory > 0:
        return 1.0
    return 1.0 - math.exp(-min(step, SERIES_MAX_GAP_INTERVALS * interval) / memory)


# --- 1. the views -------------------------------------------------------------------------------------

def short_prediction(short: dict, step: float | None, interval: float | None) -> float:
    """Level + trend x the step since the last reading (a gap extrapolated over a few intervals at most)."""
    if step is None or short["trend"] is None or interval is None:
        return short["level"]
    return short["level"] + short["trend"] * min(step, SERIES_MAX_GAP_INTERVALS * interval)


def seasonal_prediction(bins: dict, home: int, lo: int, hi: int, f: float) -> float:
    """Interpolated between the bracketing bins' centres; the reading's own bin while a neighbour is unknown."""
    if lo in bins and hi in bins:
        return (1.0 - f) * bins[lo]["level"] + f * bins[hi]["level"]
    return bins[home]["level"]


def bin_usable(seasonal: dict, t: float, home: int, baseline_age: float) -> bool:
    """A bin predicts once it was first learnt baseline_age s ago."""
    b = seasonal["bins"].get(home)
    return b is not None and t - b["first"] >= baseline_age


def rhythm_known(channel: dict, seasonal_allowed: bool) -> bool:
    """The channel has a daily rhythm: its warmed-up profile's noise scale is below the long level's."""
    seasonal = channel["seasonal"]
    return (seasonal_allowed and seasonal["seen"] >= SERIES_WARMUP_READINGS and seasonal["scale"] is not None
            and seasonal["scale"] < channel["long"]["scale"])


def views(channel, x, floor, t, step, interval, when, seasonal_allowed, baseline_age, trace=None):
    """(residual, noise scale) of the usual value and of the short view for reading x, and whether the
    reading falls where the channel's known daily rhythm has not been seen yet (``unfamiliar``)."""
    home, lo, hi, f = when
    long, seasonal = channel["long"], channel["seasonal"]
    usual = (x - long["level"], max(long["scale"], floor))
    unfamiliar = False
    if seasonal_allowed and not bin_usable(seasonal, t, home, baseline_age):
        # a rhythm is known, but not at this time of day and weekday type yet (a weekday-started series'
        # first Saturday): what the series does here is new, not anomalous
        unfamiliar = rhythm_known(channel, seasonal_allowed)
        if unfamiliar:
            _note(trace, "unfamiliar_time")
    elif seasonal_allowed and seasonal["seen"] >= SERIES_WARMUP_READINGS and seasonal["scale"] is not None:
        seasonal_scale = max(seasonal["scale"], floor)
        if seasonal_scale < usual[1]:        # the daily profile predicts this series better than its level
            usual = (x - seasonal_prediction(seasonal["bins"], home, lo, hi, f), seasonal_scale)
            _note(trace, "seasonal_view")
            if lo in seasonal["bins"] and hi in seasonal["bins"]:
                _note(trace, "interpolated")
    short = (x - short_prediction(channel["short"], step, interval), max(channel["short"]["scale"], floor))
    return usual, short, unfamiliar


# --- 2. deviations ----------------------------------------------------------------------------------

def channel_deviations(channel, x, channel_floor, t, step, interval, when, seasonal_allowed, baseline_age,
                       trace=None):
    """(fast, slow) deviation of reading x in noise scales and whether it is ``unfamiliar`` (see views);
    None while the channel's views warm up."""
    if channel["long"]["level"] is None or channel["short"]["seen"] < SERIES_WARMUP_READINGS:
        return None
    floor = noise_floor(channel_floor, channel)
    usual, short, unfamiliar = views(channel, x, floor, t, step, interval, when, seasonal_allowed, baseline_age,
                                     trace)
    best = usual if usual[1] <= short[1] else short
    # the slow horizon: the distance from the usual value, unless that value describes the series much
    # worse than the short view does (a random walk; a rhythm not learnt yet)
    if usual[1] > SERIES_USUAL_TOLERANCE * short[1]:
        usual = short
        _note(trace, "slow_from_short")
    return in_scales(*best), in_scales(*usual), unfamiliar


# --- 3. calibration -----------------------------------------------------------------------------------

def tail_model(calibration: dict, horizon: str) -> tuple[float, float, float, float]:
    """(threshold = mean + sd, exceedance frequency, scale, shape) of a horizon: peaks over threshold,
    the excesses a generalised Pareto distribution fitted by their first two moments (mean excess m1,
    mean square m2: shape = (1 - m1^2 / variance) / 2, held to SERIES_TAIL_SHAPE_MIN..MAX; scale =
    m1 (1 - shape)). Before any calibration, Gaussian noise's (SERIES_TAIL_PRIOR)."""
    if calibration["count"] == 0:
        mean, sd, tail, m1, m2 = SERIES_TAIL_PRIOR[HORIZONS.index(horizon)]
        threshold = mean + sd
    else:
        h = calibration[horizon]
        threshold, tail, m1, m2 = h["mean"] + math.sqrt(h["var"]), h["tail"], h["excess"], h["excess_square"]
    m1 = max(m1, SMALLEST_EXCESS)
    variance = max(m2 - m1 * m1, SMALLEST_EXCESS_VARIANCE)
    shape = min(max(0.5 * (1.0 - m1 * m1 / variance), SERIES_TAIL_SHAPE_MIN), SERIES_TAIL_SHAPE_MAX)
    return threshold, max(tail, SMALLEST_TAIL), m1 * (1.0 - shape), shape


def tail_probability(value: float, model: tuple[float, float, float, float]) -> float:
    """P(statistic >= value): 1 up to the threshold, the fitted Pareto tail above it (exponential at
    shape 0; a negative shape's tail ends, and beyond its end nothing is as likely: 0)."""
    threshold, tail, scale, shape = model
    if value <= threshold:
        return 1.0
    z = (value - threshold) / scale
    if abs(shape) < 1e-9:
        return tail * math.exp(-z)
    base = 1.0 + shape * z
    if base <= 0.0:
        return 0.0
    return tail * base ** (-1.0 / shape)


def likelihood_score(p: float) -> float:
    """min(1, -log10 p / SERIES_SCORE_DECADES): 0.5 at one in a thousand, 1 at one in a million."""
    if p >= 1.0:
        return 0.0
    return min(1.0, -math.log10(max(p, SMALLEST_P)) / SERIES_SCORE_DECADES)


def learn_tail(calibration: dict, horizon: str, value: float, weight: float) -> None:
    """One value into a horizon's distribution: running mean and variance, how often it exceeds
    mean + sd and, over exceedances only, the mean and mean square of the excess."""
    h = calibration[horizon]
    if calibration["count"] == 0:           # the first value: its own mean, the prior's spread and tail
        _mean, sd, tail, m1, m2 = SERIES_TAIL_PRIOR[HORIZONS.index(horizon)]
        h.update(mean=value, var=sd * sd, tail=tail, excess=m1, excess_square=m2)
        return
    threshold = h["mean"] + math.sqrt(h["var"])
    d = value - h["mean"]
    h["mean"] += weight * d
    h["var"] = (1.0 - weight) * (h["var"] + weight * d * d)
    above = value > threshold
    h["tail"] += weight * ((1.0 if above else 0.0) - h["tail"])
    if above:   # running means over the exceedances within memory, after the prior's pseudo-exceedances
        exceedances = h["tail"] * min(calibration["count"], SERIES_CALIBRATION_READINGS)
        w = min(1.0, 1.0 / (exceedances + SERIES_TAIL_PRIOR_EXCEEDANCES))
        excess = value - threshold
        h["excess"] += w * (excess - h["excess"])
        h["excess_square"] += w * (excess * excess - h["excess_square"])


def learn_calibration(calibration: dict, fast: float, slow: float, models: dict, held: bool) -> None:
    """Teach both horizons one reading; a run's first high reading is ``held`` to the edge of each tail
    (threshold + SERIES_WINSOR_EXCESS scales of the fitted tail)."""
    weight = running_weight(calibration["count"] + 1.0, SERIES_CALIBRATION_READINGS)
    values = {"fast": fast, "slow": slow}
    for horizon in HORIZONS:
        value = values[horizon]
        if held:
            threshold, _tail, scale, _shape = models[horizon]
            value = min(value, threshold + SERIES_WINSOR_EXCESS * scale)
        learn_tail(calibration, horizon, value, weight)
    calibration["count"] += 1.0


# --- 4. learning, per channel ---------------------------------------------------------------------------

def learn_short(short, x, floor, step, interval, rate, calm, clip):
    """The short view follows every reading (its residual clipped); its noise scale learns from calm ones,
    the warm-up, and whenever it is still 0 (a series constant so far)."""
    scale = max(short["scale"], floor)
    predicted = short_prediction(short, step, interval)
    r = x - predicted
    if calm or short["seen"] < SERIES_WARMUP_READINGS or short["scale"] == 0.0:
        short["seen"] += 1.0
        bound = robust_bound(clip, scale, short["seen"])
        short["scale"] += running_weight(short["seen"], SERIES_SCALE_READINGS) * (min(abs(r), bound) - short["scale"])
    correction = clip_to(r, clip * scale)
    short["level"] = predicted + rate * correction          # Holt, error-correction form
    if step is not None and step > 0:
        trend = 0.0 if short["trend"] is None else short["trend"]
        short["trend"] = trend + rate * SERIES_TREND_GAIN * correction / min(step, SERIES_MAX_GAP_INTERVALS * interval)



def learn_long(long, x, floor, calm, clip):
    """The usual level and its noise scale: from calm readings (and the warm-up, and a zero scale)."""
    if not (calm or long["seen"] < SERIES_WARMUP_READINGS or long["scale"] == 0.0):
        return
    scale = max(long["scale"], floor)
    r = x - long["level"]
    long["seen"] += 1.0
    bound = robust_bound(clip, scale, long["seen"])
    long["level"] += running_weight(long["seen"], SERIES_LONG_READINGS) * clip_to(r, bound)
    long["scale"] += running_weight(long["seen"], SERIES_SCALE_READINGS) * (min(abs(r), bound) - long["scale"])


def learn_bins(seasonal, x, floor, t, interval, calm, when, th, trace=None):
    """The daily profile. A bin starts at its first reading and learns from every reading (clipped: an
    unusual one moves it by at most clip noise scales times its weight); its noise scale learns from calm
    readings once the bin is usable (baseline_age s after it started). On its first visit (its first SERIES_BIN_S s) it is about
    the mean of its readings; later the two bins bracketing the reading learn the interpolation's residual
    by their weights, all of a bin's readings of a day together weighing ``bin_rate``."""
    home, lo, hi, f = when
    bins = seasonal["bins"]
    if home not in bins:
        bins[home] = {"level": x, "first": t}
        _note(trace, "bin_started")
        return
    age = t - bins[home]["first"]
    usable = age >= th.baseline_age
    scale = None if seasonal["scale"] is None else max(seasonal["scale"], floor)
    r = x - seasonal_prediction(bins, home, lo, hi, f)
    # the profile's noise scale: calm readings of usable bins (and, so nothing is stuck, its warm-up and a
    # scale of exactly 0)
    if usable and (calm or seasonal["seen"] < SERIES_WARMUP_READINGS or seasonal["scale"] == 0.0):
        seasonal["seen"] += 1.0
        if seasonal["scale"] is None:
            seasonal["scale"] = abs(r)
        else:
            bound = robust_bound(th.clip, scale, seasonal["seen"])
            seasonal["scale"] += running_weight(seasonal["seen"], SERIES_SCALE_READINGS) * (min(abs(r), bound)
                                                                                     - seasonal["scale"])
    per_reading = 1.0 - (1.0 - th.bin_rate) ** (min(interval, SERIES_BIN_S) / SERIES_BIN_S)
    if age < SERIES_BIN_S:
        b = bins[home]
        b["level"] += max(per_reading, 1.0 / (age / interval + 1.0)) * (x - b["level"])
        _note(trace, "bin_first_visit")
        return
    step_r = per_reading * clip_to(r, None if scale is None else th.clip * scale)
    if lo in bins and hi in bins:
        bins[lo]["level"] += (1.0 - f) * step_r
        bins[hi]["level"] += f * step_r
        _note(trace, "bins_interpolation_learnt")
    else:
        bins[home]["level"] += step_r


def adapt_channel(channel: dict, channel_floor, t, step, interval, when, seasonal_allowed, baseline_age,
                  trace=None) -> None:
    """A lasting change: the usual value (the long level and the whole daily profile) moves by how far the
    short view now is from it (before this reading teaches anything), and every view's noise is learnt
    afresh (their counts restart). Applies to a channel whatever this reading holds for it."""
    short, long, seasonal = channel["short"], channel["long"], channel["seasonal"]
    if short["level"] is None or long["level"] is None:
        return
    floor = noise_floor(channel_floor, channel)
    # the usual prediction at t: views() gives residuals x - prediction, so ask for x = 0
    usual, _short, _unfamiliar = views(channel, 0.0, floor, t, step, interval, when, seasonal_allowed, baseline_age)
    shift = short_prediction(short, step, interval) + usual[0]
    long["level"] += shift
    short["trend"] = 0.0
    for b in seasonal["bins"].values():
        b["level"] += shift
    short["seen"] = long["seen"] = seasonal["seen"] = 0.0
    _note(trace, "channel_adapted")


def learn_channel(channel, x, channel_floor, t, step, interval, rate, calm, lasting, seasonal_allowed,
                  quarantined, when, th, trace=None):
    if channel["short"]["level"] is None:    # a channel's first reading: every view starts there
        channel["short"]["level"] = channel["long"]["level"] = x
        channel["short"]["scale"] = channel["long"]["scale"] = 0.0
        channel["last_value"] = x
        return
    floor = noise_floor(channel_floor, channel)     # with the resolution learnt before this reading
    learn_resolution(channel, x)
    learn_short(channel["short"], x, floor, step, interval, rate, calm, th.clip)
    if lasting:          # moved by adapt_channel already; the new normal's warm-up starts next reading
        return
    learn_long(channel["long"], x, floor, calm, th.clip)
    if seasonal_allowed and quarantined is None:
        learn_bins(channel["seasonal"], x, floor, t, interval, calm, when, th, trace)
    elif seasonal_allowed:
        # quarantined (the value: when the disturbance was seen): no bin learns, and a bin first drafted
        # since SERIES_BIN_S before then is thrown away (its first reading may be the disturbance's)
        home = when[0]
        b = channel["seasonal"]["bins"].get(home)
        if b is not None and b["first"] >= quarantined - SERIES_BIN_S:
            del channel["seasonal"]["bins"][home]
            _note(trace, "bin_discarded")


# --- 5. runs ---------------------------------------------------------------------------------------------

def update_runs(slot: dict, t: float, score: float, lasting: bool, th: Thresholds) -> None:
    """hot_since: start of the run of scores >= alert_score, kept while they stay >= calm_score;
    cold_since: start of the run below calm_score. A lasting change is the new normal: calm from now."""
    if lasting:
        slot["hot_since"], slot["cold_since"] = None, t
    elif score >= th.alert_score:
        slot["cold_since"] = None
        if slot["hot_since"] is None:
            slot["hot_since"] = t
    elif score < th.calm_score:
        slot["hot_since"] = None
        if slot["cold_since"] is None:
            slot["cold_since"] = t
    else:
        slot["cold_since"] = None


# --- one reading ---------------------------------------------------------------------------------------

def score_reading(slot: dict, t: float, xs, floors, th: Thresholds, quarantined=None, trace=None) -> float:
    """Score one reading (t newer than the slot's newest; xs: one value per channel, NaN = absent) and learn
    from it, in place. Returns the score."""
    step = learn_cadence(slot, t)
    interval = slot["interval"]
    seasonal_allowed = interval is not None and interval <= SERIES_SEASONAL_MAX_INTERVAL_S
    when = (seasonal_bin(t), *bracketing_bins(t))
    was_hot = slot["hot_since"] is not None
    present = [(c, float(x)) for c, x in enumerate(xs) if math.isfinite(x)]   # NaN or inf: absent
    calibration = slot["calibration"]

    # 1-2. the worst channel's deviations, each horizon its own worst
    looks = [(c, channel_deviations(slot["channels"][c], x, floors[c], t, step, interval, when, seasonal_allowed,
                                    th.baseline_age, trace)) for c, x in present]
    # a day old, yet a scored channel has no usable seasonal bin: whether it has a daily rhythm is not known
    rhythm_pending = seasonal_allowed and t - slot["first_ts"] >= SERIES_ALERT_AFTER_S and any(
        slot["channels"][c]["seasonal"]["seen"] < SERIES_WARMUP_READINGS for c, d in looks if d is not None)
    looks = [d for _c, d in looks if d is not None]
    scored = bool(looks)
    score, fast, models = 0.0, 0.0, None
    if scored:
        fast = math.log1p(max(d[0] for d in looks))
        slow_now = math.log1p(max(d[1] for d in looks))
        smooth = slot["smooth"]
        slot["smooth"] = slow_now if smooth is None else smooth + (slow_now - smooth) / SERIES_SMOOTH_READINGS
        # 3. the more surprising horizon, doubled for the two looks
        models = {h: tail_model(calibration, h) for h in HORIZONS}
        p = min(1.0, 2.0 * min(tail_probability(fast, models["fast"]),
                               tail_probability(slot["smooth"], models["slow"])))
        score = likelihood_score(p)
        if calibration["count"] < SERIES_CALIBRATION_WARMUP:
            score = 0.0
            _note(trace, "calibration_warmup")

    # 4. learn: what is usual teaches what is usual. What is new (a new series' first day, a time of day
    # its known rhythm was not seen at yet) is normal by definition: it teaches, and raises nothing
    first_day = not (slot["seen"] > SERIES_ALERT_AFTER_READINGS or t - slot["first_ts"] >= SERIES_ALERT_AFTER_S)
    novel = first_day or rhythm_pending or any(d[2] for d in looks)
    slot["novel"] = novel
    held = quarantined is not None
    usual = score < th.alert_score and not was_hot and not held
    calm = usual or (novel and not held)
    if calm and not usual:
        _note(trace, "novel_taught")
    lasting = (was_hot and interval is not None
               and t - slot["hot_since"] >= max(SERIES_ADAPT_READINGS * interval, SERIES_ADAPT_MIN_S))
    opens_run = score >= th.alert_score and not was_hot and not novel and not held
    if scored and (usual or opens_run):
        if opens_run:
            _note(trace, "run_opened_taught")
        learn_calibration(calibration, fast, slot["smooth"], models, held=not usual)
    rate = short_rate(step, interval)
    if lasting:
        for c, channel in enumerate(slot["channels"]):
            adapt_channel(channel, floors[c], t, step, interval, when, seasonal_allowed, th.baseline_age, trace)
    for c, x in present:
        learn_channel(slot["channels"][c], x, floors[c], t, step, interval, rate, calm, lasting, seasonal_allowed,
                      quarantined, when, th, trace)
    if lasting:          # the new normal: its calibration is learnt afresh too
        slot["smooth"] = None
        calibration["count"] = 0.0
        _note(trace, "adapted")
    # 5. (a reading with nothing scored, every channel missing or warming up, changes no run)
    if scored or lasting:
        update_runs(slot, t, score, lasting, th)
    return score


# --- the episode rule ---------------------------------------------------------------------------------------

def _lasted(now, since, duration) -> bool:
    return not _unknown(now) and not _unknown(since) and now - since >= duration


def episode_code(now, novel, interval, min_intervals, calm_intervals, hot_since, cold_since, since,
                 explained) -> int:
    """RAISED once a run of high scores has lasted ``min_intervals`` learnt intervals (unless ``explained``
    or the newest reading was ``novel``: a new series' first day, or a time of day its known rhythm was not
    seen at yet); CLEARED once an open episode's calm has lasted ``calm_intervals``; else NO_CHANGE."""
    if _unknown(interval):
        return NO_CHANGE
    if _unknown(since):
        if not novel and not explained and _lasted(now, hot_since, min_intervals * interval):
            return RAISED
        return NO_CHANGE
    if _lasted(now, cold_since, calm_intervals * interval):
        return CLEARED
    return NO_CHANGE


# --- drivers ------------------------------------------------------------------------------------------------

def _is_newer(slot: dict, t) -> bool:
    return math.isfinite(t) and (slot["last_ts"] is None or t > slot["last_ts"])


def score_series(readings, floors, th: Thresholds, quarantined, slots, trace=None):
    """readings: (slot, t, values) in order; quarantined: per slot, None/NaN = its readings may teach.
    A reading of an unknown slot, at a time not finite, or not newer than its slot's newest scores 0
    and changes nothing. Returns (scores, new slots)."""
    slots = deepcopy(slots)
    scores = []
    for s, t, xs in readings:
        if not 0 <= s < len(slots) or not _is_newer(slots[s], t):
            scores.append(0.0)
            continue
        scores.append(score_reading(slots[s], float(t), xs, floors, th,
                                    None if _unknown(quarantined[s]) else float(quarantined[s]), trace))
    return scores, slots


def sweep_series_episodes(min_intervals, calm_intervals, slots, explained, since):
    """The worker's sweep: the episode rule per slot at its newest reading. Returns (codes, since)."""
    since = [None if _unknown(x) else x for x in since]
    codes = []
    for s, slot in enumerate(slots):
        code = episode_code(slot["last_ts"], slot["novel"], slot["interval"], min_intervals, calm_intervals,
                            slot["hot_since"], slot["cold_since"], since[s], explained[s])
        if code == RAISED:
            since[s] = slot["hot_since"]
        elif code == CLEARED:
            since[s] = None
        codes.append(code)
    return codes, since


def score_series_episodes(ts, rows, floors, th: Thresholds, min_intervals, calm_intervals, state=None, trace=None):
    """One series (rows: values per reading) with the episode rule after every reading. ``state`` =
    (slot, since). Returns (scores, codes, starts, (slot, since)); a start is None without a code."""
    slot, since = (new_slot(len(floors)), None) if state is None else (deepcopy(state[0]), state[1])
    since = None if _unknown(since) else since
    scores, codes, starts = [], [], []
    for t, xs in zip(ts, rows):
        if not _is_newer(slot, t):
            scores.append(0.0), codes.append(NO_CHANGE), starts.append(None)
            continue
        scores.append(score_reading(slot, float(t), xs, floors, th, None, trace))
        code = episode_code(t, slot["novel"], slot["interval"], min_intervals, calm_intervals, slot["hot_since"],
                            slot["cold_since"], since, False)
        start = None
        if code == RAISED:
            since = start = slot["hot_since"]
        elif code == CLEARED:
            start, since = since, None
        codes.append(code)
        starts.append(start)
    return scores, codes, starts, (slot, since)


# --- converters from / to the kernel's arrays -------------------------------------------------------------

#: Where each kernel field lives in this module's state (counts are never "unknown").
SLOT_PATHS = {
    "first_ts": ("first_ts",), "last_ts": ("last_ts",), "interval": ("interval",), "seen": ("seen",),
    "smooth": ("smooth",), "calibrated": ("calibration", "count"),
    "fast_mean": ("calibration", "fast", "mean"), "fast_var": ("calibration", "fast", "var"),
    "fast_tail": ("calibration", "fast", "tail"), "fast_excess": ("calibration", "fast", "excess"),
    "fast_excess2": ("calibration", "fast", "excess_square"),
    "slow_mean": ("calibration", "slow", "mean"), "slow_var": ("calibration", "slow", "var"),
    "slow_tail": ("calibration", "slow", "tail"), "slow_excess": ("calibration", "slow", "excess"),
    "slow_excess2": ("calibration", "slow", "excess_square"),
    "novel": ("novel",), "hot_since": ("hot_since",), "cold_since": ("cold_since",),
}
CHANNEL_PATHS = {
    "short_level": ("short", "level"), "short_trend": ("short", "trend"), "short_scale": ("short", "scale"),
    "short_seen": ("short", "seen"), "long_level": ("long", "level"), "long_scale": ("long", "scale"),
    "long_seen": ("long", "seen"), "seasonal_scale": ("seasonal", "scale"), "seasonal_seen": ("seasonal", "seen"),
    "last_value": ("last_value",), "resolution": ("resolution",),
}
COUNTS = {"seen", "calibrated", "short_seen", "long_seen", "seasonal_seen"}
FLAGS = {"novel"}


def _get(d, path):
    for p in path:
        d = d[p]
    return d


def _put(d, path, value):
    for p in path[:-1]:
        d = d[p]
    d[path[-1]] = value


def _plain(name, value):
    value = float(value)
    if name in FLAGS:
        return value != 0.0
    if name in COUNTS:
        return value
    return None if math.isnan(value) else value


def _check_layout():
    """The kernel's field lists are the ones this module maps (a new kernel field must be mapped here)."""
    from kernels.series import BIN_FIELDS, CHANNEL_FIELDS, SLOT_FIELDS
    for fields, paths in ((SLOT_FIELDS, SLOT_PATHS), (CHANNEL_FIELDS, CHANNEL_PATHS), (BIN_FIELDS, {"level", "first"})):
        if set(fields) != set(paths):
            unmapped = sorted(set(fields) ^ set(paths))
            raise ValueError(f"kernel fields {unmapped} are not mapped by tests/naive_series.py")
    return SLOT_FIELDS, CHANNEL_FIELDS, BIN_FIELDS


def from_kernel_state(slot_state, channel_state, bin_state, k: int) -> list[dict]:
    """The kernel's state tuples (``kernels.series`` field order) as a list of slot dicts."""
    SLOT_FIELDS, CHANNEL_FIELDS, BIN_FIELDS = _check_layout()
    slot_cols = dict(zip(SLOT_FIELDS, slot_state))
    channel_cols = dict(zip(CHANNEL_FIELDS, channel_state))
    bin_cols = dict(zip(BIN_FIELDS, bin_state))
    slots = []
    for s in range(len(slot_cols["last_ts"])):
        slot = new_slot(k)
        for name, path in SLOT_PATHS.items():
            _put(slot, path, _plain(name, slot_cols[name][s]))
        for c, channel in enumerate(slot["channels"]):
            j = s * k + c
            for name, path in CHANNEL_PATHS.items():
                _put(channel, path, _plain(name, channel_cols[name][j]))
            for b in range(SERIES_BINS):
                row = (s * SERIES_BINS + b) * k + c
                level, first = float(bin_cols["level"][row]), float(bin_cols["first"][row])
                if math.isnan(level) != math.isnan(first):
                    raise ValueError(f"bin {b} of slot {s} channel {c}: level and first must be known together")
                if not math.isnan(first):
                    channel["seasonal"]["bins"][b] = {"level": level, "first": first}
        slots.append(slot)
    return slots


def to_kernel_state(slots: list[dict], k: int):
    """The kernel's state tuples (float64 arrays in ``kernels.series`` field order) of a list of slot dicts."""
    import numpy as np

    SLOT_FIELDS, CHANNEL_FIELDS, BIN_FIELDS = _check_layout()

    def value(x):
        return np.nan if x is None else float(x)

    m = len(slots)
    slot_cols = {n: np.full(m, np.nan) for n in SLOT_FIELDS}
    channel_cols = {n: np.full(m * k, np.nan) for n in CHANNEL_FIELDS}
    bin_cols = {n: np.full(m * SERIES_BINS * k, np.nan) for n in BIN_FIELDS}
    for s, slot in enumerate(slots):
        for name, path in SLOT_PATHS.items():
            slot_cols[name][s] = value(_get(slot, path))
        for c, channel in enumerate(slot["channels"]):
            for name, path in CHANNEL_PATHS.items():
                channel_cols[name][s * k + c] = value(_get(channel, path))
            for b, entry in channel["seasonal"]["bins"].items():
                row = (s * SERIES_BINS + b) * k + c
                bin_cols["level"][row], bin_cols["first"][row] = entry["level"], entry["first"]
    return (tuple(slot_cols[n] for n in SLOT_FIELDS), tuple(channel_cols[n] for n in CHANNEL_FIELDS),
            tuple(bin_cols[n] for n in BIN_FIELDS))


# --- comparing states ---------------------------------------------------------------------------------------

def state_differences(a, b, rel=1e-9, abs_=1e-9, path="state") -> list[str]:
    """Where two states (of this module's form) differ beyond the tolerance; [] when they agree."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))} differ"]
        return [d for key in a for d in state_differences(a[key], b[key], rel, abs_, f"{path}[{key!r}]")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} and {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in state_differences(x, y, rel, abs_, f"{path}[{i}]")]
    if a is None or b is None:
        return [] if a is None and b is None else [f"{path}: {a} != {b}"]
    if a == b or math.isclose(a, b, rel_tol=rel, abs_tol=abs_):
        return []
    return [f"{path}: {a} != {b}"]
