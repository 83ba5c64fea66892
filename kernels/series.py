"""The anomaly likelihood of sensor series: the one scorer behind every score the project gives.

``traffic.anomaly_score`` (three channels per traffic detector), ``glasscity replay`` of a
plain ``timestamp,value`` series (one channel) and the benchmarks (SKAB: eight channels)
all call :func:`score_series`; episodes come from :func:`sweep_series_episodes` (the
worker, at its sweeps) or from :func:`score_series_episodes` (a backtest, after every
reading) — both through the same rule, ``_episode_code``.

How a reading is scored (per series ``slot``; channels share the verdict):

1. **Predict** each channel three ways: a *short* view that follows the series (Holt's
   level and trend, exponentially weighted over ``SERIES_SHORT_INTERVALS`` intervals, at
   most ``SERIES_SHORT_MEMORY_S``), a *long* level that is its usual value (learnt over
   ``SERIES_LONG_READINGS`` calm readings), and a *seasonal* level for this time of day and
   weekday type (30-minute bins, interpolated between bin centres), used once its bin was
   first learnt ``baseline_age`` s earlier and only for series reporting at least hourly.
   The *usual* value is the long or the seasonal level, whichever has the smaller learnt
   noise scale (a mean absolute residual); the *best* prediction is the usual value or the
   short view, likewise. A random walk is best predicted by its short view, a stationary
   signal by its long level, a daily rhythm by its bins: the data decide, nothing is tuned
   per series. The learnt reporting interval (a log-domain average of the steps) sets the
   short view's memory, how far a gap is extrapolated, and the episode rule's durations.
2. **Deviations** of the worst channel, in its noise scales (never below the channel's
   ``floor``, 1e-9 of its level, nor ``SERIES_RESOLUTION_FRACTION`` of its learnt resolution, the
   running median of the non-zero steps between its values: a quantised sensor that mostly repeats
   one value is not taken as noiseless), compressed as ``log(1 + a)`` so heavy tails and counts
   do not dominate: the *fast* horizon is this reading's distance from the best
   prediction; the *slow* horizon an exponentially weighted mean over
   ``SERIES_SMOOTH_READINGS`` readings of the distance from the usual value (from the
   short view where the usual value predicts more than ``SERIES_USUAL_TOLERANCE`` times
   worse), so a lasting shift is seen although no single reading is remarkable.
3. **Calibrate**: for each horizon the series' own distribution of the statistic is learnt
   from its readings (mean, variance, and peaks over mean + sd: how often, and a
   generalised Pareto tail fitted by the mean and mean square of the excesses). The tail probability ``p`` of the more surprising
   horizon (doubled for the two looks) is how unusual the recent behaviour is; the score
   is ``min(1, -log10(p) / SERIES_SCORE_DECADES)``: 0.5 means "as unusual as one reading in
   a thousand", 1.0 "one in a million or rarer". The views warm up over
   ``SERIES_WARMUP_READINGS`` readings, then the calibration over
   ``SERIES_CALIBRATION_WARMUP``; until then the series scores 0.
4. **Learn** robustly: residuals clipped at ``clip`` scales; the long level, the noise
   scales and the calibration learn only from usual readings (score below
   ``alert_score`` outside a run of high scores, and the slot not ``quarantined``), so an
   anomaly does not teach what is usual; the first high reading of a run teaches the
   calibration too, held to 3 tail scales above its threshold, so what recurs often becomes
   usual. Exceptions, each so that nothing is stuck: the views' warm-up and a noise scale of
   exactly 0 learn from any reading; a seasonal bin's level learns from every reading,
   clipped (an unusual one moves it by at most ``bin_rate * clip`` scales a day, so an
   event caught in a bin's first draft wears off in days);
   and a *novel* reading teaches the views whatever it scored and raises no episode: one in
   a new series' first day (``SERIES_ALERT_AFTER_READINGS`` readings or
   ``SERIES_ALERT_AFTER_S``), or at a time of day and weekday type not seen yet by a channel
   whose daily rhythm is known (a weekday-started series' first Saturday). A run of high
   scores that has lasted ``SERIES_ADAPT_READINGS`` learnt intervals and at least
   ``SERIES_ADAPT_MIN_S`` is a lasting change: every channel's usual value (long level and
   seasonal profile) moves by how far its short view now is from it, noise and calibration
   are learnt afresh, and the new behaviour becomes the new normal.
5. **Runs**: ``hot_since`` (start of the current run of scores >= ``alert_score``, kept
   while scores stay >= ``calm_score``) and ``cold_since`` (start of the current run
   below ``calm_score``); a reading with nothing scored (every channel missing) changes
   neither. An episode opens once a run has lasted ``min_intervals``
   learnt intervals and closes after ``calm_intervals`` intervals of calm.

State is fixed-size: ``SLOT_FIELDS`` per slot, ``CHANNEL_FIELDS`` per (slot, channel) at
row ``slot * k + c``, ``BIN_FIELDS`` per (slot, bin, channel) at row
``(slot * SERIES_BINS + bin) * k + c``. Times are epoch seconds (float64, UTC); NaN in a
time means "never".
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from kernels._checks import _check, _check_writable, _out, _scalar_times
from kernels.config import (
    CLEARED, EPOCH_WEEKDAY, NJIT, NO_CHANGE, RAISED, SERIES_ADAPT_MIN_S, SERIES_ADAPT_READINGS, SERIES_ALERT_AFTER_READINGS, SERIES_ALERT_AFTER_S, SERIES_BIN_S,
    SERIES_BINS, SERIES_BINS_PER_DAY, SERIES_CALIBRATION_WARMUP, SERIES_CALIBRATION_READINGS, SERIES_INTERVAL_READINGS,
    SERIES_LONG_READINGS, SERIES_MAX_DEVIATION, SERIES_MAX_GAP_INTERVALS, SERIES_RELATIVE_FLOOR, SERIES_RESOLUTION_FRACTION, SERIES_RESOLUTION_RATE, SERIES_SCALE_READINGS, SERIES_SCORE_DECADES, SERIES_SEASONAL_MAX_INTERVAL_S,
    SERIES_WINSOR_EXCESS, SERIES_TAIL_PRIOR, SERIES_TAIL_PRIOR_EXCEEDANCES, SERIES_TAIL_SHAPE_MAX, SERIES_TAIL_SHAPE_MIN, SERIES_TREND_GAIN, SERIES_USUAL_TOLERANCE,
    SERIES_SHORT_INTERVALS, SERIES_SHORT_MEMORY_S, SERIES_SMOOTH_READINGS, SERIES_WARMUP_READINGS,
)

__all__ = ["SLOT_FIELDS", "CHANNEL_FIELDS", "BIN_FIELDS", "new_series_state", "series_bin", "score_series",
           "sweep_series_episodes", "score_series_episodes", "warm_up_series"]

#: Per slot: first and newest reading (s), learnt interval (s), readings seen, slow-horizon statistic, calibration
#: (per horizon: mean, variance, exceedance frequency, excess mean and mean square; readings counted),
#: whether the newest reading was novel (1) or familiar (0), run starts (s).
SLOT_FIELDS = ("first_ts", "last_ts", "interval", "seen", "smooth", "fast_mean", "fast_var", "fast_tail", "fast_excess",
               "fast_excess2", "slow_mean", "slow_var", "slow_tail", "slow_excess", "slow_excess2", "calibrated",
               "novel", "hot_since", "cold_since")
#: Per (slot, channel): each view's level (the short one with a trend, per s) and noise scale, with the count of
#: residuals it learnt from; the newest value and the measurement resolution learnt from the steps between values.
CHANNEL_FIELDS = ("short_level", "short_trend", "short_scale", "short_seen", "long_level", "long_scale", "long_seen",
                  "seasonal_scale", "seasonal_seen", "last_value", "resolution")
#: Per (slot, bin, channel): the seasonal level and when the bin was first learnt (s).
BIN_FIELDS = ("level", "first")

(FIRST_TS, LAST_TS, INTERVAL, SEEN, SMOOTH, FAST_MEAN, FAST_VAR, FAST_TAIL, FAST_EXCESS, FAST_EXCESS2, SLOW_MEAN,
 SLOW_VAR, SLOW_TAIL, SLOW_EXCESS, SLOW_EXCESS2, CALIBRATED, NOVEL, HOT_SINCE, COLD_SINCE) = range(len(SLOT_FIELDS))
(SHORT_LEVEL, SHORT_TREND, SHORT_SCALE, SHORT_SEEN, LONG_LEVEL, LONG_SCALE, LONG_SEEN, SEASONAL_SCALE,
 SEASONAL_SEEN, LAST_VALUE, RESOLUTION) = range(len(CHANNEL_FIELDS))
BIN_LEVEL, BIN_FIRST = range(len(BIN_FIELDS))

#: Fill of a fresh row of each field: counts start at 0, everything else unknown.
_ZERO_FILLED = {"seen", "calibrated", "novel", "short_seen", "long_seen", "seasonal_seen"}


def field_fill(name: str) -> float:
    """Initial value of a state field: 0.0 for counts, NaN otherwise."""
    return 0.0 if name in _ZERO_FILLED else np.nan


def new_series_state(slots: int, channels: int) -> tuple[tuple, tuple, tuple]:
    """Fresh state for ``slots`` series of ``channels`` channels: (slot, channel, bin) tuples of arrays."""
    def arrays(names, rows):
        return tuple(np.full(rows, field_fill(n), dtype=np.float64) for n in names)
    return (arrays(SLOT_FIELDS, slots), arrays(CHANNEL_FIELDS, slots * channels),
            arrays(BIN_FIELDS, slots * SERIES_BINS * channels))


@njit(**NJIT)
def _series_bin(t):
    day = math.floor(t / 86400.0)
    weekend = 1 if (day + EPOCH_WEEKDAY) % 7 >= 5 else 0
    tod = int((t - day * 86400.0) // SERIES_BIN_S)
    if tod >= SERIES_BINS_PER_DAY:
        tod = SERIES_BINS_PER_DAY - 1
    return weekend * SERIES_BINS_PER_DAY + tod


def series_bin(t: float) -> int:
    """Seasonal bin of time ``t`` (s, UTC): ``weekend * SERIES_BINS_PER_DAY + 30-minute bin of the day``."""
    return int(_series_bin(float(t)))


@njit(**NJIT)
def _noise_floor(floors, c, channel_state, j):
    """The smallest noise scale of channel ``c`` (row ``j``): its own floor, 1e-9 of its long level,
    SERIES_RESOLUTION_FRACTION of its learnt resolution, never 0."""
    resolution = channel_state[RESOLUTION][j]
    quantum = 0.0 if np.isnan(resolution) else SERIES_RESOLUTION_FRACTION * resolution
    return max(floors[c], SERIES_RELATIVE_FLOOR * abs(channel_state[LONG_LEVEL][j]), quantum, 1e-300)


@njit(**NJIT)
def _learn_resolution(channel_state, j, x):
    """The channel's newest value becomes ``x``; the step from the previous one teaches the resolution, the
    running median of the non-zero steps (steps within 1e-9 of the values are no step: floating-point
    rounding, not the sensor). Learnt from every reading, anomalous or not: it is the sensor's, not the
    series' behaviour."""
    previous = channel_state[LAST_VALUE][j]
    channel_state[LAST_VALUE][j] = x
    if np.isnan(previous):
        return
    d = abs(x - previous)
    if d <= SERIES_RELATIVE_FLOOR * max(abs(x), abs(previous)):
        return
    resolution = channel_state[RESOLUTION][j]
    if np.isnan(resolution):
        channel_state[RESOLUTION][j] = d
    else:
        # the running median of the non-zero steps, in the log domain (a step of SERIES_RESOLUTION_RATE up or down)
        channel_state[RESOLUTION][j] = resolution * math.exp(SERIES_RESOLUTION_RATE if d > resolution
                                                             else -SERIES_RESOLUTION_RATE)


@njit(**NJIT)
def _clip(r, bound):
    return min(max(r, -bound), bound)


@njit(**NJIT)
def _tail_model(slot_state, s, h):
    """(threshold, exceedance frequency, GPD scale, GPD shape) of horizon ``h`` (0 fast, 1 slow): the
    exceedances over mean + sd follow a generalised Pareto distribution whose scale and shape are
    the method-of-moments fit of their mean and mean square (shape held to SERIES_TAIL_SHAPE_MIN..MAX);
    the Gaussian-noise prior before anything was calibrated."""
    base = FAST_MEAN if h == 0 else SLOW_MEAN
    if slot_state[CALIBRATED][s] == 0:
        prior = SERIES_TAIL_PRIOR[h]
        threshold, tail, m1, m2 = prior[0] + prior[1], prior[2], prior[3], prior[4]
    else:
        threshold = slot_state[base][s] + math.sqrt(slot_state[base + 1][s])
        tail, m1, m2 = slot_state[base + 2][s], slot_state[base + 3][s], slot_state[base + 4][s]
    m1 = max(m1, 1e-9)
    var = max(m2 - m1 * m1, 1e-18)
    shape = min(max(0.5 * (1.0 - m1 * m1 / var), SERIES_TAIL_SHAPE_MIN), SERIES_TAIL_SHAPE_MAX)
    return threshold, max(tail, 1e-6), m1 * (1.0 - shape), shape


@njit(**NJIT)
def _tail_probability(value, threshold, tail, scale, shape):
    """Peaks over threshold: P(statistic >= value) under the fitted tail (1 at or below the threshold;
    on u = log(1 + a), a shape near 0 is a power-law tail of the deviation, below 0 a lighter one)."""
    if value <= threshold:
        return 1.0
    x = (value - threshold) / scale
    if abs(shape) < 1e-9:
        return tail * math.exp(-x)
    base = 1.0 + shape * x
    if base <= 0.0:
        return 0.0   # beyond the end of a bounded tail
    return tail * base ** (-1.0 / shape)


@njit(**NJIT)
def _learn_tail(slot_state, s, h, value, weight):
    base = FAST_MEAN if h == 0 else SLOW_MEAN
    seen = slot_state[CALIBRATED][s]
    if seen == 0:
        prior = SERIES_TAIL_PRIOR[h]
        slot_state[base][s] = value
        slot_state[base + 1][s] = prior[1] * prior[1]
        slot_state[base + 2][s] = prior[2]
        slot_state[base + 3][s] = prior[3]
        slot_state[base + 4][s] = prior[4]
        return
    threshold = slot_state[base][s] + math.sqrt(slot_state[base + 1][s])
    d = value - slot_state[base][s]
    slot_state[base][s] += weight * d
    slot_state[base + 1][s] = (1.0 - weight) * (slot_state[base + 1][s] + weight * d * d)
    above = value > threshold
    slot_state[base + 2][s] += weight * ((1.0 if above else 0.0) - slot_state[base + 2][s])
    if above:
        # the excess moments average the exceedances within the calibration's memory, after as many
        # pseudo-exceedances of the Gaussian prior: a tail fitted from three values is not trusted alone
        exceedances = slot_state[base + 2][s] * min(seen, SERIES_CALIBRATION_READINGS)
        w = min(1.0, 1.0 / (exceedances + SERIES_TAIL_PRIOR_EXCEEDANCES))
        x = value - threshold
        slot_state[base + 3][s] += w * (x - slot_state[base + 3][s])
        slot_state[base + 4][s] += w * (x * x - slot_state[base + 4][s])


@njit(**NJIT)
def _bin_neighbours(t):
    """The two bins whose centres bracket ``t`` (same weekday type, wrapping at midnight) and the
    weight of the second: the seasonal level is interpolated between bin centres, so a ramp is
    predicted as a ramp, not as a staircase of 30-minute steps."""
    home = _series_bin(t)
    day_type = home // SERIES_BINS_PER_DAY
    day = math.floor(t / 86400.0)
    position = (t - day * 86400.0) / SERIES_BIN_S - 0.5
    lower = math.floor(position)
    f = position - lower
    lo = int(lower) % SERIES_BINS_PER_DAY
    hi = (lo + 1) % SERIES_BINS_PER_DAY
    return day_type * SERIES_BINS_PER_DAY + lo, day_type * SERIES_BINS_PER_DAY + hi, f


@njit(**NJIT)
def _seasonal_prediction(bin_state, s, k, c, lo, hi, f, home):
    base = s * SERIES_BINS * k + c
    a = bin_state[BIN_LEVEL][base + lo * k]
    b = bin_state[BIN_LEVEL][base + hi * k]
    if np.isnan(a) or np.isnan(b):
        return bin_state[BIN_LEVEL][base + home * k]
    return (1.0 - f) * a + f * b


@njit(**NJIT)
def _usual_view(channel_state, bin_state, s, k, c, t, floor, baseline_age, seasonal_allowed, home, lo, hi, f):
    """(prediction, noise scale, bin usable) of channel ``c``'s usual value: its long level, or its
    seasonal level at ``t`` where that bin is usable and the seasonal view has predicted better."""
    j = s * k + c
    prediction, scale = channel_state[LONG_LEVEL][j], max(channel_state[LONG_SCALE][j], floor)
    b = (s * SERIES_BINS + home) * k + c
    usable = seasonal_allowed and not np.isnan(bin_state[BIN_FIRST][b]) and t - bin_state[BIN_FIRST][b] >= baseline_age
    if usable and channel_state[SEASONAL_SEEN][j] >= SERIES_WARMUP_READINGS:
        seasonal_scale = max(channel_state[SEASONAL_SCALE][j], floor)
        if seasonal_scale < scale:
            prediction, scale = _seasonal_prediction(bin_state, s, k, c, lo, hi, f, home), seasonal_scale
    return prediction, scale, usable


@njit(**NJIT)
def _short_prediction(channel_state, j, step, interval):
    """The short view's prediction ``step`` s after its last update: level + trend * step, the step
    counted as at most SERIES_MAX_GAP_INTERVALS intervals (a gap is not extrapolated far)."""
    level = channel_state[SHORT_LEVEL][j]
    trend = channel_state[SHORT_TREND][j]
    if np.isnan(step) or np.isnan(trend) or np.isnan(interval):
        return level
    return level + trend * min(step, SERIES_MAX_GAP_INTERVALS * interval)


@njit(**NJIT)
def _score_one(s, t, i, values, floors, alert_score, calm_score, clip, bin_rate, baseline_age, quarantined,
               slot_state, channel_state, bin_state):
    """Score reading ``i`` (time ``t``) of slot ``s`` and learn from it; returns the score."""
    k = values.shape[1]
    last = slot_state[LAST_TS][s]
    # -- the cadence: log-domain average of the steps, a single long gap moves it little
    interval = slot_state[INTERVAL][s]
    if not np.isnan(last):
        step = t - last
        if np.isnan(interval):
            interval = step
        else:
            weight = max(1.0 / (slot_state[SEEN][s] + 1.0), 1.0 / SERIES_INTERVAL_READINGS)
            clipped = min(max(step, 0.25 * interval), 4.0 * interval)
            interval = math.exp(math.log(interval) + weight * (math.log(clipped) - math.log(interval)))
        slot_state[INTERVAL][s] = interval
    else:
        step = np.nan
    slot_state[LAST_TS][s] = t
    if np.isnan(slot_state[FIRST_TS][s]):
        slot_state[FIRST_TS][s] = t
    slot_state[SEEN][s] += 1.0
    home = _series_bin(t)
    row0 = (s * SERIES_BINS + home) * k
    lo, hi, f = _bin_neighbours(t)
    seasonal_allowed = not np.isnan(interval) and interval <= SERIES_SEASONAL_MAX_INTERVAL_S
    hot = not np.isnan(slot_state[HOT_SINCE][s])
    # 1-2. predict and measure the deviation of the worst channel
    a = 0.0
    a_usual = 0.0
    scored = False
    unfamiliar = False
    for c in range(k):
        x = values[i, c]
        if not np.isfinite(x):   # NaN or infinite: absent, teaches nothing
            continue
        j = s * k + c
        level = channel_state[LONG_LEVEL][j]
        if np.isnan(level) or channel_state[SHORT_SEEN][j] < SERIES_WARMUP_READINGS:
            continue
        floor = _noise_floor(floors, c, channel_state, j)
        # the usual value: the long level, or this hour's bin where it predicts better
        prediction, usual, usable = _usual_view(channel_state, bin_state, s, k, c, t, floor, baseline_age,
                                                seasonal_allowed, home, lo, hi, f)
        usual_r = x - prediction
        if seasonal_allowed and not usable and (channel_state[SEASONAL_SEEN][j] >= SERIES_WARMUP_READINGS
                                                and channel_state[SEASONAL_SCALE][j] < channel_state[LONG_SCALE][j]):
            # a daily rhythm is known, but not yet at this time of day and weekday type (a weekday-started
            # series' first Saturday): what it does here is new, not anomalous
            unfamiliar = True
        if (seasonal_allowed and t - slot_state[FIRST_TS][s] >= SERIES_ALERT_AFTER_S
                and channel_state[SEASONAL_SEEN][j] < SERIES_WARMUP_READINGS):
            # a day old, yet no seasonal bin usable (a Sunday-started series' first Monday: its Sunday bins
            # come round again only on Saturday): whether it has a daily rhythm is not known yet
            unfamiliar = True
        # the best prediction: the usual value or the short view, whichever has predicted better
        short_r, short = x - _short_prediction(channel_state, j, step, interval), max(channel_state[SHORT_SCALE][j], floor)
        r, best = (usual_r, usual) if usual <= short else (short_r, short)
        scored = True
        a = max(a, min(abs(r) / best, SERIES_MAX_DEVIATION))
        # the slow horizon asks whether the series has left its usual value, where that value predicts
        # it nearly as well as the short view (a stationary signal, a known daily rhythm); a series its
        # usual value does not describe (a random walk, a first day's rhythm) is judged by the short view
        if usual > SERIES_USUAL_TOLERANCE * short:
            usual_r, usual = short_r, short
        a_usual = max(a_usual, min(abs(usual_r) / usual, SERIES_MAX_DEVIATION))
    score = 0.0
    u = math.log1p(a)
    if scored:
        smooth = slot_state[SMOOTH][s]
        v = math.log1p(a_usual)
        smooth = v if np.isnan(smooth) else smooth + (v - smooth) / SERIES_SMOOTH_READINGS
        slot_state[SMOOTH][s] = smooth
        # 3. calibrate both horizons against the series' own distribution of them
        fast_threshold, fast_tail, fast_scale, fast_shape = _tail_model(slot_state, s, 0)
        slow_threshold, slow_tail, slow_scale, slow_shape = _tail_model(slot_state, s, 1)
        p = min(1.0, 2.0 * min(_tail_probability(u, fast_threshold, fast_tail, fast_scale, fast_shape),
                               _tail_probability(smooth, slow_threshold, slow_tail, slow_scale, slow_shape)))
        score = min(1.0, -math.log10(max(p, 1e-300)) / SERIES_SCORE_DECADES) if p < 1.0 else 0.0
        if slot_state[CALIBRATED][s] < SERIES_CALIBRATION_WARMUP:
            score = 0.0   # the calibration's own warm-up: it learns the distribution, it does not judge yet
    # 4. learn
    # until the series has a history, and where its known daily rhythm has not been seen yet, everything
    # it does is its normal (it raises nothing there)
    known = slot_state[SEEN][s] > SERIES_ALERT_AFTER_READINGS or t - slot_state[FIRST_TS][s] >= SERIES_ALERT_AFTER_S
    known = known and not unfamiliar
    slot_state[NOVEL][s] = 0.0 if known else 1.0
    usual = score < alert_score and not hot and np.isnan(quarantined[s])
    calm = usual or (not known and np.isnan(quarantined[s]))
    adapt = False
    if hot and not np.isnan(interval):
        lasted = t - slot_state[HOT_SINCE][s]
        adapt = lasted >= max(SERIES_ADAPT_READINGS * interval, SERIES_ADAPT_MIN_S)
    # the first high reading of a run teaches the calibration too, held to its edge: what recurs often
    # enough (more than about one reading in ten) widens the distribution until it is usual; a rare
    # spike or a long anomaly (whose later readings do not teach) barely moves it
    opens_run = score >= alert_score and not hot and known and np.isnan(quarantined[s])
    if scored and (usual or opens_run):
        seen = slot_state[CALIBRATED][s]
        weight = max(1.0 / (seen + 1.0), 1.0 / SERIES_CALIBRATION_READINGS)
        fast, slow = u, slot_state[SMOOTH][s]
        if not usual:
            fast = min(fast, fast_threshold + SERIES_WINSOR_EXCESS * fast_scale)
            slow = min(slow, slow_threshold + SERIES_WINSOR_EXCESS * slow_scale)
        _learn_tail(slot_state, s, 0, fast, weight)
        _learn_tail(slot_state, s, 1, slow, weight)
        slot_state[CALIBRATED][s] = seen + 1.0
    if np.isnan(step):
        rate = 1.0
    else:
        tau = min(SERIES_SHORT_INTERVALS * interval, SERIES_SHORT_MEMORY_S)
        rate = 1.0 - math.exp(-min(step, SERIES_MAX_GAP_INTERVALS * interval) / tau) if tau > 0 else 1.0
    if adapt:
        # a lasting change: the usual value (and the daily profile with it) moves to where the series now
        # is, every channel by its own shift; noise and calibration are learnt afresh (a warm-up again)
        for c in range(k):
            j = s * k + c
            if np.isnan(channel_state[SHORT_LEVEL][j]) or np.isnan(channel_state[LONG_LEVEL][j]):
                continue
            floor = _noise_floor(floors, c, channel_state, j)
            prediction, _scale, _usable = _usual_view(channel_state, bin_state, s, k, c, t, floor, baseline_age,
                                                      seasonal_allowed, home, lo, hi, f)
            shift = _short_prediction(channel_state, j, step, interval) - prediction
            channel_state[LONG_LEVEL][j] += shift
            first_bin = s * SERIES_BINS * k + c
            for q in range(SERIES_BINS):
                at = first_bin + q * k
                if not np.isnan(bin_state[BIN_LEVEL][at]):
                    bin_state[BIN_LEVEL][at] += shift
            channel_state[SHORT_TREND][j] = 0.0
            channel_state[SHORT_SEEN][j] = 0.0
            channel_state[LONG_SEEN][j] = 0.0
            channel_state[SEASONAL_SEEN][j] = 0.0
    for c in range(k):
        x = values[i, c]
        if not np.isfinite(x):   # NaN or infinite: absent, teaches nothing
            continue
        j = s * k + c
        b = row0 + c
        if np.isnan(channel_state[SHORT_LEVEL][j]):
            channel_state[SHORT_LEVEL][j] = x
            channel_state[LONG_LEVEL][j] = x
            channel_state[SHORT_SCALE][j] = 0.0
            channel_state[LONG_SCALE][j] = 0.0
            channel_state[LAST_VALUE][j] = x
            continue
        floor = _noise_floor(floors, c, channel_state, j)
        _learn_resolution(channel_state, j, x)   # from every reading; this one is learnt with the resolution before it
        # the short level follows every reading, its residuals clipped
        short_scale = max(channel_state[SHORT_SCALE][j], floor)
        predicted = _short_prediction(channel_state, j, step, interval)
        r = x - predicted
        # (a zero scale learns from any reading: a series that was constant so far is not exempt forever)
        if calm or channel_state[SHORT_SEEN][j] < SERIES_WARMUP_READINGS or channel_state[SHORT_SCALE][j] == 0.0:
            n = channel_state[SHORT_SEEN][j] + 1.0
            channel_state[SHORT_SEEN][j] = n
            w = max(1.0 / n, 1.0 / SERIES_SCALE_READINGS)
            bound = clip * short_scale if n > SERIES_WARMUP_READINGS else math.inf
            channel_state[SHORT_SCALE][j] += w * (min(abs(r), bound) - channel_state[SHORT_SCALE][j])
        # Holt's linear trend, error-correction form: a ramp is predicted, not lagged behind
        correction = _clip(r, clip * short_scale)
        channel_state[SHORT_LEVEL][j] = predicted + rate * correction
        if not np.isnan(step) and step > 0:
            trend = channel_state[SHORT_TREND][j]
            trend = 0.0 if np.isnan(trend) else trend
            channel_state[SHORT_TREND][j] = trend + rate * SERIES_TREND_GAIN * correction / min(
                step, SERIES_MAX_GAP_INTERVALS * interval)
        if adapt:
            continue   # moved above; this reading teaches the new normal's warm-up only through the short view
        # the long level and its noise scale: calm readings only (and the warm-up)
        if calm or channel_state[LONG_SEEN][j] < SERIES_WARMUP_READINGS or channel_state[LONG_SCALE][j] == 0.0:
            long_scale = max(channel_state[LONG_SCALE][j], floor)
            r = x - channel_state[LONG_LEVEL][j]
            n = channel_state[LONG_SEEN][j] + 1.0
            channel_state[LONG_SEEN][j] = n
            bound = clip * long_scale if n > SERIES_WARMUP_READINGS else math.inf
            w = max(1.0 / n, 1.0 / SERIES_LONG_READINGS)
            channel_state[LONG_LEVEL][j] += w * _clip(r, bound)
            w = max(1.0 / n, 1.0 / SERIES_SCALE_READINGS)
            channel_state[LONG_SCALE][j] += w * (min(abs(r), bound) - channel_state[LONG_SCALE][j])
        if not seasonal_allowed:
            continue
        if not np.isnan(quarantined[s]):
            # a disturbance explained elsewhere (a fault, a queue) teaches no bin; a bin whose first draft
            # was taken since it began (its first reading came before the sweep that saw it) is discarded
            if bin_state[BIN_FIRST][b] >= quarantined[s] - SERIES_BIN_S:
                bin_state[BIN_FIRST][b] = np.nan
                bin_state[BIN_LEVEL][b] = np.nan
            continue
        # the bins: from every reading (not quarantined), residuals clipped. Until a bin is usable that is
        # the profile's first draft (a daily rhythm that looks anomalous before it is known must be
        # learnt); after, an unusual reading moves it by at most bin_rate * clip scales a day, so an event
        # caught in the first draft wears off within days instead of returning daily as an anomaly, and a
        # real anomaly of an hour does not make the next day's normal look unusual. The noise scale of
        # the seasonal view learns from calm readings only.
        if np.isnan(bin_state[BIN_FIRST][b]):
            bin_state[BIN_FIRST][b] = t
            bin_state[BIN_LEVEL][b] = x
            continue
        usable = t - bin_state[BIN_FIRST][b] >= baseline_age
        seasonal_scale = max(channel_state[SEASONAL_SCALE][j], floor)
        r = x - _seasonal_prediction(bin_state, s, k, c, lo, hi, f, home)
        if usable and (calm or channel_state[SEASONAL_SEEN][j] < SERIES_WARMUP_READINGS
                       or channel_state[SEASONAL_SCALE][j] == 0.0):
            n = channel_state[SEASONAL_SEEN][j] + 1.0
            channel_state[SEASONAL_SEEN][j] = n
            bound = clip * seasonal_scale if n > SERIES_WARMUP_READINGS else math.inf
            w = max(1.0 / n, 1.0 / SERIES_SCALE_READINGS)
            if np.isnan(channel_state[SEASONAL_SCALE][j]):
                channel_state[SEASONAL_SCALE][j] = abs(r)
            else:
                channel_state[SEASONAL_SCALE][j] += w * (min(abs(r), bound) - channel_state[SEASONAL_SCALE][j])
        # a bin gets about SERIES_BIN_S / interval readings a day: together they weigh bin_rate; on its
        # first day, the mean of its readings so far
        per_reading = 1.0 - (1.0 - bin_rate) ** (min(interval, SERIES_BIN_S) / SERIES_BIN_S)
        age = t - bin_state[BIN_FIRST][b]
        if age < SERIES_BIN_S:
            bin_state[BIN_LEVEL][b] += max(per_reading, 1.0 / (age / interval + 1.0)) * (x - bin_state[BIN_LEVEL][b])
        else:
            # the two bracketing bins learn the residual of their interpolation, by their weights
            step_r = per_reading * _clip(r, clip * seasonal_scale)
            base = s * SERIES_BINS * k + c
            if not np.isnan(bin_state[BIN_LEVEL][base + lo * k]) and not np.isnan(bin_state[BIN_LEVEL][base + hi * k]):
                bin_state[BIN_LEVEL][base + lo * k] += (1.0 - f) * step_r
                bin_state[BIN_LEVEL][base + hi * k] += f * step_r
            else:
                bin_state[BIN_LEVEL][b] += step_r
    if adapt:
        # the new normal: the calibration is learnt afresh too
        slot_state[SMOOTH][s] = np.nan
        slot_state[CALIBRATED][s] = 0.0
    # 5. runs, with hysteresis (a reading with nothing scored, every channel missing, changes no run)
    if not scored and not adapt:
        return score
    if adapt:
        slot_state[HOT_SINCE][s] = np.nan
        slot_state[COLD_SINCE][s] = t
    elif score >= alert_score:
        slot_state[COLD_SINCE][s] = np.nan
        if np.isnan(slot_state[HOT_SINCE][s]):
            slot_state[HOT_SINCE][s] = t
    elif score < calm_score:
        slot_state[HOT_SINCE][s] = np.nan
        if np.isnan(slot_state[COLD_SINCE][s]):
            slot_state[COLD_SINCE][s] = t
    else:
        slot_state[COLD_SINCE][s] = np.nan
    return score


@njit(**NJIT)
def _score_series(slot, ts, values, floors, alert_score, calm_score, clip, bin_rate, baseline_age, quarantined,
                  slot_state, channel_state, bin_state, scores):
    m = slot_state[LAST_TS].shape[0]
    for i in range(slot.shape[0]):
        scores[i] = 0.0
        s = slot[i]
        t = ts[i]
        if s < 0 or s >= m or not np.isfinite(t) or t <= slot_state[LAST_TS][s]:
            continue
        scores[i] = _score_one(s, t, i, values, floors, alert_score, calm_score, clip, bin_rate, baseline_age,
                               quarantined, slot_state, channel_state, bin_state)


@njit(**NJIT)
def _episode_code(now, novel, interval, min_intervals, calm_intervals, hot_since, cold_since, since, explained):
    """The one episode rule: RAISED once a run of high scores has lasted ``min_intervals`` learnt
    intervals (unless ``explained``, or the series' newest reading was ``novel``: in a new series' first
    day, SERIES_ALERT_AFTER_READINGS readings or SERIES_ALERT_AFTER_S, or at a time of day and weekday
    type its known daily rhythm has not been seen at yet), CLEARED once calm has lasted
    ``calm_intervals``; else NO_CHANGE."""
    if np.isnan(interval):
        return NO_CHANGE
    if np.isnan(since):
        if novel == 0.0 and not np.isnan(hot_since) and now - hot_since >= min_intervals * interval and not explained:
            return RAISED
    elif not np.isnan(cold_since) and now - cold_since >= calm_intervals * interval:
        return CLEARED
    return NO_CHANGE


@njit(**NJIT)
def _sweep_series_episodes(min_intervals, calm_intervals, last_ts, novel, interval, hot_since, cold_since,
                           explained, since, out):
    for s in range(last_ts.shape[0]):
        code = _episode_code(last_ts[s], novel[s], interval[s], min_intervals, calm_intervals, hot_since[s],
                             cold_since[s], since[s], explained[s])
        out[s] = code
        if code == RAISED:
            since[s] = hot_since[s]
        elif code == CLEARED:
            since[s] = np.nan


@njit(**NJIT)
def _score_series_episodes(ts, values, floors, alert_score, calm_score, clip, bin_rate, baseline_age,
                           min_intervals, calm_intervals, slot_state, channel_state, bin_state, since, scores,
                           codes, starts):
    quarantined = np.full(1, np.nan)
    for i in range(ts.shape[0]):
        scores[i] = 0.0
        codes[i] = NO_CHANGE
        starts[i] = np.nan
        t = ts[i]
        if not np.isfinite(t) or t <= slot_state[LAST_TS][0]:
            continue
        scores[i] = _score_one(0, t, i, values, floors, alert_score, calm_score, clip, bin_rate, baseline_age,
                               quarantined, slot_state, channel_state, bin_state)
        code = _episode_code(t, slot_state[NOVEL][0], slot_state[INTERVAL][0], min_intervals, calm_intervals,
                             slot_state[HOT_SINCE][0],
                             slot_state[COLD_SINCE][0], since[0], False)
        codes[i] = code
        if code == RAISED:
            since[0] = slot_state[HOT_SINCE][0]
            starts[i] = since[0]
        elif code == CLEARED:
            starts[i] = since[0]
            since[0] = np.nan


# --- public wrappers ---------------------------------------------------------------------------------

def _check_scores(alert_score, calm_score, clip, bin_rate, baseline_age):
    alert_score, calm_score, clip, bin_rate, baseline_age = _scalar_times(alert_score, calm_score, clip, bin_rate,
                                                                          baseline_age)
    if not 0 < calm_score <= alert_score <= 1:
        raise ValueError(f"need 0 < calm_score <= alert_score <= 1, got {calm_score} and {alert_score}")
    if not clip > 0 or not 0 < bin_rate <= 1 or baseline_age < 0:
        raise ValueError("clip must be > 0, bin_rate in (0, 1], baseline_age >= 0")
    return alert_score, calm_score, clip, bin_rate, baseline_age


def _check_values(values, n: int | None = None) -> int:
    if not isinstance(values, np.ndarray) or values.dtype != np.float64 or values.ndim != 2:
        raise TypeError("values must be a 2-D float64 array (readings x channels)")
    if not values.flags.c_contiguous:
        raise ValueError("values must be C-contiguous")
    if values.shape[1] == 0:
        raise ValueError("at least one channel is needed")
    if n is not None and values.shape[0] != n:
        raise ValueError(f"values must have {n} rows, got {values.shape[0]}")
    return values.shape[1]


def _check_floors(floors, k: int) -> np.ndarray:
    floors = np.ascontiguousarray(floors, dtype=np.float64)
    if floors.shape != (k,) or not np.all(floors >= 0):
        raise ValueError(f"floors must be {k} numbers >= 0 (one per channel)")
    return floors


def _check_state(slot_state, channel_state, bin_state, k: int) -> int:
    slot_state, channel_state, bin_state = tuple(slot_state), tuple(channel_state), tuple(bin_state)
    if (len(slot_state), len(channel_state), len(bin_state)) != (len(SLOT_FIELDS), len(CHANNEL_FIELDS),
                                                                 len(BIN_FIELDS)):
        raise ValueError(f"state needs {len(SLOT_FIELDS)} slot, {len(CHANNEL_FIELDS)} channel and "
                         f"{len(BIN_FIELDS)} bin arrays")
    m = slot_state[0].shape[0] if isinstance(slot_state[0], np.ndarray) else -1
    for name, arr in zip(SLOT_FIELDS, slot_state):   # one row per slot in every slot array: the kernels index them all by slot
        _check(name, arr, np.float64, m)
        _check_writable(name, arr)
    for names, group, rows in ((CHANNEL_FIELDS, channel_state, m * k), (BIN_FIELDS, bin_state, m * SERIES_BINS * k)):
        for name, arr in zip(names, group):
            _check(name, arr, np.float64)
            if arr.shape[0] < rows:
                raise ValueError(f"{name} needs at least {rows} rows, got {arr.shape[0]}")
            _check_writable(name, arr)
    return m


def score_series(slot, ts, values, floors, alert_score, calm_score, clip, bin_rate, baseline_age, quarantined,
                 slot_state, channel_state, bin_state, scores=None):
    """Anomaly likelihood score in [0, 1] of each time-sorted reading (see the module docstring).

    ``slot`` int32 per reading, ``ts`` (s) per reading, ``values`` float64 (readings x k
    channels, NaN = absent), ``floors`` per channel (smallest noise scale, channel units;
    0 = none beyond a relative 1e-9 of the level). Thresholds: ``alert_score`` /
    ``calm_score`` (score 0-1: a run of high scores starts at the first and ends below the
    second), ``clip`` (noise scales), ``bin_rate`` (weight per day of a seasonal bin),
    ``baseline_age`` (s). ``quarantined`` float64 per slot, read only (NaN = its readings may
    teach what is usual). State (updated in place): tuples of arrays in the order of
    ``SLOT_FIELDS`` / ``CHANNEL_FIELDS`` / ``BIN_FIELDS``, e.g. from :func:`new_series_state`.
    Readings not newer than their slot's newest score 0 and change nothing. Returns ``scores``.
    """
    alert_score, calm_score, clip, bin_rate, baseline_age = _check_scores(alert_score, calm_score, clip, bin_rate,
                                                                          baseline_age)
    _check("slot", slot, np.int32)
    n = slot.shape[0]
    _check("ts", ts, np.float64, n)
    k = _check_values(values, n)
    floors = _check_floors(floors, k)
    m = _check_state(slot_state, channel_state, bin_state, k)
    _check("quarantined", quarantined, np.float64)
    if quarantined.shape[0] < m:
        raise ValueError(f"quarantined needs {m} rows")
    if scores is None:
        scores = np.empty(n, dtype=np.float64)
    else:
        _check("scores", scores, np.float64, n)
    _score_series(slot, ts, values, floors, alert_score, calm_score, clip, bin_rate, baseline_age, quarantined,
                  tuple(slot_state), tuple(channel_state), tuple(bin_state), scores)
    return scores


def sweep_series_episodes(min_intervals, calm_intervals, slot_state, explained, since, out=None):
    """Open or close episodes from the runs kept by :func:`score_series`, at the worker's sweeps.

    Per slot, at its newest reading: RAISED (``since`` = run start) once a run of high scores
    has lasted ``min_intervals`` learnt intervals and ``explained`` (bool per slot: a cause
    another detector reports) is False; CLEARED once calm has lasted ``calm_intervals``.
    Returns int8 per slot.
    """
    min_intervals, calm_intervals = _scalar_times(min_intervals, calm_intervals)
    slot_state = tuple(slot_state)
    last_ts, interval = slot_state[LAST_TS], slot_state[INTERVAL]
    _check("last_ts", last_ts, np.float64)
    m = last_ts.shape[0]
    for name, arr in (("interval", interval), ("novel", slot_state[NOVEL]),
                      ("hot_since", slot_state[HOT_SINCE]),
                      ("cold_since", slot_state[COLD_SINCE]), ("since", since)):
        _check(name, arr, np.float64, m)
    _check("explained", explained, np.bool_, m)
    _check_writable("since", since)
    out = _out(out, m)
    _sweep_series_episodes(min_intervals, calm_intervals, last_ts, slot_state[NOVEL], interval,
                           slot_state[HOT_SINCE], slot_state[COLD_SINCE], explained, since, out)
    return out


def score_series_episodes(ts, values, floors, alert_score, calm_score, clip, bin_rate, baseline_age,
                          min_intervals, calm_intervals, state=None):
    """Score one time-sorted series (``values``: readings x channels) and apply the episode rule
    after every reading, as a worker sweeping after each reading would.

    Returns ``(scores, codes, starts, state)``: per reading the score, the episode code
    (RAISED / CLEARED / NO_CHANGE) and the episode's start (s, NaN without a code); ``state``
    (``(slot, channel, bin, since)``) continues a series across calls.
    """
    alert_score, calm_score, clip, bin_rate, baseline_age = _check_scores(alert_score, calm_score, clip, bin_rate,
                                                                          baseline_age)
    min_intervals, calm_intervals = _scalar_times(min_intervals, calm_intervals)
    _check("ts", ts, np.float64)
    n = ts.shape[0]
    k = _check_values(values, n)
    floors = _check_floors(floors, k)
    if state is None:
        state = (*new_series_state(1, k), np.full(1, np.nan))
    slot_state, channel_state, bin_state, since = state
    if _check_state(slot_state, channel_state, bin_state, k) < 1:
        raise ValueError("a backtest's state needs one series slot")
    _check("since", since, np.float64, 1)
    _check_writable("since", since)
    scores = np.empty(n, dtype=np.float64)
    codes = np.empty(n, dtype=np.int8)
    starts = np.empty(n, dtype=np.float64)
    _score_series_episodes(ts, values, floors, alert_score, calm_score, clip, bin_rate, baseline_age, min_intervals,
                           calm_intervals, tuple(slot_state), tuple(channel_state), tuple(bin_state), since, scores,
                           codes, starts)
    return scores, codes, starts, state


def warm_up_series() -> None:
    """Compile (or load from cache) the series kernels on tiny inputs (one and three channels)."""
    for k in (1, 3):
        slot_state, channel_state, bin_state = new_series_state(1, k)
        score_series(np.zeros(1, np.int32), np.zeros(1), np.zeros((1, k)), np.zeros(k), 0.9, 0.5, 3.0, 0.3, 1.0,
                     np.full(1, np.nan), slot_state, channel_state, bin_state)
        sweep_series_episodes(6.0, 3.0, slot_state, np.zeros(1, dtype=np.bool_), np.full(1, np.nan))
        score_series_episodes(np.zeros(1), np.zeros((1, k)), np.zeros(k), 0.9, 0.5, 3.0, 0.3, 1.0, 6.0, 3.0)
