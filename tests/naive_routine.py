"""Naive pure-Python reference of the household routine kernel (kernels/routine.py), slow on purpose.

One dict per meter; readings as (slot, ts, index) tuples; shares as plain lists. Written from the
rule in the kernel's docstring, not from its code.
"""

import math

NO_CHANGE, RAISED, CLEARED = 0, 1, 2
MIN_USE_M3 = 0.0005
DAY_S = 86400.0
BIN_S = 14400.0
BINS = 6


def new_meter():
    return {"prev": None, "day": None, "covered": 0.0, "today": [0.0] * BINS, "usual": [0.0] * BINS,
            "recent": [0.0] * BINS, "days": 0, "spread_n": 0, "spread_mean": 0.0, "spread_square": 0.0,
            "run": 0, "run_start": None, "since": None}


def hellinger(p, q):
    overlap = 0.0
    for a, b in zip(p, q):
        overlap += math.sqrt(a * b)
    return math.sqrt(max(0.0, 1.0 - overlap))


def judge_day(m, th):
    """Close the meter's gathered day: (code, episode start or None, distance or None)."""
    total = 0.0
    for v in m["today"]:
        total += v
    if m["covered"] < th["min_coverage"] or total < th["min_daily_use"] or total <= 0.0:
        return NO_CHANGE, None, None
    shares = [v / total for v in m["today"]]
    if m["days"] == 0:
        m["recent"] = list(shares)
    else:
        m["recent"] = [(1.0 - th["recent_weight"]) * r + th["recent_weight"] * p for r, p in zip(m["recent"], shares)]
    code, start, distance = NO_CHANGE, None, None
    if m["days"] >= th["spread_after"]:
        distance = hellinger(m["recent"], m["usual"])
        mean = m["spread_mean"]
        sd = math.sqrt(max(m["spread_square"] - mean * mean, 0.0))
        judged = m["days"] >= th["warmup"]
        unusual = judged and distance > th["min_distance"] and distance > mean + th["unusual_spread"] * sd
        if not unusual:
            w = max(1.0 / (m["spread_n"] + 1), 1.0 / th["spread_days"])
            m["spread_mean"] = (1.0 - w) * mean + w * distance
            m["spread_square"] = (1.0 - w) * m["spread_square"] + w * distance * distance
            m["spread_n"] += 1
        if judged and unusual:
            if m["run"] == 0:
                m["run_start"] = m["day"] * DAY_S
            m["run"] += 1
            if m["run"] >= th["consecutive"] and m["since"] is None:
                m["since"] = m["run_start"]
                code, start = RAISED, m["since"]
        elif judged:
            m["run"], m["run_start"] = 0, None
            if m["since"] is not None:
                code, start = CLEARED, m["since"]
                m["since"] = None
    episode_day = m["since"] is not None        # a day of an open episode: not learnt, unless adapted to
    if episode_day and m["run"] >= th["adapt"]:
        m["usual"] = list(m["recent"])
    if not episode_day:
        alpha = 1.0 - 2.0 ** (-1.0 / th["half_life"])
        w = max(1.0 / (m["days"] + 1), alpha)
        m["usual"] = [(1.0 - w) * u + w * p for u, p in zip(m["usual"], shares)]
        m["days"] += 1
    return code, start, distance


def fold(m, ts, index, th):
    """One reading of one meter: (code, start, distance); code NO_CHANGE and None when nothing happened."""
    if not (math.isfinite(ts) and math.isfinite(index)):
        return NO_CHANGE, None, None
    if m["prev"] is None:
        m["prev"] = (ts, index)
        m["day"], m["covered"], m["today"] = math.floor(ts / DAY_S), 0.0, [0.0] * BINS
        return NO_CHANGE, None, None
    t0, x0 = m["prev"]
    if ts <= t0:
        return NO_CHANGE, None, None
    m["prev"] = (ts, index)
    interval = ts - t0
    middle = ts - interval / 2.0
    usable = interval <= th["max_interval"] and index - x0 > -MIN_USE_M3

    def file():
        if usable and math.floor(middle / DAY_S) == m["day"]:
            b = min(int((middle - m["day"] * DAY_S) // BIN_S), BINS - 1)
            m["today"][b] += max(index - x0, 0.0)
            m["covered"] += interval

    file()
    result = (NO_CHANGE, None, None)
    if ts >= (m["day"] + 1) * DAY_S:
        result = judge_day(m, th)
        m["day"], m["covered"], m["today"] = math.floor(ts / DAY_S), 0.0, [0.0] * BINS
        file()
    return result


def routine_change(readings, meters, th):
    """readings: (slot, ts, index); meters: a list of meter dicts (new_meter()), changed in place.
    Returns per reading (code, start or nan, distance or nan)."""
    nan = float("nan")
    out = []
    for s, ts, index in readings:
        if not 0 <= s < len(meters):
            out.append((NO_CHANGE, nan, nan))
            continue
        code, start, distance = fold(meters[s], ts, index, th)
        out.append((code, nan if start is None else start, nan if distance is None else distance))
    return out


def thresholds_of(t) -> dict:
    """The kernel's arguments from a water.routine_change Thresholds instance."""
    return {"half_life": t.half_life_days, "warmup": t.warmup_days, "spread_after": t.spread_after_days,
            "recent_weight": t.recent_weight, "spread_days": t.spread_days, "unusual_spread": t.unusual_spread,
            "min_distance": t.min_distance, "consecutive": t.consecutive_days, "adapt": t.adapt_days,
            "min_daily_use": t.min_daily_use_m3,
            "min_coverage": t.min_coverage_s, "max_interval": t.max_interval_s}


def routine_reference(events, thresholds):
    """water.routine_change on the domain event stream (see tests/naive.py water_reference)."""
    th = thresholds_of(thresholds["water.routine_change"])
    meters = {}
    found = []
    for event in events:
        if event[0] != "reading":
            continue
        _, key, ts, columns, _groups = event
        m = meters.setdefault(key, new_meter())
        code, start, _distance = fold(m, ts, columns["waterConsumption"], th)
        if code != NO_CHANGE:
            found.append(("water.routine_change", key, "raised" if code == RAISED else "cleared", start, ts))
    return found
