"""Naive pure-Python references for every kernel: obviously right, slow on purpose.

Each function takes plain lists (None or float('nan') for "never") and returns new
lists instead of writing in place, so a test can compare it with the kernel.
"""

import math

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


def sweep_gateway_outage(watermark, silent_after, gateway_last_seen, outage_since):
    outage_since = list(outage_since)
    codes = []
    for g, seen in enumerate(gateway_last_seen):
        code = NO_CHANGE
        if not _never(seen):
            if _never(outage_since[g]):
                if watermark - seen >= silent_after:
                    outage_since[g], code = seen, RAISED
            elif seen > outage_since[g]:
                outage_since[g], code = float("nan"), CLEARED
        codes.append(code)
    return codes, outage_since


def _gateway_out(meter_gateway, gateway_outage_since, m):
    g = meter_gateway[m]
    return 0 <= g < len(gateway_outage_since) and not _never(gateway_outage_since[g])


def sweep_meter_silent(watermark, silent_after, last_seen, meter_gateway, gateway_outage_since, silent_since):
    silent_since = list(silent_since)
    codes = []
    for m, seen in enumerate(last_seen):
        code = NO_CHANGE
        if not _never(seen):
            if _never(silent_since[m]):
                if watermark - seen >= silent_after and not _gateway_out(meter_gateway, gateway_outage_since, m):
                    silent_since[m], code = seen, RAISED
            elif seen > silent_since[m]:
                silent_since[m], code = float("nan"), CLEARED
        codes.append(code)
    return codes, silent_since


def sweep_no_use(watermark, no_use_after, silent_after, last_seen, last_use, meter_gateway, gateway_outage_since,
                 no_use_since):
    no_use_since = list(no_use_since)
    codes = []
    for m, seen in enumerate(last_seen):
        code = NO_CHANGE
        used = last_use[m]
        if not _never(seen) and not _never(used):
            if _never(no_use_since[m]):
                if (watermark - seen < silent_after and watermark - used >= no_use_after
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
    m = {"last_seen": [], "last_index": [], "last_use": [], "gateway": [], "silent_since": [], "no_use_since": []}
    g = {"last_seen": [], "outage_since": []}
    found = []
    for event in events:
        if event[0] == "reading":
            _, key, ts, columns, groups = event
            if key not in meter_index:
                meter_index[key] = len(meter_keys)
                meter_keys.append(key)
                for name in m:
                    m[name].append(-1 if name == "gateway" else nan)
            gateway = groups.get("gateway")
            if gateway is not None and gateway not in gateway_index:
                gateway_index[gateway] = len(gateway_keys)
                gateway_keys.append(gateway)
                g["last_seen"].append(nan)
                g["outage_since"].append(nan)
            reading = (meter_index[key], ts, columns["waterConsumption"],
                       -1 if gateway is None else gateway_index[gateway])
            _codes, m["last_seen"], m["last_index"], m["last_use"], m["gateway"], g["last_seen"] = \
                apply_meter_readings([reading], m["last_seen"], m["last_index"], m["last_use"], m["gateway"],
                                     g["last_seen"])
        else:
            t = event[1]
            before = list(g["outage_since"])
            codes, g["outage_since"] = sweep_gateway_outage(t, gw_t.silent_after_s, g["last_seen"], g["outage_since"])
            found += _episodes("feed.gateway_outage", gateway_keys, codes, g["outage_since"], before, t)
            before = list(m["silent_since"])
            codes, m["silent_since"] = sweep_meter_silent(t, silent_t.silent_after_s, m["last_seen"], m["gateway"],
                                                          g["outage_since"], m["silent_since"])
            found += _episodes("water.meter_silent", meter_keys, codes, m["silent_since"], before, t)
            before = list(m["no_use_since"])
            codes, m["no_use_since"] = sweep_no_use(t, no_use_t.no_use_after_s, no_use_t.reporting_within_s,
                                                    m["last_seen"], m["last_use"], m["gateway"], g["outage_since"],
                                                    m["no_use_since"])
            found += _episodes("water.no_use_24h", meter_keys, codes, m["no_use_since"], before, t)
    return found


def _episodes(detector, keys, codes, since_after, since_before, t):
    result = []
    for slot, code in enumerate(codes):
        if code == RAISED:
            result.append((detector, keys[slot], "raised", since_after[slot], t))
        elif code == CLEARED:
            result.append((detector, keys[slot], "cleared", since_before[slot], t))
    return result


#: domain name -> its reference; every domain in the registry must have one.
DOMAIN_REFERENCES = {"water": water_reference}
