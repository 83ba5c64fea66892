"""The water domain: household meters reporting a cumulative index (m3).

Besides the index a reading may carry the peak flow of its interval
(``maxFlowLastHour``, m3/h), the meter's nominal flow Q3 (``nominalFlow``, m3/h),
its ``district`` (a group: night flow is judged per district) and the meter's own
alarm (``deviceAlarm``, codes in :data:`kernels.water_flow.DEVICE_ALARMS`).
"""

from __future__ import annotations

import numpy as np

import kernels
from streams.domains.base import Column, Domain
from streams.detectors._cadence import CadenceTracker
from streams.detectors.feed.gateway_outage import GatewayOutage
from streams.detectors.water.meter_silent import MeterSilent
from streams.detectors.water.no_use_24h import NoUse24h
from streams.detectors.water.continuous_flow import ContinuousFlow
from streams.detectors.water.burst import Burst
from streams.detectors.water.backflow import Backflow
from streams.detectors.water.night_flow import NightFlow
from streams.detectors.water.device_alarm import DeviceAlarm
from streams.detectors.water.routine_change import RoutineChange
from kernels.water_flow import DEVICE_ALARM_CODES

__all__ = ["WATER", "WaterTracker"]

NAN = np.nan


#: Per-reading facts the tracker hands the detectors (:func:`kernels.previous_readings`): whether a
#: reading is new (later than the meter's previous one), and the previous reading's time (s) and index (m3).
FACTS = (("new", np.bool_), ("prev_ts", np.float64), ("prev_index", np.float64))

#: Fields earlier releases kept per meter and detector, now the tracker's facts: dropped from restored
#: state (:func:`upgrade_state`), which takes the previous index from them first.
RETIRED_FIELDS = ("cf_prev_ts", "cf_prev_index", "bu_prev_ts", "bu_prev_index", "bf_prev_ts", "bf_prev_index",
                  "nf_prev_ts", "nf_prev_index", "da_last_ts")


class WaterTracker:
    """Shared meter state: last reading (time ``last_seen``, index ``reading_index``), the index of the
    last use (``last_index``: it moves only by MIN_USE_M3 or more, so a slow drip adds up to use), the
    last use, gateway, and the meters' and gateways' reporting cadence (learnt before a batch is folded
    in). Per reading it hands the detectors the meter's previous reading (``reading_facts``), so no
    detector keeps a copy of it."""

    subject_fields = (("last_seen", np.float64, NAN), ("last_index", np.float64, NAN),
                      ("last_use", np.float64, NAN), ("gateway", np.int32, -1), ("reading_index", np.float64, NAN))
    reading_facts = FACTS
    group_fields = {"gateway": (("last_seen", np.float64, NAN),)}
    cadence = CadenceTracker(groups=("gateway",))

    def prepare(self, state) -> None:
        state.subjects.ensure_all(self.subject_fields)
        state.group("gateway").ensure_all(self.group_fields["gateway"])
        self.cadence.prepare(state)

    def update(self, state, readings) -> dict:
        """Fold a time-sorted slice in; returns the per-reading facts (``reading_facts``) of its readings."""
        index = readings.columns["waterConsumption"]
        # before anything folds the slice in: previous readings from last_seen (read) and reading_index (folded)
        prev_ts, prev_index, new = kernels.previous_readings(readings.slots, readings.ts, state.subject("last_seen"),
                                                             index, state.subject("reading_index"))
        self.cadence.update(state, readings)
        kernels.apply_meter_readings(
            readings.slots, readings.ts, index, readings.groups["gateway"],
            state.subject("last_seen"), state.subject("last_index"), state.subject("last_use"),
            state.subject("gateway"), state.group_column("gateway", "last_seen"))
        return {"new": new, "prev_ts": prev_ts, "prev_index": prev_index}


def upgrade_state(state) -> None:
    """State restored from an earlier release: the meter's newest reading index from the detectors' old
    copies of it (so no interval is lost), ``water.continuous_flow``'s baseline marker from its own, then
    the old copies dropped (:data:`RETIRED_FIELDS`)."""
    table = state.subjects
    old = set(table.fields) & set(RETIRED_FIELDS)
    if not old:
        return
    if "reading_index" in table.fields:
        target = table.column("reading_index")
        for name in ("cf_prev_index", "bu_prev_index", "bf_prev_index", "nf_prev_index"):
            if name in old:
                missing = np.isnan(target)
                target[missing] = table.column(name)[missing]
    if "cf_prev_ts" in old and "cf_seen" in table.fields:
        table.column("cf_seen")[:] = ~np.isnan(table.column("cf_prev_ts"))
    table.drop(old)


def _simulate(**scenario):
    from streams.simulate import WaterScenario, simulate_water

    return simulate_water(WaterScenario(**scenario))


WATER = Domain(
    name="water", schema="water-reading", reading_type="WaterConsumptionObserved", subject_kind="water_meter",
    columns=(Column("waterConsumption"), Column("maxFlowLastHour"), Column("nominalFlow"),
             Column("deviceAlarm", codes=DEVICE_ALARM_CODES)),
    groups=(("district", "district"),),
    subject_pseudonym="wm",
    tracker=WaterTracker(),
    upgrade=upgrade_state,
    # gateways first: their outages hold back meter alerts; routine_change ships dormant (runs once activated)
    detectors=(GatewayOutage, MeterSilent, NoUse24h, ContinuousFlow, Burst, Backflow, NightFlow, DeviceAlarm,
               RoutineChange),
    incident_detectors={"no_use": "water.no_use_24h", "meter_silent": "water.meter_silent",
                        "gateway_outage": "feed.gateway_outage", "continuous_flow": "water.continuous_flow",
                        "burst": "water.burst", "backflow": "water.backflow", "night_flow": "water.night_flow",
                        "device_alarm": "water.device_alarm", "routine_change": "water.routine_change"},
    simulate=_simulate,
)
