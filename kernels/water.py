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

from kernels._checks import _check, _check_writable, _out, _raised_at, _scalar_times, _ticks
from kernels._ticks import _first_elapsed, _first_not_before
from kernels.cadence import _NO_GAP, _silence_limit, cadence_arguments
from kernels.config import (
    APPLIED_BACKWARDS, APPLIED_FLAT, APPLIED_NEW, APPLIED_USE, CADENCE_MIN_INTERVALS, CLEARED, MIN_USE_M3, NJIT,
    NO_CHANGE, RAISED, REOPENED, SKIPPED_INVALID, SKIPPED_STALE,
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
def _suppressed_from(ticks, first, meter_gateway, gateway_outage_since, gateway_outage_opened, m):
    """The first tick index (>= ``first``) from which meter ``m``'s gateway is in an open outage, else
    ``len(ticks)``. ``gateway_outage_since`` is the gateways' state after their own sweep of the whole
    run; ``gateway_outage_opened`` (s per gateway) the tick that outage was raised at: open at a tick
    not before it. Empty, or NaN (an outage opened before the run, or state from before the field
    existed): open at every tick."""
    n = ticks.shape[0]
    g = meter_gateway[m]
    if g < 0 or g >= gateway_outage_since.shape[0] or np.isnan(gateway_outage_since[g]):
        return n
    if g >= gateway_outage_opened.shape[0]:
        return first
    return _first_not_before(ticks, first, gateway_outage_opened[g])


@njit(**NJIT)
def _returned_from(ticks, first, seen, meter_gateway, gateway_outage_ended, cadence, count, m):
    """The first tick index (>= ``first``) at which meter ``m`` is past its grace after its gateway's
    return from an outage: a meter that went quiet before its gateway came back has one learnt cadence
    of grace from that return, since its own first reading follows the gateway's first by up to a
    reporting interval (the gateway's first reading may be another meter's). No cadence: no grace."""
    g = meter_gateway[m]
    if g < 0 or g >= gateway_outage_ended.shape[0] or not gateway_outage_ended[g] > seen:
        return first
    if m >= cadence.shape[0] or count[m] < CADENCE_MIN_INTERVALS or np.isnan(cadence[m]):
        return first
    return _first_elapsed(ticks, first, gateway_outage_ended[g], cadence[m])


@njit(**NJIT)
def _sweep_meter_silent(ticks, silent_after, rule, last_seen, cadence, count, longest_gap, meter_gateway,
                        gateway_outage_since, gateway_outage_ended, gateway_outage_opened, silent_since, out,
                        raised_at):
    n = ticks.shape[0]
    for m in range(last_seen.shape[0]):
        out[m] = NO_CHANGE
        raised_at[m] = -1
        seen = last_seen[m]
        if n == 0 or np.isnan(seen):
            continue
        first = 0
        if not np.isnan(silent_since[m]):
            if not seen > silent_since[m]:
                continue
            silent_since[m] = np.nan
            out[m] = CLEARED
            first = 1
        k = _first_elapsed(ticks, first, seen, _silence_limit(silent_after, rule, cadence, count, longest_gap, m))
        k = max(k, _returned_from(ticks, first, seen, meter_gateway, gateway_outage_ended, cadence, count, m))
        if k < _suppressed_from(ticks, first, meter_gateway, gateway_outage_since, gateway_outage_opened, m):
            silent_since[m] = seen
            raised_at[m] = k
            out[m] = REOPENED if out[m] == CLEARED else RAISED


def _gateway_times(name, values, n_gateways):
    if values is None:
        return _NO_GAP
    _check(name, values, np.float64, n_gateways)
    return values


def sweep_meter_silent(ticks, silent_after, last_seen, meter_gateway, gateway_outage_since,
                       silent_since, out=None, *, cadence=None, cadence_count=None, missed_reports=0.0,
                       longest_gap=None, gap_margin=0.0, gap_ceiling=np.inf, gateway_outage_ended=None,
                       gateway_outage_opened=None, raised_at=None):
    """Open or close meter-silent episodes at each of the event times ``ticks`` (s) in turn (one time,
    or a strictly increasing float64 array with nothing folded in between).

    A meter with no reading for its silence limit opens an episode (``silent_since``
    = its last reading time) unless its gateway has an open outage; its next reading
    closes it. The limit is ``silent_after`` (s), or when longer ``missed_reports`` learnt cadences
    (``cadence`` s and ``cadence_count`` per meter, :func:`kernels.learn_cadence`) and, with
    ``longest_gap``, ``min(gap_margin x longest_gap, gap_ceiling)``. With ``gateway_outage_ended``
    (s per gateway, NaN = none) a meter that went quiet before its gateway came back from an outage
    has one learnt cadence of grace after that return (its own first reading follows the gateway's
    first by up to one reporting interval). The gateways' state is theirs after their sweep of the
    same ticks: ``gateway_outage_opened`` (s per gateway) is the tick an open outage was raised at,
    before which it does not hold the meter back (absent or NaN: from the first tick).
    Returns int8 per meter (NO_CHANGE, RAISED, CLEARED, REOPENED; ``raised_at`` as in
    :func:`kernels.sweep_absence`).
    """
    ticks = _ticks(ticks)
    silent_after = _scalar_times(silent_after)[0]
    _check("last_seen", last_seen, np.float64)
    m = last_seen.shape[0]
    _check("meter_gateway", meter_gateway, np.int32, m)
    _check("gateway_outage_since", gateway_outage_since, np.float64)
    _check("silent_since", silent_since, np.float64, m)
    _check_writable("silent_since", silent_since)
    cadence, cadence_count, longest_gap, rule = cadence_arguments(cadence, cadence_count, missed_reports, m,
                                                                  longest_gap, gap_margin, gap_ceiling)
    out = _out(out, m)
    raised_at = _raised_at(raised_at, m)
    gateways = gateway_outage_since.shape[0]
    gateway_outage_ended = _gateway_times("gateway_outage_ended", gateway_outage_ended, gateways)
    gateway_outage_opened = _gateway_times("gateway_outage_opened", gateway_outage_opened, gateways)
    _sweep_meter_silent(ticks, silent_after, rule, last_seen, cadence, cadence_count, longest_gap,
                        meter_gateway, gateway_outage_since, gateway_outage_ended, gateway_outage_opened,
                        silent_since, out, raised_at)
    return out


@njit(**NJIT)
def _sweep_no_use(ticks, no_use_after, silent_after, rule, last_seen, cadence, count, last_use,
                  meter_gateway, gateway_outage_since, gateway_outage_opened, no_use_since, out, raised_at):
    n = ticks.shape[0]
    for m in range(last_seen.shape[0]):
        out[m] = NO_CHANGE
        raised_at[m] = -1
        seen = last_seen[m]
        used = last_use[m]
        if n == 0 or np.isnan(seen) or np.isnan(used):
            continue
        first = 0
        if not np.isnan(no_use_since[m]):
            if not used > no_use_since[m]:
                continue
            no_use_since[m] = np.nan
            out[m] = CLEARED
            first = 1
        # "still reporting" judges by the cadence alone: a meter in one of its dropouts has no
        # readings to show use or its absence, so its longest gap does not stretch this
        stop = _first_elapsed(ticks, first, seen, _silence_limit(silent_after, rule, cadence, count, _NO_GAP, m))
        stop = min(stop, _suppressed_from(ticks, first, meter_gateway, gateway_outage_since, gateway_outage_opened,
                                          m))
        k = _first_elapsed(ticks, first, used, no_use_after)
        if k < stop:
            no_use_since[m] = used
            raised_at[m] = k
            out[m] = REOPENED if out[m] == CLEARED else RAISED


def sweep_no_use(ticks, no_use_after, silent_after, last_seen, last_use, meter_gateway,
                 gateway_outage_since, no_use_since, out=None, *, cadence=None, cadence_count=None,
                 missed_reports=0.0, gateway_outage_opened=None, raised_at=None):
    """Open or close no-use (welfare) episodes at each of the event times ``ticks`` (s) in turn (as
    :func:`sweep_meter_silent`).

    A meter that still reports (last reading younger than its silence limit: ``silent_after``
    s, or ``missed_reports`` learnt cadences when longer, as in :func:`sweep_meter_silent`)
    but whose index has not risen for ``no_use_after`` seconds opens an episode
    (``no_use_since`` = time of its last use), unless its gateway has an open outage
    (``gateway_outage_opened`` as in :func:`sweep_meter_silent`); the next rise of its index closes
    it. Returns int8 per meter (``raised_at`` as in :func:`kernels.sweep_absence`).
    """
    ticks = _ticks(ticks)
    no_use_after, silent_after = _scalar_times(no_use_after, silent_after)
    _check("last_seen", last_seen, np.float64)
    m = last_seen.shape[0]
    _check("last_use", last_use, np.float64, m)
    _check("meter_gateway", meter_gateway, np.int32, m)
    _check("gateway_outage_since", gateway_outage_since, np.float64)
    _check("no_use_since", no_use_since, np.float64, m)
    _check_writable("no_use_since", no_use_since)
    cadence, cadence_count, _gap, rule = cadence_arguments(cadence, cadence_count, missed_reports, m)
    out = _out(out, m)
    raised_at = _raised_at(raised_at, m)
    gateway_outage_opened = _gateway_times("gateway_outage_opened", gateway_outage_opened,
                                           gateway_outage_since.shape[0])
    _sweep_no_use(ticks, no_use_after, silent_after, rule, last_seen, cadence, cadence_count,
                  last_use, meter_gateway, gateway_outage_since, gateway_outage_opened, no_use_since, out, raised_at)
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
        sweep_no_use(np.array([0.0, 300.0]), 1.0, 1.0, f.copy(), f.copy(), i.copy(), f.copy(), f.copy(),
                     gateway_outage_opened=f.copy(), **learnt)
    sweep_meter_silent(np.array([0.0, 300.0]), 1.0, f.copy(), i.copy(), f.copy(), f.copy(), cadence=f.copy(),
                       cadence_count=i.copy(), missed_reports=1.0, longest_gap=np.zeros(1), gap_margin=1.0,
                       gap_ceiling=2.0, gateway_outage_ended=f.copy(), gateway_outage_opened=f.copy())
