"""Numba flags and the numeric constants the kernels share.

``NJIT`` is the one set of compile options every kernel uses: ``cache=True`` so a
worker or the demo does not pay seconds of compilation on each start (the cache
goes to ``NUMBA_CACHE_DIR`` when set, else beside the module), ``nogil`` so a
kernel does not hold the GIL while it runs.
"""

import numpy as np

__all__ = ["NJIT", "MIN_USE_M3", "READING_CODES", "TRANSITION_CODES",
           "APPLIED_USE", "APPLIED_FLAT", "APPLIED_NEW", "APPLIED_BACKWARDS", "SKIPPED_STALE", "SKIPPED_INVALID",
           "NO_CHANGE", "RAISED", "CLEARED", "NOT_SET"]

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

#: Per-subject transition codes written by the sweep kernels.
NO_CHANGE = 0
RAISED = 1
CLEARED = 2
TRANSITION_CODES = ("none", "raised", "cleared")

#: Marks "no value" in float64 state arrays (no episode open, never seen).
NOT_SET = np.nan

# --- traffic -------------------------------------------------------------------------------------

#: Per-reading outcome written by ``apply_traffic_readings`` (SKIPPED_STALE / SKIPPED_INVALID otherwise).
READING_APPLIED = 0

#: Seasonal baseline of ``traffic.anomaly_score``: 30-minute time-of-day bins (UTC) for each of two
#: weekday types (0 = Monday-Friday, 1 = Saturday-Sunday); one row per (detector, day type, bin).
TRAFFIC_BIN_S = 1800.0
TRAFFIC_BINS_PER_DAY = 48
TRAFFIC_BASELINE_ROWS = 2 * TRAFFIC_BINS_PER_DAY
#: 1970-01-01 was a Thursday: weekday (Monday = 0) of epoch day d is (d + 3) % 7.
EPOCH_WEEKDAY = 3

#: Variance-stabilising transforms of the anomaly score's channels: sqrt(intensity) (Poisson counts
#: then have a noise of about 0.5 whatever the flow), log(occupancy + 0.02) and log(speed + 5 km/h)
#: (relative changes; the offsets keep a quiet night's near-zero values from looking like huge ratios).
OCCUPANCY_LOG_OFFSET = 0.02
SPEED_LOG_OFFSET_KMH = 5.0

#: Scoring one plain series of unknown units and cadence (``series_scores``). Its short-term level
#: forgets over 12 intervals but at most an hour (an hourly series is not smoothed over half a day), a
#: gap counts as at most 3 intervals; the noise scales average the last day of residuals; until they
#: have seen this many calm residuals they lean on a prior of half the series' interquartile range, so
#: early rows only score high when wildly off; the floor (1 % of that range) only fixes the unit.
SERIES_LEVEL_INTERVALS = 12.0
SERIES_LEVEL_MEMORY_S = 3600.0
SERIES_MAX_GAP_INTERVALS = 3.0
SERIES_SCALE_MEMORY_S = 86400.0
SERIES_PRIOR_SAMPLES = 8.0
SERIES_PRIOR_SPREAD = 0.5
SERIES_FLOOR_SPREAD = 0.01

# --- lighting ------------------------------------------------------------------------------------

#: The city whose sun the lighting detectors follow by default: Dijon (deg; north and east positive).
CITY_LATITUDE_DEG = 47.32
CITY_LONGITUDE_DEG = 5.04

#: Solar elevation at sunrise and sunset (deg): the sun's upper limb on the horizon, with
#: standard atmospheric refraction (34') and the solar semi-diameter (16'), as NOAA and almanacs use.
SUN_HORIZON_DEG = -0.833

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
