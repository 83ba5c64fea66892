"""The waste domain: street bins (Smart Data Models ``WasteContainer``) reporting their fill level.

Readings arrive hourly or two-hourly per bin, batched per district gateway; the Kafka
key is the district, so one district's bins share a partition. Columns:

- ``fillingLevel``: fraction 0-1 of the bin's height (ultrasonic level sensor).
- ``temperature``: degC inside the bin.
- ``status``: the model's status enum as a code of ``kernels.config.WASTE_STATUS_CODES``.
- ``nextCollectionEpoch``: the bin's pending scheduled collection, epoch seconds (a glasscity
  addition; the model's ``dateLastEmptying`` string is carried but not needed: an emptying is
  read from the level itself, a fall of at least ``EMPTYING_DROP`` between two readings).

Bin ids are not personal data: no pseudonymisation.
"""

from __future__ import annotations

import numpy as np

import kernels
from kernels.config import WASTE_STATUS_CODES
from streams.detectors.waste.collection_late import CollectionLate
from streams.detectors.waste.fire import Fire
from streams.detectors.waste.full_before_collection import FullBeforeCollection
from streams.detectors.waste.overflow import Overflow
from streams.detectors.waste.sensor_fault import SensorFault
from streams.detectors.waste.silent import WasteSilent
from streams.detectors._cadence import CadenceTracker
from streams.domains.base import Column, Domain, FactsTracker

__all__ = ["WASTE", "WasteTracker"]

#: Per-reading facts the tracker hands the detectors (:func:`kernels.previous_readings`): whether a reading
#: is new (later than the bin's previous one) and the fill level of the bin's newest earlier reading with one.
FACTS = (("new", np.bool_), ("prev_fill", np.float64))

#: Fields earlier releases kept per bin and detector, now the tracker's: dropped from restored state
#: (:func:`upgrade_state`), which takes the bin's last fill level from them first.
RETIRED_FIELDS = ("stuck_last_ts", "stuck_prev_fill", "overflow_last_ts", "forecast_last_ts", "forecast_prev_fill",
                  "fire_last_ts", "late_last_ts", "late_prev_fill")
_RETIRED_FILLS = ("stuck_prev_fill", "forecast_prev_fill", "late_prev_fill")


class WasteTracker(FactsTracker):
    """Shared bin state: the newest reading's time (``last_seen``, with the reporting cadence that
    ``waste.silent`` reads) and the last fill level reported (``last_fill``). Per reading it hands the
    detectors whether the reading is new and the bin's previous fill level (``reading_facts``), so no
    detector keeps a copy of them.

    A reading is new when it is later than the bin's newest one, whatever it carries; the previous fill
    is that of the newest earlier new reading that had a fill level (as each detector kept it)."""

    subject_fields = (("last_fill", np.float64, np.nan),)
    reading_facts = FACTS
    cadence = CadenceTracker(owns_last_seen=True)

    def facts(self, state, readings) -> dict:
        # last_seen is read here (the cadence tracker folds it afterwards); last_fill is folded here
        _prev_ts, prev_fill, new = kernels.previous_readings(
            readings.slots, readings.ts, state.subject("last_seen"), readings.columns["fillingLevel"],
            state.subject("last_fill"), value_required=False, finite_values=True)
        return {"new": new, "prev_fill": prev_fill}


def upgrade_state(state) -> None:
    """State restored from an earlier release: the bin's last fill level from the detectors' old copies of
    it (all equal: each took every new reading's finite fill), then the old copies dropped
    (:data:`RETIRED_FIELDS`; their ``*_last_ts`` equal the tracker's ``last_seen``)."""
    state.subjects.retire(RETIRED_FIELDS, into="last_fill", sources=_RETIRED_FILLS)


def _simulate(**scenario):
    from streams.simulate.waste import WasteScenario, simulate_waste

    return simulate_waste(WasteScenario(**scenario))


WASTE = Domain(
    name="waste", schema="waste-reading", reading_type="WasteContainer", subject_kind="waste_container",
    columns=(Column("fillingLevel"), Column("temperature"), Column("status", codes=WASTE_STATUS_CODES),
             Column("nextCollectionEpoch")),
    # every bin's newest reading and reporting cadence (waste.silent reads them), its last fill level, and
    # per reading the facts the detectors share (new, prev_fill)
    tracker=WasteTracker(),
    upgrade=upgrade_state,
    detectors=(Overflow, FullBeforeCollection, Fire, CollectionLate, SensorFault, WasteSilent),
    incident_detectors={"overflow": "waste.overflow", "full_before_collection": "waste.full_before_collection",
                        "fire": "waste.fire", "collection_late": "waste.collection_late",
                        "sensor_fault": "waste.sensor_fault", "silent": "waste.silent"},
    simulate=_simulate,
)
