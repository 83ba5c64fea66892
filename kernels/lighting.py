"""Lighting kernels: the sun's position, and the per-reading state of the four lamp detectors.

Times are epoch seconds (float64, UTC); angles are degrees; power is watts.
``NaN`` in a time array means "never" (no open episode, nothing seen yet).

The sun. :func:`solar_elevation` follows NOAA's solar calculator (the
spreadsheet equations after Meeus, "Astronomical Algorithms"): accurate to a
fraction of a degree, i.e. sunrise and sunset within a minute or two at
mid-latitudes, which is far finer than any photocell. :func:`sun_times` gives
sunrise and sunset of a UTC day from the same equations.

Night and day "with a margin". A lamp is expected on at ``t`` when the sun is
below ``horizon`` both ``margin`` seconds before and after ``t`` (``t`` lies at
least ``margin`` after sunset and before sunrise), expected off when the sun is
above ``horizon`` at both instants; in between lies the twilight window in
which photocells legitimately switch. Where the sun crosses the horizon once
each way a day (everywhere outside the polar circles) this is exactly
"``margin`` after sunset / before sunrise".

Detector kernels take one time-sorted slice of readings (``slot`` int32 lamp
slot, ``ts``, ``kind`` LAMP/CABINET, ``power`` W, ...) with the domain tracker's
facts about each lamp reading (:func:`kernels.previous_readings` over the lamp
readings alone: ``new`` bool, false for a reading not newer than the lamp's last
lamp reading -- a duplicate, out of order, invalid -- and, for lamp_failure,
``prev_ts``: that last lamp reading's time), skip cabinet readings and readings
that are not new, and write per reading a transition code (NO_CHANGE / RAISED / CLEARED) and the
episode start (s) into preallocated outputs.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from kernels._episodes import _confirmed_episode
from kernels.config import CLEARED, LAMP, NIGHT_CROSSING_STEPS, NJIT, NO_CHANGE, RAISED
from kernels._checks import _check, _check_writable, _scalar_times

__all__ = ["solar_elevation", "sun_times", "night_seconds", "lighting_energy", "update_lamp_failure", "update_day_burner",
           "update_power_out_of_range", "update_cycling", "warm_up_lighting"]

DAY_S = 86400.0
UNIX_EPOCH_JULIAN_DAY = 2440587.5
J2000_JULIAN_DAY = 2451545.0
NOT_A_LAMP = -1   # per-reading "lit" value: not a lamp reading, or nothing known


# --- the sun ------------------------------------------------------------------------------------

@njit(**NJIT)
def _sun_declination_and_equation_of_time(t):
    """Solar declination (rad) and equation of time (min) at epoch ``t`` (s), NOAA equations."""
    jc = ((t / DAY_S + UNIX_EPOCH_JULIAN_DAY) - J2000_JULIAN_DAY) / 36525.0   # Julian centuries since J2000
    mean_longitude = (280.46646 + jc * (36000.76983 + jc * 0.0003032)) % 360.0
    mean_anomaly = math.radians(357.52911 + jc * (35999.05029 - 0.0001537 * jc))
    eccentricity = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    centre = (math.sin(mean_anomaly) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
              + math.sin(2.0 * mean_anomaly) * (0.019993 - 0.000101 * jc)
              + math.sin(3.0 * mean_anomaly) * 0.000289)
    omega = math.radians(125.04 - 1934.136 * jc)
    apparent_longitude = math.radians(mean_longitude + centre - 0.00569 - 0.00478 * math.sin(omega))
    mean_obliquity = 23.0 + (26.0 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60.0) / 60.0
    obliquity = math.radians(mean_obliquity + 0.00256 * math.cos(omega))
    declination = math.asin(math.sin(obliquity) * math.sin(apparent_longitude))
    y = math.tan(obliquity / 2.0) ** 2
    l0 = math.radians(mean_longitude)
    equation_of_time = 4.0 * math.degrees(
        y * math.sin(2.0 * l0) - 2.0 * eccentricity * math.sin(mean_anomaly)
        + 4.0 * eccentricity * y * math.sin(mean_anomaly) * math.cos(2.0 * l0)
        - 0.5 * y * y * math.sin(4.0 * l0) - 1.25 * eccentricity * eccentricity * math.sin(2.0 * mean_anomaly))
    return declination, equation_of_time


@njit(**NJIT)
def _elevation_at(t, latitude, longitude):
    """Geometric solar elevation (deg) at epoch ``t`` (s) seen from ``latitude``, ``longitude`` (deg)."""
    declination, equation_of_time = _sun_declination_and_equation_of_time(t)
    minutes_of_day = (t % DAY_S) / 60.0
    true_solar_minutes = (minutes_of_day + equation_of_time + 4.0 * longitude) % 1440.0
    hour_angle = math.radians(true_solar_minutes / 4.0 - 180.0)
    lat = math.radians(latitude)
    cos_zenith = math.sin(lat) * math.sin(declination) + math.cos(lat) * math.cos(declination) * math.cos(hour_angle)
    cos_zenith = min(1.0, max(-1.0, cos_zenith))
    return 90.0 - math.degrees(math.acos(cos_zenith))


@njit(**NJIT)
def _solar_elevation(ts, latitude, longitude, out):
    for i in range(ts.shape[0]):
        t = ts[i]
        out[i] = _elevation_at(t, latitude, longitude) if np.isfinite(t) else np.nan


def solar_elevation(ts, latitude, longitude, out=None):
    """Geometric solar elevation (deg, no refraction) at each epoch time ``ts`` (s, float64).

    ``latitude`` and ``longitude`` in degrees, north and east positive. NaN times give NaN.
    Compare with ``SUN_HORIZON_DEG`` (-0.833) for "the sun is up" as almanacs define sunrise.
    """
    latitude, longitude = _coordinates(latitude, longitude)
    _check("ts", ts, np.float64)
    out = _float_out(out, ts.shape[0])
    _solar_elevation(ts, latitude, longitude, out)
    return out


@njit(**NJIT)
def _event_time(day, latitude, longitude, horizon, sign):
    """Sunrise (sign -1) or sunset (+1) of the UTC day starting at ``day`` (s); NaN if the sun
    does not cross ``horizon`` that day. Two passes: the sun's position is taken at the event."""
    lat = math.radians(latitude)
    guess = day + 43200.0
    for _ in range(3):
        declination, equation_of_time = _sun_declination_and_equation_of_time(guess)
        cos_hour_angle = ((math.sin(math.radians(horizon)) - math.sin(lat) * math.sin(declination))
                          / (math.cos(lat) * math.cos(declination)))
        if cos_hour_angle < -1.0 or cos_hour_angle > 1.0:
            return np.nan
        hour_angle = math.degrees(math.acos(cos_hour_angle))
        noon_minutes = 720.0 - 4.0 * longitude - equation_of_time
        guess = day + (noon_minutes + sign * 4.0 * hour_angle) * 60.0
    return guess


@njit(**NJIT)
def _sun_times(days, latitude, longitude, horizon, sunrise, sunset):
    for i in range(days.shape[0]):
        d = days[i]
        if not np.isfinite(d):
            sunrise[i] = np.nan
            sunset[i] = np.nan
            continue
        d = d - d % DAY_S
        sunrise[i] = _event_time(d, latitude, longitude, horizon, -1.0)
        sunset[i] = _event_time(d, latitude, longitude, horizon, 1.0)


def sun_times(days, latitude, longitude, horizon=-0.833, sunrise=None, sunset=None):
    """Sunrise and sunset (epoch s, UTC) of the UTC day containing each time in ``days`` (s).

    The sun's centre at elevation ``horizon`` (deg; -0.833 = upper limb on the horizon with
    refraction). NaN where the sun stays above or below it all day (polar day or night).
    Returns ``(sunrise, sunset)``.
    """
    latitude, longitude = _coordinates(latitude, longitude)
    horizon = _scalar_times(horizon)[0]
    _check("days", days, np.float64)
    n = days.shape[0]
    sunrise, sunset = _float_out(sunrise, n), _float_out(sunset, n)
    _sun_times(days, latitude, longitude, horizon, sunrise, sunset)
    return sunrise, sunset


@njit(**NJIT)
def _night(t, latitude, longitude, horizon, margin):
    """The sun is below ``horizon`` ``margin`` s before and after ``t``: lamps must burn."""
    return (_elevation_at(t - margin, latitude, longitude) < horizon
            and _elevation_at(t + margin, latitude, longitude) < horizon)


@njit(**NJIT)
def _day(t, latitude, longitude, horizon, margin):
    """The sun is above ``horizon`` ``margin`` s before and after ``t``: lamps must be dark."""
    return (_elevation_at(t - margin, latitude, longitude) > horizon
            and _elevation_at(t + margin, latitude, longitude) > horizon)


@njit(**NJIT)
def _lit(power, power_state, lit_above):
    """1 if the lamp burns (metered power at least ``lit_above`` W; else the reported powerState
    code when no power was metered), 0 if dark, NOT_A_LAMP if nothing is known."""
    if np.isfinite(power):
        return 1 if power >= lit_above else 0
    if power_state == 1.0:
        return 1
    if power_state == 0.0:
        return 0
    return NOT_A_LAMP


@njit(**NJIT)
def _fresh(i, kind, new):
    """Reading ``i`` is a lamp reading newer than its lamp's last one (the tracker's ``new``)."""
    return kind[i] == LAMP and new[i]


# --- lighting.lamp_failure ----------------------------------------------------------------------

@njit(**NJIT)
def _update_lamp_failure(slot, ts, kind, power, new, prev_ts, latitude, longitude, horizon, night_margin, dark_below,
                         confirm, max_gap, dark_since, failure_since, codes, starts):
    for i in range(slot.shape[0]):
        codes[i] = NO_CHANGE
        starts[i] = np.nan
        s = slot[i]
        if not _fresh(i, kind, new):
            continue
        previous = prev_ts[i]
        t = ts[i]
        if t - previous > max_gap:
            dark_since[s] = np.nan       # a missed report (maybe lit) breaks a run of dark readings
        p = power[i]
        if not np.isfinite(p):
            continue
        dark_at_night = p < dark_below and _night(t, latitude, longitude, horizon, night_margin)
        _confirmed_episode(i, s, t, dark_at_night, p >= dark_below, confirm, dark_since, failure_since,
                           codes, starts)


def update_lamp_failure(slot, ts, kind, power, new, prev_ts, latitude, longitude, horizon, night_margin, dark_below,
                        confirm, max_gap, dark_since, failure_since, codes=None, starts=None):
    """Lamp failure: dark although the astronomical schedule says it must burn.

    A lamp reading counts as *dark at night* when ``power`` < ``dark_below`` (W) and the sun
    is below ``horizon`` (deg) from ``night_margin`` s before to ``night_margin`` s after it.
    Consecutive such readings spanning at least ``confirm`` s open an episode whose start is
    the first of them; any other reading breaks the run, and so does a gap of more than
    ``max_gap`` s since the lamp's previous reading (a missed report could have been lit: the
    run starts again at the reading after the gap). An open episode closes at the first
    reading drawing at least ``dark_below`` W (lamp repaired), whatever the time of day.
    Readings without a metered power are no evidence (but are reports). ``new`` and ``prev_ts``
    (s) per reading (module docstring). State per lamp (in place): ``dark_since``,
    ``failure_since`` (s). Returns ``(codes, starts)`` per reading.
    """
    latitude, longitude = _coordinates(latitude, longitude)
    horizon, night_margin, dark_below, confirm, max_gap = _scalar_times(horizon, night_margin, dark_below, confirm,
                                                                        max_gap)
    n = _check_readings(slot, ts, kind, power, prev_ts)
    _check_new(new, n)
    _check_state(dark_since, failure_since)
    codes, starts = _transition_out(codes, starts, n)
    _update_lamp_failure(slot, ts, kind, power, new, prev_ts, latitude, longitude, horizon, night_margin, dark_below,
                         confirm, max_gap, dark_since, failure_since, codes, starts)
    return codes, starts


# --- lighting.day_burner ------------------------------------------------------------------------

@njit(**NJIT)
def _update_day_burner(slot, ts, kind, power, power_state, new, latitude, longitude, horizon, day_margin, lit_above,
                       confirm, lit_since, burning_since, codes, starts):
    for i in range(slot.shape[0]):
        codes[i] = NO_CHANGE
        starts[i] = np.nan
        if not _fresh(i, kind, new):
            continue
        s = slot[i]
        t = ts[i]
        lit = _lit(power[i], power_state[i], lit_above)
        if lit == NOT_A_LAMP:
            continue
        lit_by_day = lit == 1 and _day(t, latitude, longitude, horizon, day_margin)
        _confirmed_episode(i, s, t, lit_by_day, lit == 0, confirm, lit_since, burning_since, codes, starts)


def update_day_burner(slot, ts, kind, power, power_state, new, latitude, longitude, horizon, day_margin, lit_above,
                      confirm, lit_since, burning_since, codes=None, starts=None):
    """Day burner: a lamp that burns in daylight, past the photocells' tolerance.

    A lamp reading counts as *lit by day* when it burns (``power`` >= ``lit_above`` W, or,
    without metered power, ``power_state`` 1 = on/low) and the sun is above ``horizon`` (deg)
    from ``day_margin`` s before to ``day_margin`` s after it. Consecutive such readings
    spanning at least ``confirm`` s open an episode starting at the first; any other reading
    breaks the run. The first reading showing the lamp dark closes it. ``new`` per reading
    (module docstring). State per lamp (in place): ``lit_since``, ``burning_since`` (s).
    Returns ``(codes, starts)``.
    """
    latitude, longitude = _coordinates(latitude, longitude)
    horizon, day_margin, lit_above, confirm = _scalar_times(horizon, day_margin, lit_above, confirm)
    n = _check_readings(slot, ts, kind, power, power_state)
    _check_new(new, n)
    _check_state(lit_since, burning_since)
    codes, starts = _transition_out(codes, starts, n)
    _update_day_burner(slot, ts, kind, power, power_state, new, latitude, longitude, horizon, day_margin, lit_above,
                       confirm, lit_since, burning_since, codes, starts)
    return codes, starts


# --- lighting.power_out_of_range ----------------------------------------------------------------

@njit(**NJIT)
def _update_power_out_of_range(slot, ts, kind, power, rating, level, new, lit_above, tolerance, clear_tolerance,
                               confirm, outside_since, episode_since, codes, starts):
    for i in range(slot.shape[0]):
        codes[i] = NO_CHANGE
        starts[i] = np.nan
        if not _fresh(i, kind, new):
            continue
        s = slot[i]
        t = ts[i]
        p = power[i]
        expected = rating[i] * level[i]
        evaluable = np.isfinite(p) and p >= lit_above and np.isfinite(expected) and expected > 0.0
        if not evaluable:   # dark, unmetered or no rated power: no evidence either way, breaks a run
            outside_since[s] = np.nan
            continue
        deviation = abs(p / expected - 1.0)
        _confirmed_episode(i, s, t, deviation > tolerance, deviation <= clear_tolerance, confirm, outside_since,
                           episode_since, codes, starts)


def update_power_out_of_range(slot, ts, kind, power, rating, level, new, lit_above, tolerance, clear_tolerance,
                              confirm, outside_since, episode_since, codes=None, starts=None):
    """Power out of range: a burning lamp draws far from its rated power times its dimming level.

    Expected power = ``rating`` (W) x ``level`` (0-1). A burning reading (``power`` >=
    ``lit_above`` W) whose relative deviation ``|power / expected - 1|`` exceeds
    ``tolerance`` is *outside*; consecutive outside readings spanning at least ``confirm`` s
    open an episode starting at the first; any other reading breaks the run. An open episode
    closes at the first burning reading within ``clear_tolerance`` (< ``tolerance``: the
    hysteresis that keeps a lamp near the band edge from flapping). ``new`` per reading (module
    docstring). State per lamp (in place): ``outside_since``, ``episode_since`` (s). Returns
    ``(codes, starts)``.
    """
    lit_above, tolerance, clear_tolerance, confirm = _scalar_times(lit_above, tolerance, clear_tolerance, confirm)
    if not 0.0 <= clear_tolerance <= tolerance:
        raise ValueError(f"clear_tolerance must lie within [0, tolerance], got {clear_tolerance} vs {tolerance}")
    n = _check_readings(slot, ts, kind, power, rating, level)
    _check_new(new, n)
    _check_state(outside_since, episode_since)
    codes, starts = _transition_out(codes, starts, n)
    _update_power_out_of_range(slot, ts, kind, power, rating, level, new, lit_above, tolerance, clear_tolerance,
                               confirm, outside_since, episode_since, codes, starts)
    return codes, starts


# --- lighting.cycling ---------------------------------------------------------------------------

@njit(**NJIT)
def _update_cycling(slot, ts, kind, power, power_state, new, latitude, longitude, horizon, twilight_margin,
                    lit_above, window, min_transitions, steady_for, last_lit, window_start, transitions,
                    last_transition, cycling_since, codes, starts):
    for i in range(slot.shape[0]):
        codes[i] = NO_CHANGE
        starts[i] = np.nan
        if not _fresh(i, kind, new):
            continue
        s = slot[i]
        t = ts[i]
        lit = _lit(power[i], power_state[i], lit_above)
        if lit != NOT_A_LAMP:
            previous = last_lit[s]
            last_lit[s] = lit
            steady_expected = (_night(t, latitude, longitude, horizon, twilight_margin)
                               or _day(t, latitude, longitude, horizon, twilight_margin))
            if previous >= 0 and lit != previous and steady_expected:
                if np.isnan(window_start[s]) or t - window_start[s] > window:
                    window_start[s] = t
                    transitions[s] = 0
                transitions[s] += 1
                last_transition[s] = t
                if np.isnan(cycling_since[s]) and transitions[s] >= min_transitions:
                    cycling_since[s] = window_start[s]
                    codes[i] = RAISED
                    starts[i] = window_start[s]
                    continue
        if not np.isnan(cycling_since[s]) and t - last_transition[s] >= steady_for:
            codes[i] = CLEARED
            starts[i] = cycling_since[s]
            cycling_since[s] = np.nan
            window_start[s] = np.nan
            transitions[s] = 0


def update_cycling(slot, ts, kind, power, power_state, new, latitude, longitude, horizon, twilight_margin, lit_above,
                   window, min_transitions, steady_for, last_lit, window_start, transitions,
                   last_transition, cycling_since, codes=None, starts=None):
    """Cycling: a lamp switching on and off while it should be steady.

    A *transition* is a lamp reading whose lit state (as in :func:`update_day_burner`)
    differs from the lamp's previous known one, seen outside the twilight windows
    (``twilight_margin`` s around sunrise and sunset, where photocells switch). A window
    opens at a transition and lasts ``window`` s; ``min_transitions`` transitions within it
    open an episode starting at the window's opening. The episode closes at the first
    reading ``steady_for`` s after the last transition. ``new`` per reading (module docstring).
    State per lamp (in place): ``last_lit`` (int8, -1 unknown), ``window_start`` (s), ``transitions``
    (int32), ``last_transition`` (s), ``cycling_since`` (s). Returns ``(codes, starts)``.
    """
    latitude, longitude = _coordinates(latitude, longitude)
    horizon, twilight_margin, lit_above, window, steady_for = _scalar_times(
        horizon, twilight_margin, lit_above, window, steady_for)
    min_transitions = int(min_transitions)
    if min_transitions < 1:
        raise ValueError(f"min_transitions must be >= 1, got {min_transitions}")
    n = _check_readings(slot, ts, kind, power, power_state)
    _check_new(new, n)
    m = _check_state(window_start, last_transition, cycling_since)
    _check("last_lit", last_lit, np.int8, m)
    _check("transitions", transitions, np.int32, m)
    _check_writable("last_lit", last_lit)
    _check_writable("transitions", transitions)
    codes, starts = _transition_out(codes, starts, n)
    _update_cycling(slot, ts, kind, power, power_state, new, latitude, longitude, horizon, twilight_margin,
                    lit_above, window, min_transitions, steady_for, last_lit, window_start, transitions,
                    last_transition, cycling_since, codes, starts)
    return codes, starts


# --- energy: what the lamps drew against full power all night --------------------------------------

@njit(**NJIT)
def _crossing(a, b, latitude, longitude, horizon, a_night):
    """The instant in [a, b] (s) where the sun crosses ``horizon``, by bisection, given that it is
    night at ``a`` (``a_night``) and not at ``b``, or the reverse."""
    lo, hi = a, b
    for _ in range(NIGHT_CROSSING_STEPS):
        mid = 0.5 * (lo + hi)
        if (_elevation_at(mid, latitude, longitude) < horizon) == a_night:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@njit(**NJIT)
def _night_seconds(a, b, latitude, longitude, horizon):
    """Seconds of [a, b] with the sun below ``horizon``, for an interval short enough that the sun
    crosses the horizon at most once in it (an hour: everywhere but within a degree or so of the
    polar circles' grazing days)."""
    night_a = _elevation_at(a, latitude, longitude) < horizon
    night_b = _elevation_at(b, latitude, longitude) < horizon
    if night_a and night_b:
        return b - a
    if not night_a and not night_b:
        return 0.0
    t = _crossing(a, b, latitude, longitude, horizon, night_a)
    return t - a if night_a else b - t


@njit(**NJIT)
def _night_seconds_many(starts, ends, latitude, longitude, horizon, out):
    for i in range(starts.shape[0]):
        a = starts[i]
        b = ends[i]
        out[i] = _night_seconds(a, b, latitude, longitude, horizon) if (np.isfinite(a) and np.isfinite(b)
                                                                        and b > a) else 0.0


def night_seconds(starts, ends, latitude, longitude, horizon=-0.833, out=None):
    """Seconds of each interval [starts[i], ends[i]] (epoch s) with the sun below ``horizon`` (deg).

    Intervals must be short enough for the sun to cross the horizon at most once (an hour or two at
    any latitude outside the polar circles' grazing days); an empty, reversed or non-finite one gives 0.
    """
    latitude, longitude = _coordinates(latitude, longitude)
    horizon = _scalar_times(horizon)[0]
    _check("starts", starts, np.float64)
    _check("ends", ends, np.float64, starts.shape[0])
    out = _float_out(out, starts.shape[0])
    _night_seconds_many(starts, ends, latitude, longitude, horizon, out)
    return out


@njit(**NJIT)
def _lighting_energy(ts, kind, power, rating, new, prev_ts, latitude, longitude, horizon, max_gap):
    """(used, full_power_night) in joules over the intervals (prev_ts, ts] of new lamp readings."""
    used = 0.0
    full = 0.0
    for i in range(ts.shape[0]):
        if not _fresh(i, kind, new):
            continue
        dt = ts[i] - prev_ts[i]
        # NaN comparisons are false: no previous reading, no power or no rating reported -> not counted
        if not (dt > 0.0 and dt <= max_gap and power[i] >= 0.0 and rating[i] > 0.0):
            continue
        used += power[i] * dt
        full += rating[i] * _night_seconds(prev_ts[i], ts[i], latitude, longitude, horizon)
    return used, full


def lighting_energy(ts, kind, power, rating, new, prev_ts, latitude, longitude, horizon=-0.833,
                    max_gap_s=3600.0) -> tuple[float, float]:
    """Energy the lamps drew, and what the same lamps would draw at full power all night (both J).

    Per new lamp reading (``kind`` LAMP and ``new``; cabinet, duplicate and out-of-order readings skip),
    over the interval since the lamp's previous lamp reading ``prev_ts`` (s): *used* is the reported
    ``power`` (W) times the interval, the reading standing for the time since the one before (a lamp
    switched at dusk is over-counted at most one interval and one switched at dawn under-counted as
    much); *full_power_night* is the lamp's ``rating`` (W) times the interval's night seconds, the sun
    below ``horizon`` at ``latitude``, ``longitude`` (deg). An interval with no previous reading, longer
    than ``max_gap_s``, or with power or rating absent (NaN) counts in neither, so the saving
    ``1 - used / full_power_night`` compares the same lamps over the same hours.
    """
    latitude, longitude = _coordinates(latitude, longitude)
    horizon, max_gap_s = _scalar_times(horizon, max_gap_s)
    _check("ts", ts, np.float64)
    n = ts.shape[0]
    for name, column in (("kind", kind), ("power", power), ("rating", rating), ("prev_ts", prev_ts)):
        _check(name, column, np.float64, n)
    _check_new(new, n)
    return _lighting_energy(ts, kind, power, rating, new, prev_ts, latitude, longitude, horizon, max_gap_s)


# --- validation helpers -------------------------------------------------------------------------

def _coordinates(latitude, longitude) -> tuple[float, float]:
    latitude, longitude = _scalar_times(latitude, longitude)
    if not -90.0 <= latitude <= 90.0:
        raise ValueError(f"latitude must lie within [-90, 90] deg, got {latitude}")
    if not -180.0 <= longitude <= 180.0:
        raise ValueError(f"longitude must lie within [-180, 180] deg, got {longitude}")
    return latitude, longitude


def _check_readings(slot, ts, kind, *columns) -> int:
    _check("slot", slot, np.int32)
    n = slot.shape[0]
    _check("ts", ts, np.float64, n)
    _check("kind", kind, np.float64, n)
    for i, column in enumerate(columns):
        _check(f"column {i}", column, np.float64, n)
    return n


def _check_new(new, n: int) -> None:
    _check("new", new, np.bool_, n)


def _check_state(first, *times) -> int:
    _check("state", first, np.float64)
    m = first.shape[0]
    _check_writable("state", first)
    for i, array in enumerate(times):
        _check(f"state {i}", array, np.float64, m)
        _check_writable(f"state {i}", array)
    return m


def _float_out(out, n: int) -> np.ndarray:
    if out is None:
        return np.empty(n, dtype=np.float64)
    _check("out", out, np.float64, n)
    return out


def _transition_out(codes, starts, n: int):
    if codes is None:
        codes = np.empty(n, dtype=np.int8)
    else:
        _check("codes", codes, np.int8, n)
    return codes, _float_out(starts, n)


def warm_up_lighting() -> None:
    """Compile (or load from cache) every lighting kernel on tiny inputs."""
    one = np.zeros(1)
    slot = np.zeros(1, dtype=np.int32)
    f = np.full(1, np.nan)
    solar_elevation(one, 47.0, 5.0)
    sun_times(one, 47.0, 5.0)
    new = np.ones(1, dtype=np.bool_)
    update_lamp_failure(slot, one, one, one, new, f, 47.0, 5.0, -0.833, 1.0, 1.0, 1.0, 1.0, f.copy(), f.copy())
    update_day_burner(slot, one, one, one, one, new, 47.0, 5.0, -0.833, 1.0, 1.0, 1.0, f.copy(), f.copy())
    update_power_out_of_range(slot, one, one, one, one, one, new, 1.0, 0.2, 0.1, 1.0, f.copy(), f.copy())
    night_seconds(one, one, 47.0, 5.0)
    lighting_energy(one, one, one, one, new, f, 47.0, 5.0)
    update_cycling(slot, one, one, one, one, new, 47.0, 5.0, -0.833, 1.0, 1.0, 1.0, 1, 1.0,
                   np.full(1, -1, dtype=np.int8), f.copy(), np.zeros(1, dtype=np.int32), f.copy(), f.copy())
