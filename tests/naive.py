"""Naive pure-Python references for every kernel: obviously right, slow on purpose.

Each function takes plain lists (None or float('nan') for "never") and returns new
lists instead of writing in place, so a test can compare it with the kernel.
"""

import math
import statistics

from tests import naive_routine, naive_series

MIN_USE_M3 = 0.0005
USE, FLAT, NEW, BACKWARDS, STALE, INVALID = range(6)
NO_CHANGE, RAISED, CLEARED = range(3)


def _never(x):
    return x is None or (isinstance(x, float) and math.isnan(x))


def apply_meter_readings(readings, last_seen, last_index, last_use, meter_gateway, gateway_last_seen):
    """readings: list of (slot, ts, index, gateway_slot). Returns (codes, new state lists)."""
    last_seen, last_index, last_use = list(last_seen), list(last_index), list(last_use)
    meter_gateway, gateway_last_seen = list(meter_gateway), list(gateway_last_seen)
    codes = []
    for slot, ts, index, gateway in readings:
        if not (0 <= slot < len(last_seen)) or not math.isfinite(ts) or not math.isfinite(index):
            codes.append(INVALID)
            continue
        if 0 <= gateway < len(gateway_last_seen):
            meter_gateway[slot] = gateway
            if _never(gateway_last_seen[gateway]) or ts > gateway_last_seen[gateway]:
                gateway_last_seen[gateway] = ts
        if _never(last_seen[slot]):
            last_seen[slot], last_index[slot], last_use[slot] = ts, index, ts
            codes.append(NEW)
        elif ts <= last_seen[slot]:
            codes.append(STALE)
        else:
            last_seen[slot] = ts
            rise = index - last_index[slot]
            if rise >= MIN_USE_M3:
                last_use[slot], last_index[slot] = ts, index
                codes.append(USE)
            elif rise <= -MIN_USE_M3:
                last_index[slot] = index
                codes.append(BACKWARDS)
            else:
                codes.append(FLAT)
    return codes, last_seen, last_index, last_use, meter_gateway, gateway_last_seen


# --- reporting cadence (kernels.cadence) and the silence limit the absence sweeps use -----------------

CADENCE_MEMORY_S = 86400.0
CADENCE_CLIP = 3.0
CADENCE_MIN_INTERVALS = 4
CADENCE_MERGE_S = 60.0
CADENCE_GAP_MEMORY_S = 30 * 86400.0
LEARNT, SAME_DELIVERY, FIRST = range(3)


def learn_cadence(readings, last_seen, cadence, count, fold=False, gaps=None):
    """readings: list of (slot, ts), in order. Returns (codes, last_seen, cadence, count), and the
    longest gaps as a fifth element when ``gaps`` is given; last_seen comes back unchanged unless ``fold``."""
    newest, cadence, count = list(last_seen), list(cadence), list(count)
    longest = None if gaps is None else list(gaps)
    codes = []
    for slot, ts in readings:
        if not (0 <= slot < len(newest)) or not math.isfinite(ts):
            codes.append(INVALID)
            continue
        before = newest[slot]
        if not _never(before) and ts <= before:
            codes.append(STALE)
            continue
        newest[slot] = ts
        if _never(before):
            codes.append(FIRST)
            continue
        interval = ts - before
        if interval < CADENCE_MERGE_S:
            codes.append(SAME_DELIVERY)
            continue
        if longest is not None:   # the longest recent gap: the old one fades by e per 30 days of intervals
            faded = longest[slot] * math.exp(-interval / CADENCE_GAP_MEMORY_S)
            longest[slot] = faded if faded >= interval else interval
        n, old = count[slot], cadence[slot]
        if n <= 0 or _never(old):
            cadence[slot], n = interval, 0
        elif n < CADENCE_MIN_INTERVALS:
            cadence[slot] = min(old, interval)          # the shortest of the first intervals
        else:
            clipped = min(interval, CADENCE_CLIP * old)  # a silence counts as three cadences at most
            weight = 1.0 - math.exp(-clipped / CADENCE_MEMORY_S)
            cadence[slot] = old + weight * (clipped - old)
        if n < CADENCE_MIN_INTERVALS:
            count[slot] = n + 1
        codes.append(LEARNT)
    result = (codes, newest if fold else list(last_seen), cadence, count)
    return result if longest is None else result + (longest,)


def silence_limit(floor, missed_reports, cadence, count, s, gaps=None, gap_margin=0.0, gap_ceiling=math.inf):
    """Once the cadence is learnt: the longest of the floor, missed_reports x cadence and (with ``gaps``)
    min(gap_margin x longest gap, gap_ceiling); else the floor (cadence None: the floor)."""
    if cadence is None or count[s] < CADENCE_MIN_INTERVALS:
        return floor
    candidates = [floor]
    if not _never(cadence[s]):
        candidates.append(missed_reports * cadence[s])
    if gaps is not None and not _never(gaps[s]):
        candidates.append(min(gap_margin * gaps[s], gap_ceiling))
    return max(candidates)


def sweep_absence(watermark, silent_after, gateway_last_seen, outage_since, cadence=None, count=None,
                  missed_reports=0.0, gaps=None, gap_margin=0.0, gap_ceiling=math.inf):
    outage_since = list(outage_since)
    codes = []
    for g, seen in enumerate(gateway_last_seen):
        code = NO_CHANGE
        if not _never(seen):
            if _never(outage_since[g]):
                if watermark - seen >= silence_limit(silent_after, missed_reports, cadence, count, g, gaps, gap_margin,
                                                     gap_ceiling):
                    outage_since[g], code = seen, RAISED
            elif seen > outage_since[g]:
                outage_since[g], code = float("nan"), CLEARED
        codes.append(code)
    return codes, outage_since


def _gateway_out(meter_gateway, gateway_outage_since, m):
    g = meter_gateway[m]
    return 0 <= g < len(gateway_outage_since) and not _never(gateway_outage_since[g])


def sweep_meter_silent(watermark, silent_after, last_seen, meter_gateway, gateway_outage_since, silent_since,
                       cadence=None, count=None, missed_reports=0.0, gaps=None, gap_margin=0.0, gap_ceiling=math.inf,
                       gateway_outage_ended=None):
    silent_since = list(silent_since)
    codes = []
    for m, seen in enumerate(last_seen):
        code = NO_CHANGE
        if not _never(seen):
            # one learnt cadence of grace after its gateway's return, when it went quiet before it
            g = meter_gateway[m]
            returning = (gateway_outage_ended is not None and 0 <= g < len(gateway_outage_ended)
                         and not _never(gateway_outage_ended[g]) and gateway_outage_ended[g] > seen
                         and cadence is not None and count[m] >= CADENCE_MIN_INTERVALS and not _never(cadence[m])
                         and watermark - gateway_outage_ended[g] < cadence[m])
            if _never(silent_since[m]):
                limit = silence_limit(silent_after, missed_reports, cadence, count, m, gaps, gap_margin, gap_ceiling)
                if (not returning and watermark - seen >= limit
                        and not _gateway_out(meter_gateway, gateway_outage_since, m)):
                    silent_since[m], code = seen, RAISED
            elif seen > silent_since[m]:
                silent_since[m], code = float("nan"), CLEARED
        codes.append(code)
    return codes, silent_since


def sweep_no_use(watermark, no_use_after, silent_after, last_seen, last_use, meter_gateway, gateway_outage_since,
                 no_use_since, cadence=None, count=None, missed_reports=0.0):
    no_use_since = list(no_use_since)
    codes = []
    for m, seen in enumerate(last_seen):
        code = NO_CHANGE
        used = last_use[m]
        if not _never(seen) and not _never(used):
            if _never(no_use_since[m]):
                reporting = watermark - seen < silence_limit(silent_after, missed_reports, cadence, count, m)
                if (reporting and watermark - used >= no_use_after
                        and not _gateway_out(meter_gateway, gateway_outage_since, m)):
                    no_use_since[m], code = used, RAISED
            elif used > no_use_since[m]:
                no_use_since[m], code = float("nan"), CLEARED
        codes.append(code)
    return codes, no_use_since


# --- domain-level references: a whole domain's detectors on an event stream ---------------------
#
# events: ("reading", subject_key, ts, columns: dict, groups: dict) or ("tick", t), in the order the
# pipeline sees them. thresholds: detector name -> Thresholds. Returns a list of
# (detector, subject, state, episode_start, time) for every episode opened or closed.


def water_reference(events, thresholds):
    gw_t = thresholds["feed.gateway_outage"]
    silent_t = thresholds["water.meter_silent"]
    no_use_t = thresholds["water.no_use_24h"]
    meter_keys, gateway_keys = [], []
    meter_index, gateway_index = {}, {}
    nan = float("nan")
    m = {"last_seen": [], "last_index": [], "last_use": [], "gateway": [], "silent_since": [], "no_use_since": [],
         "cadence": [], "count": [], "gap": []}
    g = {"last_seen": [], "outage_since": [], "cadence": [], "count": [], "gap": [], "outage_back": [],
         "outage_ended": []}
    found = []
    for event in events:
        if event[0] == "reading":
            _, key, ts, columns, groups = event
            if key not in meter_index:
                meter_index[key] = len(meter_keys)
                meter_keys.append(key)
                for name in m:
                    m[name].append(-1 if name == "gateway" else 0 if name in ("count", "gap") else nan)
            gateway = groups.get("gateway")
            if gateway is not None and gateway not in gateway_index:
                gateway_index[gateway] = len(gateway_keys)
                gateway_keys.append(gateway)
                for name in g:
                    g[name].append(0 if name in ("count", "gap") else nan)
            reading = (meter_index[key], ts, columns["waterConsumption"],
                       -1 if gateway is None else gateway_index[gateway])
            # the cadence is learnt before the reading is folded in (CadenceTracker, then WaterTracker)
            _codes, _seen, m["cadence"], m["count"], m["gap"] = learn_cadence(
                [(reading[0], ts)], m["last_seen"], m["cadence"], m["count"], gaps=m["gap"])
            _codes, _seen, g["cadence"], g["count"], g["gap"] = learn_cadence(
                [(reading[3], ts)], g["last_seen"], g["cadence"], g["count"], gaps=g["gap"])
            gw = reading[3]
            if gw >= 0 and not _never(g["outage_since"][gw]) and ts > g["outage_since"][gw]:
                first = g["outage_back"][gw]          # feed.gateway_outage: the earliest reading back
                g["outage_back"][gw] = ts if _never(first) else min(first, ts)
            _codes, m["last_seen"], m["last_index"], m["last_use"], m["gateway"], g["last_seen"] = \
                apply_meter_readings([reading], m["last_seen"], m["last_index"], m["last_use"], m["gateway"],
                                     g["last_seen"])
        else:
            t = event[1]
            before = list(g["outage_since"])
            codes, g["outage_since"] = sweep_absence(t, gw_t.silent_after_s, g["last_seen"], g["outage_since"],
                                                     g["cadence"], g["count"], gw_t.missed_reports, g["gap"],
                                                     gw_t.gap_margin, gw_t.gap_ceiling_s)
            found += _episodes("feed.gateway_outage", gateway_keys, codes, g["outage_since"], before, t,
                               g["last_seen"])
            for gw, code in enumerate(codes):
                if code == CLEARED:   # the earliest reading after the outage began, whatever the arrival order
                    first = g["outage_back"][gw]
                    g["outage_ended"][gw] = g["last_seen"][gw] if _never(first) else first
                    g["outage_back"][gw] = nan
            before = list(m["silent_since"])
            codes, m["silent_since"] = sweep_meter_silent(t, silent_t.silent_after_s, m["last_seen"], m["gateway"],
                                                          g["outage_since"], m["silent_since"], m["cadence"],
                                                          m["count"], silent_t.missed_reports, m["gap"],
                                                          silent_t.gap_margin, silent_t.gap_ceiling_s,
                                                          g["outage_ended"])
            found += _episodes("water.meter_silent", meter_keys, codes, m["silent_since"], before, t, m["last_seen"])
            before = list(m["no_use_since"])
            codes, m["no_use_since"] = sweep_no_use(t, no_use_t.no_use_after_s, no_use_t.reporting_within_s,
                                                    m["last_seen"], m["last_use"], m["gateway"], g["outage_since"],
                                                    m["no_use_since"], m["cadence"], m["count"],
                                                    no_use_t.reporting_missed_reports)
            found += _episodes("water.no_use_24h", meter_keys, codes, m["no_use_since"], before, t, m["last_use"])
    return found + water_flow_reference(events, thresholds) + \
        naive_routine.routine_reference(events, thresholds)


def _episodes(detector, keys, codes, since_after, since_before, t, ended_by=None):
    """Raised at the sweep time; cleared at the time of what ended it when that is later."""
    result = []
    for slot, code in enumerate(codes):
        if code == RAISED:
            result.append((detector, keys[slot], "raised", since_after[slot], t))
        elif code == CLEARED:
            at = t if ended_by is None or not ended_by[slot] > t else ended_by[slot]
            result.append((detector, keys[slot], "cleared", since_before[slot], at))
    return result


#: domain name -> its reference; every domain in the registry must have one.
DOMAIN_REFERENCES = {"water": water_reference}


# --- lighting ---------------------------------------------------------------------------------------
#
# The sun by NOAA's spreadsheet equations, written out one step per line; sunrise and sunset found by
# scanning the day minute by minute and bisecting the crossing (not by the hour-angle formula the
# kernel uses). Detector references keep one dict per lamp.

LAMP, CABINET = 0.0, 1.0


def solar_elevation(t, latitude, longitude):
    """Geometric solar elevation (deg) at epoch t (s)."""
    if not math.isfinite(t):
        return float("nan")
    julian_day = t / 86400.0 + 2440587.5
    jc = (julian_day - 2451545.0) / 36525.0
    l0 = (280.46646 + jc * (36000.76983 + jc * 0.0003032)) % 360.0
    m = 357.52911 + jc * (35999.05029 - 0.0001537 * jc)
    e = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    rad, deg = math.radians, math.degrees
    c = (math.sin(rad(m)) * (1.914602 - jc * (0.004817 + 0.000014 * jc)) + math.sin(rad(2 * m)) * (0.019993 - 0.000101 * jc)
         + math.sin(rad(3 * m)) * 0.000289)
    true_longitude = l0 + c
    apparent_longitude = true_longitude - 0.00569 - 0.00478 * math.sin(rad(125.04 - 1934.136 * jc))
    mean_obliquity = 23 + (26 + ((21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813)))) / 60) / 60
    obliquity = mean_obliquity + 0.00256 * math.cos(rad(125.04 - 1934.136 * jc))
    declination = deg(math.asin(math.sin(rad(obliquity)) * math.sin(rad(apparent_longitude))))
    y = math.tan(rad(obliquity / 2)) ** 2
    eot = 4 * deg(y * math.sin(2 * rad(l0)) - 2 * e * math.sin(rad(m)) + 4 * e * y * math.sin(rad(m)) * math.cos(2 * rad(l0))
                  - 0.5 * y * y * math.sin(4 * rad(l0)) - 1.25 * e * e * math.sin(2 * rad(m)))
    minutes = (t % 86400.0) / 60.0
    true_solar_time = (minutes + eot + 4 * longitude) % 1440
    hour_angle = true_solar_time / 4 - 180
    cos_zenith = (math.sin(rad(latitude)) * math.sin(rad(declination))
                  + math.cos(rad(latitude)) * math.cos(rad(declination)) * math.cos(rad(hour_angle)))
    return 90 - deg(math.acos(max(-1.0, min(1.0, cos_zenith))))


def sun_times(day, latitude, longitude, horizon=-0.833):
    """(sunrise, sunset) epoch s of the UTC day containing ``day``; None where the sun does not cross."""
    midnight = day - day % 86400.0

    def above(t):
        return solar_elevation(t, latitude, longitude) > horizon

    def crossing(a, b):
        for _ in range(40):
            middle = (a + b) / 2
            if above(middle) == above(a):
                a = middle
            else:
                b = middle
        return (a + b) / 2

    sunrise = sunset = None
    for minute in range(1440):
        a, b = midnight + minute * 60.0, midnight + (minute + 1) * 60.0
        if not above(a) and above(b) and sunrise is None:
            sunrise = crossing(a, b)
        elif above(a) and not above(b) and sunset is None:
            sunset = crossing(a, b)
    return sunrise, sunset


def _below_both(t, margin, lat, lon, horizon):
    return solar_elevation(t - margin, lat, lon) < horizon and solar_elevation(t + margin, lat, lon) < horizon


def _above_both(t, margin, lat, lon, horizon):
    return solar_elevation(t - margin, lat, lon) > horizon and solar_elevation(t + margin, lat, lon) > horizon


def _lit(power, state, lit_above):
    if math.isfinite(power):
        return power >= lit_above
    if state == 1.0:
        return True
    if state == 0.0:
        return False
    return None


def lamp_failure(readings, lamps, th):
    """readings: list of (key, ts, kind, power); lamps: key -> dict state (updated). Returns
    (code, start) per reading."""
    out = []
    for key, ts, kind, power in readings:
        lamp = lamps.setdefault(key, {"last": None, "dark_since": None, "since": None})
        if kind != LAMP or not math.isfinite(ts) or (lamp["last"] is not None and ts <= lamp["last"]):
            out.append((NO_CHANGE, None))
            continue
        if lamp["last"] is not None and ts - lamp["last"] > th.max_gap_s:
            lamp["dark_since"] = None          # a missed report breaks the dark run
        lamp["last"] = ts
        if not math.isfinite(power):
            out.append((NO_CHANGE, None))
            continue
        if lamp["since"] is not None:
            if power >= th.dark_below_w:
                out.append((CLEARED, lamp["since"]))
                lamp["since"] = lamp["dark_since"] = None
            else:
                out.append((NO_CHANGE, None))
            continue
        if power < th.dark_below_w and _below_both(ts, th.night_margin_s, th.latitude_deg, th.longitude_deg,
                                                   th.horizon_deg):
            if lamp["dark_since"] is None:
                lamp["dark_since"] = ts
            if ts - lamp["dark_since"] >= th.confirm_s:
                lamp["since"] = lamp["dark_since"]
                out.append((RAISED, lamp["since"]))
                continue
        else:
            lamp["dark_since"] = None
        out.append((NO_CHANGE, None))
    return out


def day_burner(readings, lamps, th):
    """readings: list of (key, ts, kind, power, power_state)."""
    out = []
    for key, ts, kind, power, state in readings:
        lamp = lamps.setdefault(key, {"last": None, "lit_since": None, "since": None})
        if kind != LAMP or not math.isfinite(ts) or (lamp["last"] is not None and ts <= lamp["last"]):
            out.append((NO_CHANGE, None))
            continue
        lamp["last"] = ts
        lit = _lit(power, state, th.lit_above_w)
        if lit is None:
            out.append((NO_CHANGE, None))
            continue
        if lamp["since"] is not None:
            if not lit:
                out.append((CLEARED, lamp["since"]))
                lamp["since"] = lamp["lit_since"] = None
            else:
                out.append((NO_CHANGE, None))
            continue
        if lit and _above_both(ts, th.day_margin_s, th.latitude_deg, th.longitude_deg, th.horizon_deg):
            if lamp["lit_since"] is None:
                lamp["lit_since"] = ts
            if ts - lamp["lit_since"] >= th.confirm_s:
                lamp["since"] = lamp["lit_since"]
                out.append((RAISED, lamp["since"]))
                continue
        else:
            lamp["lit_since"] = None
        out.append((NO_CHANGE, None))
    return out


def power_out_of_range(readings, lamps, th):
    """readings: list of (key, ts, kind, power, rating, level)."""
    out = []
    for key, ts, kind, power, rating, level in readings:
        lamp = lamps.setdefault(key, {"last": None, "outside_since": None, "since": None})
        if kind != LAMP or not math.isfinite(ts) or (lamp["last"] is not None and ts <= lamp["last"]):
            out.append((NO_CHANGE, None))
            continue
        lamp["last"] = ts
        expected = rating * level
        if not (math.isfinite(power) and power >= th.lit_above_w and math.isfinite(expected) and expected > 0):
            lamp["outside_since"] = None
            out.append((NO_CHANGE, None))
            continue
        deviation = abs(power / expected - 1)
        if lamp["since"] is not None:
            if deviation <= th.clear_tolerance:
                out.append((CLEARED, lamp["since"]))
                lamp["since"] = lamp["outside_since"] = None
            else:
                out.append((NO_CHANGE, None))
            continue
        if deviation > th.tolerance:
            if lamp["outside_since"] is None:
                lamp["outside_since"] = ts
            if ts - lamp["outside_since"] >= th.confirm_s:
                lamp["since"] = lamp["outside_since"]
                out.append((RAISED, lamp["since"]))
                continue
        else:
            lamp["outside_since"] = None
        out.append((NO_CHANGE, None))
    return out


def cycling(readings, lamps, th):
    """readings: list of (key, ts, kind, power, power_state)."""
    out = []
    for key, ts, kind, power, state in readings:
        lamp = lamps.setdefault(key, {"last": None, "lit": None, "times": [], "last_transition": None,
                                      "since": None})
        if kind != LAMP or not math.isfinite(ts) or (lamp["last"] is not None and ts <= lamp["last"]):
            out.append((NO_CHANGE, None))
            continue
        lamp["last"] = ts
        lit = _lit(power, state, th.lit_above_w)
        if lit is not None:
            previous, lamp["lit"] = lamp["lit"], lit
            geo = (th.twilight_margin_s, th.latitude_deg, th.longitude_deg, th.horizon_deg)
            steady = _below_both(ts, *geo) or _above_both(ts, *geo)
            if previous is not None and lit != previous and steady:
                # the window's transitions: those since its opening (a window opens at a transition)
                if not lamp["times"] or ts - lamp["times"][0] > th.window_s:
                    lamp["times"] = []
                lamp["times"].append(ts)
                lamp["last_transition"] = ts
                if lamp["since"] is None and len(lamp["times"]) >= th.min_transitions:
                    lamp["since"] = lamp["times"][0]
                    out.append((RAISED, lamp["since"]))
                    continue
        if lamp["since"] is not None and ts - lamp["last_transition"] >= th.steady_for_s:
            out.append((CLEARED, lamp["since"]))
            lamp["since"] = None
            lamp["times"] = []
            continue
        out.append((NO_CHANGE, None))
    return out


def close_absence(readings, since):
    """readings: (slot, ts). Returns (codes, starts, since): a reading newer than an open episode's start
    closes it."""
    since = list(since)
    codes, starts = [], []
    for slot, ts in readings:
        if 0 <= slot < len(since) and math.isfinite(ts) and not _never(since[slot]) and ts > since[slot]:
            codes.append(CLEARED)
            starts.append(since[slot])
            since[slot] = float("nan")
        else:
            codes.append(NO_CHANGE)
            starts.append(float("nan"))
    return codes, starts, since


class Silence:
    """A domain whose cadence tracker owns ``last_seen`` (lighting, waste) and its absence detector;
    ``close_on_reading``: episodes close on the reading path (waste.silent), not in the sweep."""

    def __init__(self, detector, thresholds, close_on_reading=False):
        self.detector, self.th, self.close_on_reading = detector, thresholds, close_on_reading
        self.keys, self.index = [], {}
        self.last_seen, self.cadence, self.count, self.since, self.gap = [], [], [], [], []

    def reading(self, key, ts):
        """The episodes this reading closes (the tracker learns first, then the detector runs)."""
        if key not in self.index:
            self.index[key] = len(self.keys)
            self.keys.append(key)
            for column in (self.last_seen, self.cadence, self.since):
                column.append(float("nan"))
            self.count.append(0)
            self.gap.append(0.0)
        s = self.index[key]
        _codes, self.last_seen, self.cadence, self.count, self.gap = learn_cadence(
            [(s, ts)], self.last_seen, self.cadence, self.count, fold=True, gaps=self.gap)
        if not self.close_on_reading:
            return []
        codes, starts, self.since = close_absence([(s, ts)], self.since)
        return [(self.detector, key, "cleared", starts[0], ts)] if codes[0] == CLEARED else []

    def tick(self, t):
        before = list(self.since)
        codes, self.since = sweep_absence(t, self.th.silent_after_s, self.last_seen, self.since, self.cadence,
                                          self.count, self.th.missed_reports, self.gap, self.th.gap_margin,
                                          self.th.gap_ceiling_s)
        return _episodes(self.detector, self.keys, codes, self.since, before, t, self.last_seen)


def lighting_reference(events, thresholds):
    """The lighting domain's four lamp detectors and lighting.silent on an event stream (see water_reference)."""
    silence = Silence("lighting.silent", thresholds["lighting.silent"])
    detectors = {
        "lighting.lamp_failure": (lamp_failure, ("kind", "powerConsumption")),
        "lighting.day_burner": (day_burner, ("kind", "powerConsumption", "powerState")),
        "lighting.power_out_of_range": (power_out_of_range, ("kind", "powerConsumption", "powerRating",
                                                             "illuminanceLevel")),
        "lighting.cycling": (cycling, ("kind", "powerConsumption", "powerState")),
    }
    states = {name: {} for name in detectors}
    found = []
    for event in events:
        if event[0] != "reading":
            found += silence.tick(event[1])
            continue
        _, key, ts, columns, _groups = event
        found += silence.reading(key, ts)
        for name, (reference, fields) in detectors.items():
            [(code, start)] = reference([(key, ts, *(columns[f] for f in fields))], states[name], thresholds[name])
            if code == RAISED:
                found.append((name, key, "raised", start, ts))
            elif code == CLEARED:
                found.append((name, key, "cleared", start, ts))
    return found


DOMAIN_REFERENCES["lighting"] = lighting_reference


# --- waste ----------------------------------------------------------------------------------------

EMPTYING_DROP = 0.25
FILL_SLOPE_WINDOW = 6
SAME_LEVEL = 0.0005
STATUS_BURNING = 5


def _waste_fresh(last_ts, slot, ts):
    """(fresh?, new last_ts list): a reading counts only when newer than the bin's last one."""
    if not (0 <= slot < len(last_ts)) or not math.isfinite(ts):
        return False, last_ts
    if not _never(last_ts[slot]) and ts <= last_ts[slot]:
        return False, last_ts
    last_ts = list(last_ts)
    last_ts[slot] = ts
    return True, last_ts


def update_overflow(readings, raise_at, clear_below, last_ts, since):
    """readings: (slot, ts, fill). Returns (codes, starts, last_ts, since)."""
    since = list(since)
    codes, starts = [], []
    for slot, ts, fill in readings:
        fresh, last_ts = _waste_fresh(last_ts, slot, ts)
        code, start = NO_CHANGE, float("nan")
        if fresh and not math.isnan(fill):
            if _never(since[slot]):
                if fill >= raise_at:
                    since[slot], code, start = ts, RAISED, ts
            elif fill < clear_below:
                code, start, since[slot] = CLEARED, since[slot], float("nan")
        codes.append(code)
        starts.append(start)
    return codes, starts, last_ts, since


def update_fire(readings, fire_c, jump_c, jump_within_s, clear_c, last_ts, last_temp, last_temp_ts, since):
    """readings: (slot, ts, temperature, status code)."""
    last_temp, last_temp_ts, since = list(last_temp), list(last_temp_ts), list(since)
    codes, starts = [], []
    for slot, ts, temp, status in readings:
        fresh, last_ts = _waste_fresh(last_ts, slot, ts)
        code, start = NO_CHANGE, float("nan")
        if fresh:
            burning = status == STATUS_BURNING
            known = math.isfinite(temp)
            jumped = (known and not _never(last_temp[slot]) and ts - last_temp_ts[slot] <= jump_within_s
                      and temp - last_temp[slot] >= jump_c)
            hot = burning or (known and temp >= fire_c) or jumped
            if _never(since[slot]):
                if hot:
                    since[slot], code, start = ts, RAISED, ts
            elif not burning and known and temp <= clear_c:
                code, start, since[slot] = CLEARED, since[slot], float("nan")
            if known:
                last_temp[slot], last_temp_ts[slot] = temp, ts
        codes.append(code)
        starts.append(start)
    return codes, starts, last_ts, last_temp, last_temp_ts, since


def update_collection_late(readings, full_level, last_ts, prev_fill, full_since, late_since):
    """readings: (slot, ts, fill)."""
    prev_fill, full_since, late_since = list(prev_fill), list(full_since), list(late_since)
    codes, starts = [], []
    for slot, ts, fill in readings:
        fresh, last_ts = _waste_fresh(last_ts, slot, ts)
        code, start = NO_CHANGE, float("nan")
        if fresh and not math.isnan(fill):
            if not _never(prev_fill[slot]) and prev_fill[slot] - fill >= EMPTYING_DROP:
                full_since[slot] = float("nan")
                if not _never(late_since[slot]):
                    code, start, late_since[slot] = CLEARED, late_since[slot], float("nan")
            if _never(full_since[slot]) and fill >= full_level:
                full_since[slot] = ts
            prev_fill[slot] = fill
        codes.append(code)
        starts.append(start)
    return codes, starts, last_ts, prev_fill, full_since, late_since


def sweep_collection_late(watermark, late_after, full_since, late_since):
    late_since = list(late_since)
    codes = []
    for b, full in enumerate(full_since):
        code = NO_CHANGE
        if _never(late_since[b]) and not _never(full) and watermark - full >= late_after:
            late_since[b], code = full, RAISED
        codes.append(code)
    return codes, late_since


def _median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2.0


def fill_slope_and_level(times, levels):
    """Theil-Sen slope (fraction/s) and the robust level at the last time; (nan, nan) without a time span."""
    slopes = [(levels[b] - levels[a]) / (times[b] - times[a])
              for a in range(len(times)) for b in range(a + 1, len(times)) if times[b] - times[a] > 0.0]
    if not slopes:
        return float("nan"), float("nan")
    slope = _median(slopes)
    return slope, _median([levels[a] + slope * (times[-1] - times[a]) for a in range(len(times))])


def update_fill_forecast(readings, full_level, horizon_s, min_rate_per_s, min_readings, last_ts, prev_fill,
                         windows, since):
    """readings: (slot, ts, fill, next_collection); windows: per bin a list of (t, fill) since its last emptying."""
    prev_fill, since = list(prev_fill), list(since)
    windows = [list(w) for w in windows]
    codes, starts = [], []
    for slot, ts, fill, next_collection in readings:
        fresh, last_ts = _waste_fresh(last_ts, slot, ts)
        code, start = NO_CHANGE, float("nan")
        if fresh and not math.isnan(fill):
            if not _never(prev_fill[slot]) and prev_fill[slot] - fill >= EMPTYING_DROP:
                windows[slot] = []
                if not _never(since[slot]):
                    code, start, since[slot] = CLEARED, since[slot], float("nan")
            prev_fill[slot] = fill
            windows[slot] = (windows[slot] + [(ts, fill)])[-FILL_SLOPE_WINDOW:]
            until = next_collection - ts
            if (_never(since[slot]) and len(windows[slot]) >= min_readings and fill < full_level
                    and not math.isnan(until) and until > 0.0):
                slope, level = fill_slope_and_level([p[0] for p in windows[slot]], [p[1] for p in windows[slot]])
                if slope >= min_rate_per_s and slope > 0.0 and level < full_level:
                    to_full = (full_level - level) / slope
                    if to_full < until and to_full <= horizon_s:
                        since[slot], code, start = ts, RAISED, ts
        codes.append(code)
        starts.append(start)
    return codes, starts, last_ts, prev_fill, windows, since


def update_stuck_level(readings, stuck_readings, last_ts, prev_fill, run, run_start, since):
    """readings: (slot, ts, fill)."""
    prev_fill, run, run_start, since = list(prev_fill), list(run), list(run_start), list(since)
    codes, starts = [], []
    for slot, ts, fill in readings:
        fresh, last_ts = _waste_fresh(last_ts, slot, ts)
        code, start = NO_CHANGE, float("nan")
        if fresh and not math.isnan(fill):
            if not _never(prev_fill[slot]) and abs(fill - prev_fill[slot]) <= SAME_LEVEL:
                run[slot] += 1
            else:
                run[slot], run_start[slot] = 1, ts
            prev_fill[slot] = fill
            if _never(since[slot]):
                if run[slot] >= stuck_readings:
                    since[slot], code, start = run_start[slot], RAISED, run_start[slot]
            elif run[slot] == 1:
                code, start, since[slot] = CLEARED, since[slot], float("nan")
        codes.append(code)
        starts.append(start)
    return codes, starts, last_ts, prev_fill, run, run_start, since


def waste_reference(events, thresholds):
    over = thresholds["waste.overflow"]
    fire = thresholds["waste.fire"]
    late = thresholds["waste.collection_late"]
    fore = thresholds["waste.full_before_collection"]
    stuck = thresholds["waste.sensor_fault"]
    keys, index = [], {}
    nan = float("nan")
    s = {name: [] for name in ("o_ts", "o_since", "f_ts", "f_temp", "f_temp_ts", "f_since", "l_ts", "l_prev",
                               "l_full", "l_since", "c_ts", "c_prev", "c_since", "k_ts", "k_prev", "k_run",
                               "k_run_start", "k_since")}
    windows = []
    found = []
    silence = Silence("waste.silent", thresholds["waste.silent"], close_on_reading=True)
    for event in events:
        if event[0] == "reading":
            _, key, ts, columns, _groups = event
            found += silence.reading(key, ts)
            if key not in index:
                index[key] = len(keys)
                keys.append(key)
                for name in s:
                    s[name].append(0 if name == "k_run" else nan)
                windows.append([])
            b = index[key]
            fill, temp = columns["fillingLevel"], columns["temperature"]
            codes, starts, s["o_ts"], s["o_since"] = update_overflow(
                [(b, ts, fill)], over.raise_at, over.clear_below, s["o_ts"], s["o_since"])
            found += _reading_episodes("waste.overflow", key, codes, starts, ts)
            codes, starts, s["c_ts"], s["c_prev"], windows, s["c_since"] = update_fill_forecast(
                [(b, ts, fill, columns["nextCollectionEpoch"])], fore.full_level, fore.horizon_s,
                fore.min_rate_per_h / 3600.0, fore.min_readings, s["c_ts"], s["c_prev"], windows, s["c_since"])
            found += _reading_episodes("waste.full_before_collection", key, codes, starts, ts)
            codes, starts, s["f_ts"], s["f_temp"], s["f_temp_ts"], s["f_since"] = update_fire(
                [(b, ts, temp, columns["status"])], fire.fire_c, fire.jump_c, fire.jump_within_s, fire.clear_c,
                s["f_ts"], s["f_temp"], s["f_temp_ts"], s["f_since"])
            found += _reading_episodes("waste.fire", key, codes, starts, ts)
            codes, starts, s["l_ts"], s["l_prev"], s["l_full"], s["l_since"] = update_collection_late(
                [(b, ts, fill)], late.full_level, s["l_ts"], s["l_prev"], s["l_full"], s["l_since"])
            found += _reading_episodes("waste.collection_late", key, codes, starts, ts)
            codes, starts, s["k_ts"], s["k_prev"], s["k_run"], s["k_run_start"], s["k_since"] = update_stuck_level(
                [(b, ts, fill)], stuck.stuck_readings, s["k_ts"], s["k_prev"], s["k_run"], s["k_run_start"],
                s["k_since"])
            found += _reading_episodes("waste.sensor_fault", key, codes, starts, ts)
        else:
            t = event[1]
            before = list(s["l_since"])
            codes, s["l_since"] = sweep_collection_late(t, late.late_after_s, s["l_full"], s["l_since"])
            found += _episodes("waste.collection_late", keys, codes, s["l_since"], before, t)
            found += silence.tick(t)
    return found


def _reading_episodes(detector, key, codes, starts, ts):
    return [(detector, key, "raised" if code == RAISED else "cleared", start, ts)
            for code, start in zip(codes, starts) if code != NO_CHANGE]


DOMAIN_REFERENCES["waste"] = waste_reference


# --- water flow kernels (kernels/water_flow.py) ---------------------------------------------------------------
#
# Each takes readings as a list of tuples and the state as lists, and returns (codes, starts, *new state).

DEVICE_ALARMS = ("none", "leak", "burst", "dry", "reverse", "tamper")
NIGHT_BINS, NIGHT_HISTORY = 2, 7


def _meter_step(prev_ts, prev_index, s, ts, index):
    """Shared bookkeeping: None when the reading is unusable, first or stale; else (t0, rise)."""
    if not (0 <= s < len(prev_ts)) or not math.isfinite(ts) or not math.isfinite(index):
        return None
    if _never(prev_ts[s]):
        prev_ts[s], prev_index[s] = ts, index
        return None
    if ts <= prev_ts[s]:
        return None
    t0, rise = prev_ts[s], index - prev_index[s]
    prev_ts[s], prev_index[s] = ts, index
    return t0, rise


def continuous_flow(readings, continuous_after, max_interval, prev_ts, prev_index, flow_since, since):
    """readings: (slot, ts, index)."""
    prev_ts, prev_index, flow_since, since = list(prev_ts), list(prev_index), list(flow_since), list(since)
    codes, starts = [], []
    for s, ts, index in readings:
        code, start = NO_CHANGE, float("nan")
        step = _meter_step(prev_ts, prev_index, s, ts, index)
        if step is not None:
            t0, rise = step
            still = False
            if rise >= MIN_USE_M3:
                if ts - t0 > max_interval:
                    flow_since[s] = float("nan")
                elif _never(flow_since[s]):
                    flow_since[s] = t0
            elif rise <= -MIN_USE_M3:
                flow_since[s] = float("nan")
            else:
                still = True
                flow_since[s] = float("nan")
                if not _never(since[s]):
                    code, start, since[s] = CLEARED, since[s], float("nan")
            if not still and _never(since[s]) and not _never(flow_since[s]) and ts - flow_since[s] >= continuous_after:
                since[s] = flow_since[s]
                code, start = RAISED, since[s]
        codes.append(code)
        starts.append(start)
    return codes, starts, prev_ts, prev_index, flow_since, since


def burst(readings, share, min_duration, max_interval, prev_ts, prev_index, meter_nominal, high_since, since):
    """readings: (slot, ts, index, peak, nominal)."""
    prev_ts, prev_index, meter_nominal = list(prev_ts), list(prev_index), list(meter_nominal)
    high_since, since = list(high_since), list(since)
    codes, starts = [], []
    for s, ts, index, peak, nominal in readings:
        code, start = NO_CHANGE, float("nan")
        usable = 0 <= s < len(prev_ts) and math.isfinite(ts) and math.isfinite(index)
        if usable and math.isfinite(nominal) and nominal > 0:
            meter_nominal[s] = nominal
        step = _meter_step(prev_ts, prev_index, s, ts, index)
        if step is not None and not _never(meter_nominal[s]) and ts - step[0] <= max_interval:
            t0, volume = step
            limit = share * meter_nominal[s]
            high = volume >= limit * min(ts - t0, min_duration) / 3600.0 and (_never(peak) or peak >= limit)
            if high:
                if _never(high_since[s]):
                    high_since[s] = t0
                if _never(since[s]) and ts - high_since[s] >= min_duration:
                    since[s] = high_since[s]
                    code, start = RAISED, since[s]
            else:
                high_since[s] = float("nan")
                if not _never(since[s]):
                    code, start, since[s] = CLEARED, since[s], float("nan")
        codes.append(code)
        starts.append(start)
    return codes, starts, prev_ts, prev_index, meter_nominal, high_since, since


def backflow(readings, min_drop, replacement_drop, prev_ts, prev_index, since):
    """readings: (slot, ts, index)."""
    prev_ts, prev_index, since = list(prev_ts), list(prev_index), list(since)
    codes, starts = [], []
    for s, ts, index in readings:
        code, start = NO_CHANGE, float("nan")
        step = _meter_step(prev_ts, prev_index, s, ts, index)
        if step is not None:
            t0, rise = step
            drop = -rise
            if drop >= replacement_drop:
                pass
            elif drop >= min_drop:
                if _never(since[s]):
                    since[s] = t0
                    code, start = RAISED, t0
            elif not _never(since[s]):
                code, start, since[s] = CLEARED, since[s], float("nan")
        codes.append(code)
        starts.append(start)
    return codes, starts, prev_ts, prev_index, since


def device_alarm(readings, clear_after, last_ts, open_code, quiet, since):
    """readings: (slot, ts, alarm code or nan). Returns (events, *state): events per reading, a list of
    ("cleared", start) / ("raised", start) in that order."""
    last_ts, open_code, quiet, since = list(last_ts), list(open_code), list(quiet), list(since)
    events = []
    for s, ts, alarm in readings:
        happened = []
        if 0 <= s < len(last_ts) and math.isfinite(ts) and (_never(last_ts[s]) or ts > last_ts[s]):
            last_ts[s] = ts
            code = int(alarm) if (math.isfinite(alarm) and 1 <= alarm < len(DEVICE_ALARMS)
                                  and alarm == math.floor(alarm)) else 0
            if code == open_code[s]:
                quiet[s] = 0
            else:
                if code == 0:
                    quiet[s] += 1
                if code != 0 or quiet[s] >= clear_after:
                    if open_code[s] > 0:
                        happened.append(("cleared", since[s]))
                        since[s] = float("nan")
                    open_code[s], quiet[s] = code, 0
                    if code > 0:
                        since[s] = ts
                        happened.append(("raised", ts))
        events.append(happened)
    return events, last_ts, open_code, quiet, since


def night_flow_accumulate(readings, night_start, max_interval, prev_ts, prev_index, night, closed, flow_sum,
                          flow_count):
    """readings: (slot, ts, index, district slot). flow_sum / flow_count: per district, a list of NIGHT_BINS."""
    prev_ts, prev_index, night, closed = list(prev_ts), list(prev_index), list(night), list(closed)
    flow_sum, flow_count = [list(x) for x in flow_sum], [list(x) for x in flow_count]
    for s, ts, index, g in readings:
        step = _meter_step(prev_ts, prev_index, s, ts, index)
        if step is None:
            continue
        t0, rise = step
        dt = ts - t0
        if not (0 <= g < len(night)) or dt > max_interval or rise <= -MIN_USE_M3:
            continue
        middle = ts - dt / 2.0
        day = math.floor((middle - night_start) / 86400.0)
        offset = middle - night_start - day * 86400.0
        if offset >= NIGHT_BINS * 3600.0 or (not _never(closed[g]) and day <= closed[g]):
            continue
        if _never(night[g]) or day > night[g]:
            night[g] = float(day)
            flow_sum[g], flow_count[g] = [0.0] * NIGHT_BINS, [0.0] * NIGHT_BINS
        elif day < night[g]:
            continue
        b = int(offset // 3600.0)
        flow_sum[g][b] += max(rise, 0.0) * 3600.0 / dt
        flow_count[g][b] += 1.0
    return prev_ts, prev_index, night, closed, flow_sum, flow_count


def sweep_night_flow(watermark, night_start, close_after, min_meters, min_nights, rise_ratio, rise_margin,
                     night, closed, flow_sum, flow_count, history, since):
    """history: per district, the list of kept normal nights' MNF (oldest first, at most NIGHT_HISTORY)."""
    night, closed, since = list(night), list(closed), list(since)
    flow_sum, flow_count = [list(x) for x in flow_sum], [list(x) for x in flow_count]
    history = [list(h) for h in history]
    codes = []
    for g in range(len(night)):
        code = NO_CHANGE
        day = night[g]
        if not _never(day) and watermark >= day * 86400.0 + night_start + NIGHT_BINS * 3600.0 + close_after:
            means = [flow_sum[g][b] / flow_count[g][b] for b in range(NIGHT_BINS) if flow_count[g][b] >= min_meters]
            flow_sum[g], flow_count[g] = [0.0] * NIGHT_BINS, [0.0] * NIGHT_BINS
            closed[g], night[g] = day, float("nan")
            if means:
                minimum = min(means)
                keep = True
                if len(history[g]) >= min_nights:
                    level = statistics.median(history[g])
                    raise_at = level * rise_ratio + rise_margin
                    if _never(since[g]):
                        if minimum >= raise_at:
                            since[g], code, keep = day * 86400.0 + night_start, RAISED, False
                    elif minimum < (level + raise_at) / 2.0:
                        since[g], code = float("nan"), CLEARED
                    else:
                        keep = False
                if keep:
                    history[g] = (history[g] + [minimum])[-NIGHT_HISTORY:]
        codes.append(code)
    return codes, night, closed, flow_sum, flow_count, history, since


def water_flow_reference(events, thresholds):
    """The water flow detectors on the domain event stream (see water_reference)."""
    cf_t, bu_t = thresholds["water.continuous_flow"], thresholds["water.burst"]
    bf_t, da_t, nf_t = thresholds["water.backflow"], thresholds["water.device_alarm"], thresholds["water.night_flow"]
    nan = float("nan")
    keys, slot_of, districts, district_of = [], {}, [], {}
    m = {name: [] for name in ("cf_ts", "cf_x", "cf_flow", "cf_since", "bu_ts", "bu_x", "bu_q", "bu_high", "bu_since",
                               "bf_ts", "bf_x", "bf_since", "da_ts", "da_code", "da_quiet", "da_since",
                               "nf_ts", "nf_x")}
    d = {"night": [], "closed": [], "sum": [], "count": [], "history": [], "since": []}
    found = []
    for event in events:
        if event[0] == "reading":
            _, key, ts, columns, groups = event
            if key not in slot_of:
                slot_of[key] = len(keys)
                keys.append(key)
                for name in m:
                    m[name].append(0 if name in ("da_code", "da_quiet") else nan)
            district = groups.get("district")
            if district is not None and district not in district_of:
                district_of[district] = len(districts)
                districts.append(district)
                for name, fill in (("night", nan), ("closed", nan), ("since", nan)):
                    d[name].append(fill)
                d["sum"].append([0.0] * NIGHT_BINS)
                d["count"].append([0.0] * NIGHT_BINS)
                d["history"].append([])
            s, x = slot_of[key], columns["waterConsumption"]
            codes, starts, m["cf_ts"], m["cf_x"], m["cf_flow"], m["cf_since"] = continuous_flow(
                [(s, ts, x)], cf_t.continuous_after_s, cf_t.max_interval_s, m["cf_ts"], m["cf_x"], m["cf_flow"],
                m["cf_since"])
            found += _water_reading_episodes("water.continuous_flow", key, codes, starts, ts)
            codes, starts, m["bu_ts"], m["bu_x"], m["bu_q"], m["bu_high"], m["bu_since"] = burst(
                [(s, ts, x, columns["maxFlowLastHour"], columns["nominalFlow"])], bu_t.nominal_share,
                bu_t.min_duration_s, bu_t.max_interval_s, m["bu_ts"], m["bu_x"], m["bu_q"], m["bu_high"],
                m["bu_since"])
            found += _water_reading_episodes("water.burst", key, codes, starts, ts)
            codes, starts, m["bf_ts"], m["bf_x"], m["bf_since"] = backflow(
                [(s, ts, x)], bf_t.min_drop_m3, bf_t.replacement_drop_m3, m["bf_ts"], m["bf_x"], m["bf_since"])
            found += _water_reading_episodes("water.backflow", key, codes, starts, ts)
            (happened,), m["da_ts"], m["da_code"], m["da_quiet"], m["da_since"] = device_alarm(
                [(s, ts, columns["deviceAlarm"])], da_t.clear_after_readings, m["da_ts"], m["da_code"],
                m["da_quiet"], m["da_since"])
            found += [("water.device_alarm", key, state, start, ts) for state, start in happened]
            g = -1 if district is None else district_of[district]
            m["nf_ts"], m["nf_x"], d["night"], d["closed"], d["sum"], d["count"] = night_flow_accumulate(
                [(s, ts, x, g)], nf_t.night_start_s, nf_t.max_interval_s, m["nf_ts"], m["nf_x"], d["night"],
                d["closed"], d["sum"], d["count"])
        else:
            t = event[1]
            before = list(d["since"])
            codes, d["night"], d["closed"], d["sum"], d["count"], d["history"], d["since"] = sweep_night_flow(
                t, nf_t.night_start_s, nf_t.close_after_s, nf_t.min_meters, nf_t.min_nights, nf_t.rise_ratio,
                nf_t.rise_margin_m3h, d["night"], d["closed"], d["sum"], d["count"], d["history"], d["since"])
            found += _episodes("water.night_flow", districts, codes, d["since"], before, t)
    return found


def _water_reading_episodes(detector, key, codes, starts, ts):
    return [(detector, key, "raised" if code == RAISED else "cleared", start, ts)
            for code, start in zip(codes, starts) if code != NO_CHANGE]


# --- traffic (kernels/traffic.py) ------------------------------------------------------------------------
#
# Detector state as one dict per detector; readings as tuples; a sweep returns codes per detector.

READING_APPLIED, TRAFFIC_STALE, TRAFFIC_INVALID = 0, 4, 5
OCCUPANCY_LOG_OFFSET, SPEED_LOG_OFFSET_KMH = 0.02, 5.0


def _nan(x):
    return isinstance(x, float) and math.isnan(x)


def apply_traffic_readings(readings, last_seen, subject_segment, subject_position, last_occupancy):
    """readings: (slot, ts, segment_slot, position, occupancy). Returns (codes, *new state lists)."""
    last_seen, subject_segment = list(last_seen), list(subject_segment)
    subject_position, last_occupancy = list(subject_position), list(last_occupancy)
    codes = []
    for slot, ts, segment, position, occupancy in readings:
        if not 0 <= slot < len(last_seen) or not math.isfinite(ts):
            codes.append(TRAFFIC_INVALID)
        elif not _nan(last_seen[slot]) and ts <= last_seen[slot]:
            codes.append(TRAFFIC_STALE)
        else:
            last_seen[slot] = ts
            if segment >= 0:
                subject_segment[slot] = segment
            if math.isfinite(position):
                subject_position[slot] = position
            last_occupancy[slot] = occupancy
            codes.append(READING_APPLIED)
    return codes, last_seen, subject_segment, subject_position, last_occupancy


def update_stuck(readings, flat_after, impossible_after, state):
    """readings: (slot, ts, intensity, occupancy, speed); state: one dict per detector with keys
    last_ts, q, o, v, flat_since, impossible_since, since, ended (NaN = none). Returns (codes, starts, state)."""
    state = [dict(d) for d in state]
    codes, starts = [], []
    for slot, ts, q, o, v in readings:
        code, start = NO_CHANGE, float("nan")
        if 0 <= slot < len(state) and math.isfinite(ts) and (_nan(state[slot]["last_ts"])
                                                             or ts > state[slot]["last_ts"]):
            d = state[slot]
            same = lambda a, b: a == b or (_nan(a) and _nan(b))  # noqa: E731
            if not _nan(d["last_ts"]) and q > 0 and q == d["q"] and same(o, d["o"]) and same(v, d["v"]):
                if _nan(d["flat_since"]):
                    d["flat_since"] = d["last_ts"]
            else:
                d["flat_since"] = float("nan")
            if q == 0 and v > 0:
                if _nan(d["impossible_since"]):
                    d["impossible_since"] = ts
            else:
                d["impossible_since"] = float("nan")
            d["last_ts"], d["q"], d["o"], d["v"] = ts, q, o, v
            if _nan(d["since"]):
                if not _nan(d["flat_since"]) and ts - d["flat_since"] >= flat_after:
                    d["since"] = d["flat_since"]
                elif not _nan(d["impossible_since"]) and ts - d["impossible_since"] >= impossible_after:
                    d["since"] = d["impossible_since"]
                if not _nan(d["since"]):
                    code, start = RAISED, d["since"]
            elif _nan(d["flat_since"]) and _nan(d["impossible_since"]):
                code, start = CLEARED, d["since"]
                d["since"], d["ended"] = float("nan"), ts
        codes.append(code)
        starts.append(start)
    return codes, starts, state


def adjacent_downstream(subject_segment, subject_position, n_segments):
    """The detector at the smallest position beyond each one on its segment (lowest slot among lanes), or -1."""
    result = []
    for s, (g, p) in enumerate(zip(subject_segment, subject_position)):
        best = -1
        if 0 <= g < n_segments and not _nan(p):
            for other, (g2, p2) in enumerate(zip(subject_segment, subject_position)):
                if g2 == g and not _nan(p2) and p2 > p and (
                        best < 0 or (p2, other) < (subject_position[best], best)):
                    best = other
        result.append(best)
    return result


def sweep_incident(watermark, th, last_seen, subject_segment, subject_position, last_occupancy, stuck_since,
                   state, n_segments):
    """th: traffic.incident Thresholds; state: one dict per detector (congested, calm, since).
    Returns (codes, state, segment_open_since, segment_ended_now: {segment: watermark})."""
    state = [dict(d) for d in state]
    downstream = adjacent_downstream(subject_segment, subject_position, n_segments)
    codes, ended = [], {}
    for u, d in enumerate(downstream):
        congested = False
        if d >= 0:
            ou, od = last_occupancy[u], last_occupancy[d]
            if (watermark - last_seen[u] < th.fresh_within_s and watermark - last_seen[d] < th.fresh_within_s
                    and _nan(stuck_since[u]) and _nan(stuck_since[d]) and math.isfinite(ou) and math.isfinite(od)):
                congested = ou - od >= th.occupancy_difference and ou - od >= th.relative_difference * ou
        e, code = state[u], NO_CHANGE
        if _nan(e["since"]):
            if congested:
                if _nan(e["congested"]):
                    e["congested"] = watermark
                if watermark - e["congested"] >= th.persist_after_s:
                    e["since"], e["calm"], code = e["congested"], float("nan"), RAISED
            else:
                e["congested"] = float("nan")
        elif congested:
            e["calm"] = float("nan")
        else:
            if _nan(e["calm"]):
                e["calm"] = watermark
            if watermark - e["calm"] >= th.clear_after_s:
                e["since"] = e["congested"] = e["calm"] = float("nan")
                code = CLEARED
                if 0 <= subject_segment[u] < n_segments:
                    ended[subject_segment[u]] = watermark
        codes.append(code)
    open_since = [float("nan")] * n_segments
    for u, e in enumerate(state):
        g = subject_segment[u]
        if 0 <= g < n_segments and not _nan(e["since"]):
            open_since[g] = e["since"] if _nan(open_since[g]) else min(open_since[g], e["since"])
    return codes, state, open_since, ended


def traffic_channels(intensity, occupancy, speed):
    """One reading's three channels: sqrt(count), log(occupancy + offset), log(km/h + offset); NaN stays NaN."""
    return (math.sqrt(max(intensity, 0.0)) if not _nan(intensity) else float("nan"),
            math.log(max(occupancy, 0.0) + OCCUPANCY_LOG_OFFSET) if not _nan(occupancy) else float("nan"),
            math.log(max(speed, 0.0) + SPEED_LOG_OFFSET_KMH) if not _nan(speed) else float("nan"))


def traffic_reference(events, thresholds):
    inc_t, stuck_t = thresholds["traffic.incident"], thresholds["traffic.stuck"]
    silent_t, an_t = thresholds["traffic.silent"], thresholds["traffic.anomaly_score"]
    nan = float("nan")
    keys, index, segments = [], {}, {}
    last_seen, seg, pos, occ, silent_since = [], [], [], [], []
    cadence, cadence_count, gap = [], [], []
    stuck = []
    incident = []
    seg_ended = {}
    floors = (an_t.intensity_floor, an_t.occupancy_floor, an_t.speed_floor)
    series_th = naive_series.Thresholds(alert_score=an_t.alert_score, calm_score=an_t.calm_score, clip=an_t.clip,
                                        bin_rate=an_t.bin_rate, baseline_age=an_t.baseline_age_s)
    anomaly, quarantine, anomaly_since = [], [], []   # the series reference's slots; per detector
    segment_open = []
    found = []
    for event in events:
        if event[0] == "reading":
            _, key, ts, columns, groups = event
            if key not in index:
                index[key] = len(keys)
                keys.append(key)
                for column in (last_seen, pos, occ, silent_since, anomaly_since, cadence):
                    column.append(nan)
                seg.append(-1)
                cadence_count.append(0)
                gap.append(0.0)
                stuck.append({name: nan for name in ("last_ts", "q", "o", "v", "flat_since", "impossible_since",
                                                     "since", "ended")})
                incident.append({"congested": nan, "calm": nan, "since": nan})
                anomaly.append(naive_series.new_slot(3))
                quarantine.append(None)
            segment = groups.get("segment")
            if segment is not None and segment not in segments:
                segments[segment] = len(segments)
                segment_open.append(nan)
            s = index[key]
            q, o, v = columns["intensity"], columns["occupancy"], columns["averageVehicleSpeed"]
            _codes, _seen, cadence, cadence_count, gap = learn_cadence([(s, ts)], last_seen, cadence, cadence_count,
                                                                       gaps=gap)
            _codes, last_seen, seg, pos, occ = apply_traffic_readings(
                [(s, ts, -1 if segment is None else segments[segment], columns["positionAlongSegment"], o)],
                last_seen, seg, pos, occ)
            codes, starts, stuck = update_stuck([(s, ts, q, o, v)], stuck_t.flat_after_s, stuck_t.impossible_after_s,
                                                stuck)
            found += _reading_episodes("traffic.stuck", key, codes, starts, ts)
            # a mean speed over too few vehicles is not scored (the spread between vehicles, not the road)
            scored_v = v if not _nan(q) and q >= an_t.speed_min_vehicles else nan
            if q == 0 and not _nan(v) and v > 0:      # a speed with no vehicle: a fault, not traffic
                q_real = o_real = nan
            else:
                q_real, o_real = q, o
            if naive_series._is_newer(anomaly[s], ts):    # in place: this reference owns its slots
                naive_series.score_reading(anomaly[s], float(ts), traffic_channels(q_real, o_real, scored_v), floors,
                                           series_th, None if _nan(quarantine[s]) else quarantine[s])
        else:
            t = event[1]
            n_segments = len(segments)
            stuck_since = [d["since"] for d in stuck]
            before = [e["since"] for e in incident]
            codes, incident, segment_open, ended = sweep_incident(t, inc_t, last_seen, seg, pos, occ, stuck_since,
                                                                  incident, n_segments)
            seg_ended.update(ended)
            found += _episodes("traffic.incident", keys, codes, [e["since"] for e in incident], before, t)
            before = list(silent_since)
            codes, silent_since = sweep_absence(t, silent_t.silent_after_s, last_seen, silent_since, cadence,
                                                cadence_count, silent_t.missed_reports, gap, silent_t.gap_margin,
                                                silent_t.gap_ceiling_s)
            found += _episodes("traffic.silent", keys, codes, silent_since, before, t, last_seen)
            # quarantine: a stuck episode of the detector, or a congested pair / open incident on its segment
            queued = {seg[u] for u, e in enumerate(incident) if seg[u] >= 0
                      and (not _nan(e["congested"]) or not _nan(e["since"]))}
            quarantine = [stuck_since[u] if not _nan(stuck_since[u]) else (t if seg[u] in queued else None)
                          for u in range(len(anomaly))]
            # a run overlapping a stuck episode of the detector or an incident on its segment is theirs
            explained = []
            for u, slot in enumerate(anomaly):
                hot = nan if slot["hot_since"] is None else slot["hot_since"]
                g = seg[u]
                ended = seg_ended.get(g, nan)
                segment_busy = 0 <= g < n_segments and (not _nan(segment_open[g]) or (not _nan(ended) and ended >= hot))
                stuck_busy = not _nan(stuck_since[u]) or (not _nan(stuck[u]["ended"]) and stuck[u]["ended"] >= hot)
                explained.append(segment_busy or stuck_busy)
            before = list(anomaly_since)
            codes, since = naive_series.sweep_series_episodes(an_t.min_duration_s / an_t.interval_s,
                                                              an_t.calm_after_s / an_t.interval_s, anomaly, explained,
                                                              anomaly_since)
            anomaly_since = [nan if x is None else x for x in since]
            found += _episodes("traffic.anomaly_score", keys, codes, anomaly_since, before, t)
    return found


DOMAIN_REFERENCES["traffic"] = traffic_reference




# --- sweeps over many ticks: the single-tick references, one tick after another ------------------------

def over_ticks(step, ticks, since):
    """Sweep ``ticks`` one by one with ``step(t, since) -> (codes, since)``; returns the events
    ``(tick index, subject, "raised" | "cleared")`` in tick, then subject order, and the final ``since``."""
    events = []
    for k, t in enumerate(ticks):
        codes, since = step(t, since)
        events += [(k, s, "raised" if c == RAISED else "cleared") for s, c in enumerate(codes) if c != NO_CHANGE]
    return events, since


def night_seconds(a, b, latitude, longitude, horizon=-0.833, step=1.0):
    """Seconds of [a, b] with the sun below ``horizon``: the naive elevation sampled every ``step`` s
    (midpoint rule), with no assumption on how often the sun crosses."""
    if not (math.isfinite(a) and math.isfinite(b)) or b <= a:
        return 0.0
    n = max(1, int(math.ceil((b - a) / step)))
    width = (b - a) / n
    return sum(width for k in range(n) if solar_elevation(a + (k + 0.5) * width, latitude, longitude) < horizon)


def lighting_energy(readings, latitude, longitude, horizon=-0.833, max_gap_s=3600.0, step=1.0):
    """(used, full_power_night) J from ``readings``: dicts with lamp, ts, power, rating (None = absent),
    kind ("lamp" or "cabinet"), in arrival order. Keeps each lamp's newest lamp reading itself."""
    last = {}
    used = full = 0.0
    for r in readings:
        if r["kind"] != "lamp":
            continue
        prev = last.get(r["lamp"])
        if prev is not None and r["ts"] <= prev:
            continue                      # not new: a duplicate or out of order
        last[r["lamp"]] = r["ts"]
        if prev is None or r["ts"] - prev > max_gap_s or r["power"] is None or r["rating"] is None:
            continue
        used += r["power"] * (r["ts"] - prev)
        full += r["rating"] * night_seconds(prev, r["ts"], latitude, longitude, horizon, step)
    return used, full
