"""Numba flags and the numeric constants the kernels share.

``NJIT`` is the one set of compile options every kernel uses: ``cache=True`` so a
worker or the demo does not pay seconds of compilation on each start (the cache
goes to ``NUMBA_CACHE_DIR`` when set, else beside the module), ``nogil`` so a
kernel does not hold the GIL while it runs.
"""

import numpy as np

__all__ = ["NJIT", "MIN_USE_M3", "READING_CODES", "TRANSITION_CODES",
           "APPLIED_USE", "APPLIED_FLAT", "APPLIED_NEW", "APPLIED_BACKWARDS", "SKIPPED_STALE", "SKIPPED_INVALID",
           "NO_CHANGE", "RAISED", "CLEARED", "REOPENED", "NOT_SET"]

NJIT = {"cache": True, "nogil": True, "fastmath": False}

#: Smallest rise of a cumulative index (m3) that counts as use: half a litre, below
#: the 1 L resolution of household meters, so rounding noise is never "use".
MIN_USE_M3 = 0.0005

#: Per-reading outcome codes written by ``apply_meter_readings``.
APPLIED_USE = 0        # index rose by at least MIN_USE_M3: water was used
APPLIED_FLAT = 1       # index unchanged: reported, no use
APPLIED_NEW = 2        # first reading of a meter: baseline set
APPLIED_BACKWARDS = 3  # index went down (meter swap, reverse flow): baseline reset, not use
SKIPPED_STALE = 4      # not newer than the meter's last reading (duplicate or out of order)
SKIPPED_INVALID = 5    # timestamp or index not finite, or slot out of range
READING_CODES = ("use", "flat", "new", "backwards", "stale", "invalid")

#: Per-subject transition codes written by the sweep kernels. A sweep over several ticks (an array of
#: event times, the single tick being the length-1 case) writes one code per subject for the whole run:
#: RAISED at the tick its ``raised_at`` names, CLEARED at the run's first tick, or REOPENED — cleared at
#: the first tick (a reading ended the episode), then raised again at ``raised_at``.
NO_CHANGE = 0
RAISED = 1
CLEARED = 2
REOPENED = 3
TRANSITION_CODES = ("none", "raised", "cleared", "reopened")

#: Marks "no value" in float64 state arrays (no episode open, never seen).
NOT_SET = np.nan

# --- reporting cadence (kernels.cadence): the absence detectors' learnt silence limits -------------

#: Per-reading outcome written by ``learn_cadence`` (SKIPPED_STALE / SKIPPED_INVALID otherwise).
ARRIVAL_LEARNT = 0         # an interval between two readings was learnt
ARRIVAL_SAME_DELIVERY = 1  # within CADENCE_MERGE_S of the previous reading: the newest one, nothing learnt
ARRIVAL_FIRST = 2          # the subject's first reading: no interval yet

#: A subject's cadence (s) is a time-weighted mean of its intervals between readings: an interval of x s
#: weighs 1 - exp(-x / CADENCE_MEMORY_S), so the cadence is about the mean length of the interval an
#: instant of the last day fell in. A sensor reporting every 6 h has a cadence of 6 h; one that reports
#: hourly but now and then skips a few hours has a cadence above 1 h (its median interval would hide
#: the skips). A longer rhythm is followed within a few of its reports (a long interval weighs much:
#: hourly -> 6-hourly is learnt after three late reports), a shorter one within a day or two (the
#: gap to it shrinks by e per day).
CADENCE_MEMORY_S = 86400.0
#: An interval counts at most as this many cadences: a silence teaches only that the sensor may be
#: that late, never that silence is normal. An 8 h outage of an hourly meter moves its cadence by about
#: 0.24 h (1 h -> 1.24 h: three missed reports are then 3.7 h), so the next outage is seen too.
CADENCE_CLIP = 3.0
#: A cadence is used once this many intervals are learnt; a newer sensor is judged by its detector's
#: fixed floor alone (so a floor must suit the slowest regular sensor of its domain). The first
#: intervals are learnt as their shortest (an outage just after installation teaches nothing), the
#: later ones into the time-weighted mean. Four: a 6-hourly meter has its cadence within a day.
CADENCE_MIN_INTERVALS = 4
#: Readings less than this apart (s) are one delivery (a gateway's envelope, a retry): the later one is
#: the newest reading but no interval is learnt. No domain reports more often than every 5 minutes.
CADENCE_MERGE_S = 60.0
#: A subject's ``longest_gap`` (s) is the longest interval between its readings it recovered from lately:
#: each new interval x decays it by exp(-x / CADENCE_GAP_MEMORY_S) before taking the larger of the
#: two, so a gap is forgotten by e every 30 days of reporting. A sensor whose readings drop out for 9 h
#: now and then (a radio shadow, a head-end that misses polls) has a longest gap of about 9 h for
#: weeks afterwards; its detector waits ``gap_margin`` times that (up to its ceiling) before calling
#: a silence, so the same dropout is not an alert every time. A month: long enough to span a few of a
#: flaky sensor's dropouts, short enough that a repaired one is judged tightly again within a season.
CADENCE_GAP_MEMORY_S = 30.0 * 86400.0

# --- traffic -------------------------------------------------------------------------------------

#: Per-reading outcome written by ``apply_traffic_readings`` (SKIPPED_STALE / SKIPPED_INVALID otherwise).
READING_APPLIED = 0

#: 1970-01-01 was a Thursday: weekday (Monday = 0) of epoch day d is (d + 3) % 7.
EPOCH_WEEKDAY = 3

#: Variance-stabilising transforms of the anomaly score's channels: sqrt(intensity) (Poisson counts
#: then have a noise of about 0.5 whatever the flow), log(occupancy + 0.02) and log(speed + 5 km/h)
#: (relative changes; the offsets keep a quiet night's near-zero values from looking like huge ratios).
OCCUPANCY_LOG_OFFSET = 0.02
SPEED_LOG_OFFSET_KMH = 5.0

# --- the series scorer (kernels.series) -----------------------------------------------------------

#: Seasonal bins of the series scorer: 30-minute time-of-day bins (UTC) for each of two weekday types
#: (0 = Monday-Friday, 1 = Saturday-Sunday); one row per (series, day type, bin, channel).
SERIES_BIN_S = 1800.0
SERIES_BINS_PER_DAY = 48
SERIES_BINS = 2 * SERIES_BINS_PER_DAY
#: Only series reporting at least this often (s) get a seasonal view: a daily rhythm needs a few
#: readings a day per bin to be learnt.
SERIES_SEASONAL_MAX_INTERVAL_S = 3600.0
#: The short level forgets over 12 intervals but at most an hour (an hourly series is not smoothed
#: over half a day); a gap counts as at most 3 intervals.
SERIES_SHORT_INTERVALS = 12.0
SERIES_SHORT_MEMORY_S = 3600.0
SERIES_MAX_GAP_INTERVALS = 3.0
#: Holt's trend of the short view learns at this fraction of the level's rate: slow enough that noise
#: and a single step do not pass for a trend, fast enough to follow a daily ramp within hours.
SERIES_TREND_GAIN = 0.2
#: The long (usual) level and every noise scale average about this many calm readings (after a
#: plain mean of the first ones); the learnt interval about 50 steps.
SERIES_LONG_READINGS = 500.0
SERIES_SCALE_READINGS = 500.0
SERIES_INTERVAL_READINGS = 50.0
#: A channel scores only once its views have seen this many readings (a scale from fewer is noise;
#: the warm-up learns from every reading, anomalous or not).
SERIES_WARMUP_READINGS = 30.0
#: The slow horizon of the calibration: an exponentially weighted mean over about 8 readings of the
#: worst channel's distance from its usual value, so a lasting shift is seen although no single reading
#: is remarkable.
SERIES_SMOOTH_READINGS = 8.0
#: The slow horizon measures the distance from the usual value (long level or seasonal bin) while that
#: predicts the series within 1.5 times the short view's noise scale, else from the short view.
SERIES_USUAL_TOLERANCE = 1.5
#: The calibration of each horizon (mean and variance of its statistic, how often it exceeds mean + sd,
#: and the excesses' mean and mean square: peaks over threshold, a generalised Pareto tail fitted by
#: moments) averages about 500 usual readings, after a warm-up of 30 in which it learns from every
#: reading and scores nothing. Its first estimate, before any reading, is that of Gaussian noise,
#: u = log(1 + |z|) with z in mean-absolute-deviation units (fast: mean 0.63, sd 0.36, 18 % above
#: mean + sd, excess mean 0.185 and mean square 0.055; slow, an exponentially weighted mean of 8: sd
#: 0.093, 16 %, 0.050, 0.0044).
SERIES_CALIBRATION_READINGS = 500.0
SERIES_CALIBRATION_WARMUP = 30.0
SERIES_TAIL_PRIOR = ((0.627, 0.36, 0.179, 0.1852, 0.0551), (0.627, 0.093, 0.16, 0.0504, 0.0044))
#: The excess moments start as this many exceedances of that prior: a tail is fitted from the series' own
#: exceedances once it has several times as many.
SERIES_TAIL_PRIOR_EXCEEDANCES = 10.0
#: The fitted tail's shape is held to -0.1..0.5: heavier than 0.5 is not told apart from a few large values;
#: much lighter than exponential (on the log scale) is not trusted. With a negative shape the tail ends 10
#: tail scales above its threshold: a value past that has probability 0 (score 1).
SERIES_TAIL_SHAPE_MIN = -0.1
SERIES_TAIL_SHAPE_MAX = 0.5
#: Score = -log10(tail probability) / 6, capped at 1: 0.5 = one reading in a thousand, 1 = one in a million.
SERIES_SCORE_DECADES = 6.0
#: The first high reading of a run teaches the calibration too, its excess held to 3 tail scales: a
#: pattern that recurs often (roughly in more than one reading in ten) widens the tail until it is usual.
SERIES_WINSOR_EXCESS = 3.0
#: A run of high scores lasting 288 learnt intervals (a day at 5 minutes) and at least an hour is a
#: lasting change, no longer an anomaly: the usual level moves to it.
SERIES_ADAPT_READINGS = 288.0
SERIES_ADAPT_MIN_S = 3600.0
#: A series raises episodes only once it has a history: 288 readings or a day, whichever comes first (a
#: new sensor's first morning is new, not anomalous). Its scores are given from the first calibrated reading.
SERIES_ALERT_AFTER_READINGS = 288.0
SERIES_ALERT_AFTER_S = 86400.0
#: Deviations are capped (noise scales) and noise scales never fall below 1e-9 of the level: a
#: perfectly constant series that jumps scores 1, not infinity.
SERIES_MAX_DEVIATION = 1e12
SERIES_RELATIVE_FLOOR = 1e-9
#: Each channel learns its measurement resolution from the steps between its consecutive values (steps within
#: 1e-9 of the values are no step): the running median of the non-zero steps, in the log domain, each step moving it
#: up or down by SERIES_RESOLUTION_RATE (about 5 %). For a quantised sensor, or a count, that is its step (1 for
#: counts); for a continuous one about its noise (then below its learnt noise scale: no effect). A median, not the
#: smallest step: a sensor that reports a mean (an RMS) of quantised samples now and then moves by a sliver of a step.
#: Its noise scale never falls below SERIES_RESOLUTION_FRACTION of it, the standard deviation of a uniform
#: rounding error (step / sqrt(12)): a sensor that mostly repeats one value and now and then flickers by a step
#: is not learnt as nearly noiseless (a normal flicker would be ~20 noise scales).
SERIES_RESOLUTION_FRACTION = 12.0 ** -0.5
SERIES_RESOLUTION_RATE = 0.05

# --- lighting ------------------------------------------------------------------------------------

#: The city whose sun the lighting detectors follow by default: Dijon (deg; north and east positive).
CITY_LATITUDE_DEG = 47.32
CITY_LONGITUDE_DEG = 5.04

#: Solar elevation at sunrise and sunset (deg): the sun's upper limb on the horizon, with
#: standard atmospheric refraction (34') and the solar semi-diameter (16'), as NOAA and almanacs use.
SUN_HORIZON_DEG = -0.833

#: Longest interval between two readings of a lamp over which the energy KPI integrates (s): four
#: 15-min reports. Across a longer silence what the lamp drew is unknown, so the interval counts neither
#: as energy used nor as full-power night (the saving stays a comparison of the same hours).
LIGHTING_ENERGY_MAX_GAP_S = 3600.0

#: Bisection steps locating sunrise or sunset inside one integration interval: 2**-16 of an hour-long
#: interval is under 0.06 s.
NIGHT_CROSSING_STEPS = 16

#: Reading kinds of the lighting domain (the ``type`` column): a lamp or its control cabinet.
LAMP = 0
CABINET = 1

# --- waste ---------------------------------------------------------------------------------------

#: A fall of a bin's fillingLevel (fraction 0-1) by at least this much between two consecutive
#: readings is an emptying: ultrasonic level noise stays within +-0.025, so a real emptying of even
#: a one-third-full bin is never mistaken for noise, and noise is never mistaken for an emptying.
EMPTYING_DROP = 0.25

#: How many recent readings (since the last emptying) the fill-rate estimate keeps per bin.
FILL_SLOPE_WINDOW = 6

#: Two fillingLevel values closer than this (fraction) are "the same value": the sensors report
#: three decimals (1 mm on a 1 m bin), so a live ultrasonic echo almost never repeats exactly.
SAME_LEVEL = 0.0005

#: Smart Data Models WasteContainer ``status`` values, as numeric codes (the ``status`` column).
WASTE_STATUS_CODES = {"ok": 0, "lidOpen": 1, "dropped": 2, "moved": 3, "vandalized": 4, "burning": 5, "unknown": 6}
STATUS_BURNING = 5


# --- household routine (kernels.routine): water.routine_change ------------------------------------

#: A household's day (UTC) is cut into ROUTINE_BINS bins of ROUTINE_BIN_S s (00-04, 04-08, ... 20-24 h): its
#: routine is the share of the day's water use in each. Four-hour bins, not hourly ones: a shower at 7 or at 8
#: is the same routine, and on the real DAIAD households a day's hourly shares differ so much from its usual ones
#: (half of the use in other hours than usual on a median day) that a change of rhythm drowns in them.
ROUTINE_BINS = 6
ROUTINE_BIN_S = 14400.0
ROUTINE_DAY_S = 86400.0
