"""Water kernels: per-batch meter state update and the three absence sweeps.

State is columnar, one float64/int32 array per field, indexed by a meter's slot
(or a gateway's slot). Times are epoch seconds (float64, UTC); indices are m3.
``NaN`` in a time array means "never" (never seen / no open episode).

Order of a sweep at watermark ``w``: gateways first (``kernels.absence.sweep_absence``),
then meters (``sweep_meter_silent``, ``sweep_no_use``) with the gateways'
outage state as suppression, so a gateway outage is one feed alert and not a
flood of per-meter alerts. A meter's silence limit is a fixed floor, or a few of its
learnt reporting cadences when that is longer (:mod:`kernels.cadence`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels._checks import _check, _check_writable, _out, _scalar_times
from kernels.cadence import _NO_GAP, _silence_limit, cadence_arguments
from kernels.config import (
    APPLIED_BACKWARDS, APPLIED_FLAT, APPLIED_NEW, APPLIED_USE, CADENCE_MIN_INTERVALS, CLEARED, MIN_USE_M3, NJIT,
    NO_CHANGE, RAISED, SKIPPED_INVALID, SKIPPED_STALE,
)

__all__ = ["apply_meter_readings", "sweep_meter_silent", "sweep_no_use", "warm_up"]


# --- readings ------------------------------------------------------------------------------

@njit(**NJIT)
def _apply_meter_readings(slot, ts, index, gateway_slot,
                          last_seen, last_index, last_use, meter_gateway, gateway_last_seen, out):
    n_meters = last_seen.shape[0]
    n_gateways = gateway_last_seen.shape[0]
    for i in range(slot.shape[0]):
        s = slot[i]
        t = ts[i]
        x = index[i]
        if s < 0 or s >= n_meters or not np.isfinite(t) or not np.isfinite(x):
            out[i] = SKIPPED_INVALID
            continue
        g = gateway_slot[i]
        if g >= 0 and g < n_gateways:
            meter_gateway[s] = g
            if not (gateway_last_seen[g] >= t):  # NaN-aware "t is newer"
                gateway_last_seen[g] = t
        if np.isnan(last_seen[s]):
            last_seen[s] = t
            last_index[s] = x
            last_use[s] = t
            out[i] = APPLIED_NEW
        elif t <= last_seen[s]:
            out[i] = SKIPPED_STALE
        else:
            last_seen[s] = t
            if x >= last_index[s] + MIN_USE_M3:
                last_use[s] = t
                last_index[s] = x
                out[i] = APPLIED_USE
            elif x <= last_index[s] - MIN_USE_M3:
                last_index[s] = x
                out[i] = APPLIED_BACKWARDS
            else:
                out[i] = APPLIED_FLAT


def apply_meter_readings(slot, ts, index, gateway_slot,
                         last_seen, last_index, last_use, meter_gateway, gateway_last_seen, out=None):
    """Fold a batch of readings, in the order given, into the meters' state.

    Parameters (one element per reading): ``slot`` int32 meter slot; ``ts`` float64
    event time (s); ``index`` float64 cumulative index (m3); ``gateway_slot`` int32
    (-1 = no gateway). State (one element per meter / gateway, updated in place):
    ``last_seen`` (s), ``last_index`` (m3), ``last_use`` (s, time of the last reading
    whose index rose), ``meter_gateway`` (int32 slot), ``gateway_last_seen`` (s).

    Returns ``out`` (int8 per reading): a code from :mod:`kernels.config`
    (APPLIED_USE, APPLIED_FLAT, APPLIED_NEW, APPLIED_BACKWARDS, SKIPPED_STALE,
    SKIPPED_INVALID). Callers sort a batch by ``ts`` first so that event time, not
    arrival order, decides.
    """
    _check("slot", slot, np.int32)
    n = slot.shape[0]
    _check("ts", ts, np.float64, n)
    _check("index", index, np.float64, n)
    _check("gateway_slot", gateway_slot, np.int32, n)
    _check("last_seen", last_seen, np.float64)
    m = last_seen.shape[0]
    _check("last_index", last_index, np.float64, m)
    _check("last_use", last_use, np.float64, m)
    _check("meter_gateway", meter_gateway, np.int32, m)
    _check("gateway_last_seen", gateway_last_seen, np.float64)
    for name, arr in (("last_seen", last_seen), ("last_index", last_index), ("last_use", last_use),
                      ("meter_gateway", meter_gateway), ("gateway_last_seen", gateway_last_seen)):
        _check_writable(name, arr)
    if out is None:
        out = np.empty(n, dtype=np.int8)
    else:
        _check("out", out, np.int8, n)
    _apply_meter_readings(slot, ts, index, gateway_slot,
                          last_seen, last_index, last_use, meter_gateway, gateway_last_seen, out)
    return out


# --- sweeps -----------------------------------------------------------------------------------

@njit(**NJIT)
def _suppressed(meter_gateway, gateway_outage_since, m):
    g = meter_gateway[m]
    return g >= 0 and g < gateway_outage_since.shape[0] and not np.isnan(gateway_outage_since[g])


@njit(**NJIT)
def _gateway_returning(watermark, seen, meter_gateway, gateway_outage_ended, cadence, count, m):
    """True while a meter that went quiet before its gateway came back from an outage is within one
    learnt cadence of that return: its own first reading follows the gateway's first by up to a
    reporting interval (the gateway's first reading may be another meter's). No cadence: no grace."""
    g = meter_gateway[m]
    if g < 0 or g >= gateway_outage_ended.shape[0] or not gateway_outage_ended[g] > seen:
        return False
    if m >= cadence.shape[0] or count[m] < CADENCE_MIN_INTERVALS:
        return False
    return watermark - gateway_outage_ended[g] < cadence[m]   # NaN cadence: False


@njit(**NJIT)
def _sweep_meter_silent(watermark, silent_after, rule, last_seen, cadence, count, longest_gap, meter_gateway,
                        gateway_outage_since, gateway_outage_ended, silent_since, out):
    for m in range(last_seen.shape[0]):
        out[m] = NO_CHANGE
        seen = last_seen[m]
        if np.isnan(seen):
            continue
        if np.isnan(silent_since[m]):
            if (watermark - seen >= _silence_limit(silent_after, rule, cadence, count, longest_gap, m)
                    and not _gateway_returning(watermark, seen, meter_gateway, gateway_outage_ended, cadence, count,
                                               m)
                    and not _suppressed(meter_gateway, gateway_outage_since, m)):
                silent_since[m] = seen
                out[m] = RAISED
        elif seen > silent_since[m]:
            silent_since[m] = np.nan
            out[m] = CLEARED


def sweep_meter_silent(watermark, silent_after, last_seen, meter_gateway, gateway_outage_since,
                       silent_since, out=None, *, cadence=None, cadence_count=None, missed_reports=0.0,
                       longest_gap=None, gap_margin=0.0, gap_ceiling=np.inf, gateway_outage_ended=None):
    """Open or close meter-silent episodes at event time ``watermark`` (s).

    A meter with no reading for its silence limit opens an episode (``silent_since``
    = its last reading time) unless its gateway has an open outage; its next reading
    closes it. The limit is ``silent_after`` (s), or when longer ``missed_reports`` learnt cadences
    (``cadence`` s and ``cadence_count`` per meter, :func:`kernels.learn_cadence`) and, with
    ``longest_gap``, ``min(gap_margin x longest_gap, gap_ceiling)``. With ``gateway_outage_ended``
    (s per gateway, NaN = none) a meter that went quiet before its gateway came back from an outage
    has one learnt cadence of grace after that return (its own first reading follows the gateway's
    first by up to one reporting interval). Returns int8 per meter.
    """
    watermark, silent_after = _scalar_times(watermark, silent_after)
    _check("last_seen", last_seen, np.float64)
    m = last_seen.shape[0]
    _check("meter_gateway", meter_gateway, np.int32, m)
    _check("gateway_outage_since", gateway_outage_since, np.float64)
    _check("silent_since", silent_since, np.float64, m)
    _check_writable("silent_since", silent_since)
    cadence, cadence_count, longest_gap, rule = cadence_arguments(cadence, cadence_count, missed_reports, m,
                                                                  longest_gap, gap_margin, gap_ceiling)
    out = _out(out, m)
    if gateway_outage_ended is None:
        gateway_outage_ended = _NO_GAP
    else:
        _check("gateway_outage_ended", gateway_outage_ended, np.float64, gateway_outage_since.shape[0])
    _sweep_meter_silent(watermark, silent_after, rule, last_seen, cadence, cadence_count, longest_gap,
                        meter_gateway, gateway_outage_since, gateway_outage_ended, silent_since, out)
    return out


@njit(**NJIT)
def _sweep_no_use(watermark, no_use_after, silent_after, rule, last_seen, cadence, count, last_use,
                  meter_gateway, gateway_outage_since, no_use_since, out):
    for m in range(last_seen.shape[0]):
        out[m] = NO_CHANGE
        seen = last_seen[m]
        used = last_use[m]
        if np.isnan(seen) or np.isnan(used):
            continue
        if np.isnan(no_use_since[m]):
            # "still reporting" judges by the cadence alone: a meter in one of its dropouts has no
            # readings to show use or its absence, so its longest gap does not stretch this
            still_reporting = watermark - seen < _silence_limit(silent_after, rule, cadence, count, _NO_GAP, m)
            if (still_reporting and watermark - used >= no_use_after
                    and not _suppressed(meter_gateway, gateway_outage_since, m)):
                no_use_since[m] = used
                out[m] = RAISED
        elif used > no_use_since[m]:
            no_use_since[m] = np.nan
            out[m] = CLEARED


def sweep_no_use(watermark, no_use_after, silent_after, last_seen, last_use, meter_gateway,
                 gateway_outage_since, no_use_since, out=None, *, cadence=None, cadence_count=None,
                 missed_reports=0.0):
    """Open or close no-use (welfare) episodes at event time ``watermark`` (s).

    A meter that still reports (last reading younger than its silence limit: ``silent_after``
    s, or ``missed_reports`` learnt cadences when longer, as in :func:`sweep_meter_silent`)
    but whose index has not risen for ``no_use_after`` seconds opens an episode
    (``no_use_since`` = time of its last use), unless its gateway has an open outage; the
    next rise of its index closes it. Returns int8 per meter.
    """
    watermark, no_use_after = _scalar_times(watermark, no_use_after)
    silent_after = _scalar_times(silent_after)[0]
    _check("last_seen", last_seen, np.float64)
    m = last_seen.shape[0]
    _check("last_use", last_use, np.float64, m)
    _check("meter_gateway", meter_gateway, np.int32, m)
    _check("gateway_outage_since", gateway_outage_since, np.float64)
    _check("no_use_since", no_use_since, np.float64, m)
    _check_writable("no_use_since", no_use_since)
    cadence, cadence_count, _gap, rule = cadence_arguments(cadence, cadence_count, missed_reports, m)
    out = _out(out, m)
    _sweep_no_use(watermark, no_use_after, silent_after, rule, last_seen, cadence, cadence_count,
                  last_use, meter_gateway, gateway_outage_since, no_use_since, out)
    return out


def warm_up() -> None:
    """Compile (or load from cache) every kernel on tiny inputs, before data waits."""
    f = np.full(1, np.nan)
    i = np.zeros(1, dtype=np.int32)
    apply_meter_readings(i, np.zeros(1), np.zeros(1), i.copy(), f.copy(), f.copy(), f.copy(), i.copy(), f.copy())
    for learnt in ({}, {"cadence": f.copy(), "cadence_count": i.copy(), "missed_reports": 1.0}):
        sweep_meter_silent(0.0, 1.0, f.copy(), i.copy(), f.copy(), f.copy(), **learnt)
        if learnt:
            sweep_meter_silent(0.0, 1.0, f.copy(), i.copy(), f.copy(), f.copy(), longest_gap=np.zeros(1),
                               gap_margin=1.0, gap_ceiling=2.0, gateway_outage_ended=f.copy(), **learnt)
        sweep_no_use(0.0, 1.0, 1.0, f.copy(), f.copy(), i.copy(), f.copy(), f.copy(), **learnt)
