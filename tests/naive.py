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
