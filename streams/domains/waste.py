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

from kernels.config import WASTE_STATUS_CODES
from streams.detectors.waste.collection_late import CollectionLate
from streams.detectors.waste.fire import Fire
from streams.detectors.waste.full_before_collection import FullBeforeCollection
from streams.detectors.waste.overflow import Overflow
from streams.detectors.waste.sensor_fault import SensorFault
from streams.detectors.waste.silent import WasteSilent
from streams.detectors._cadence import CadenceTracker
from streams.domains.base import Column, Domain

__all__ = ["WASTE"]


def _simulate(**scenario):
    from streams.simulate.waste import WasteScenario, simulate_waste

    return simulate_waste(WasteScenario(**scenario))


WASTE = Domain(
    name="waste", schema="waste-reading", reading_type="WasteContainer", subject_kind="waste_container",
    columns=(Column("fillingLevel"), Column("temperature"), Column("status", codes=WASTE_STATUS_CODES),
             Column("nextCollectionEpoch")),
    # every bin's newest reading and reporting cadence (waste.silent reads them)
    tracker=CadenceTracker(owns_last_seen=True),
    detectors=(Overflow, FullBeforeCollection, Fire, CollectionLate, SensorFault, WasteSilent),
    incident_detectors={"overflow": "waste.overflow", "full_before_collection": "waste.full_before_collection",
                        "fire": "waste.fire", "collection_late": "waste.collection_late",
                        "sensor_fault": "waste.sensor_fault", "silent": "waste.silent"},
    simulate=_simulate,
)
