"""Detectors: one per file, a tiny uniform contract (see :mod:`streams.detectors.base`).

``REGISTRY`` lists every detector class by name; the worker, the register, the
thresholds table and the conformance test all read it, so nothing runs that is
not declared here. ``WATCHERS`` holds the one detector that runs on the worker's
wall clock instead of event time (``feed.stalled``). Thresholds are documented on each detector's ``Thresholds``
and overridden from a JSON file (:mod:`streams.detectors.thresholds`).
"""

from streams.detectors.base import Declaration, Detector, Readings, Transition, threshold
from streams.detectors.feed.gateway_outage import GatewayOutage
from streams.detectors.feed.stalled import WATCHERS
from streams.detectors.lighting.cycling import Cycling
from streams.detectors.lighting.day_burner import DayBurner
from streams.detectors.lighting.lamp_failure import LampFailure
from streams.detectors.lighting.power_out_of_range import PowerOutOfRange
from streams.detectors.lighting.silent import LightingSilent
from streams.detectors.waste.collection_late import CollectionLate
from streams.detectors.waste.fire import Fire
from streams.detectors.waste.full_before_collection import FullBeforeCollection
from streams.detectors.waste.overflow import Overflow
from streams.detectors.waste.sensor_fault import SensorFault
from streams.detectors.waste.silent import WasteSilent
from streams.detectors.traffic.anomaly_score import TrafficAnomalyScore
from streams.detectors.traffic.incident import TrafficIncident
from streams.detectors.traffic.silent import TrafficSilent
from streams.detectors.traffic.stuck import TrafficStuck
from streams.detectors.water.meter_silent import MeterSilent
from streams.detectors.water.no_use_24h import NoUse24h
from streams.detectors.water.continuous_flow import ContinuousFlow
from streams.detectors.water.burst import Burst
from streams.detectors.water.backflow import Backflow
from streams.detectors.water.night_flow import NightFlow
from streams.detectors.water.device_alarm import DeviceAlarm
from streams.detectors.water.routine_change import RoutineChange

__all__ = ["Declaration", "Detector", "Readings", "Transition", "threshold", "REGISTRY", "WATCHERS", "CONFIGURABLE"]

REGISTRY: dict[str, type[Detector]] = {
    cls.declaration.name: cls for cls in (
        GatewayOutage, MeterSilent, NoUse24h,
        TrafficIncident, TrafficStuck, TrafficSilent, TrafficAnomalyScore,
        ContinuousFlow, Burst, Backflow, NightFlow, DeviceAlarm, RoutineChange,
        Overflow, FullBeforeCollection, Fire, CollectionLate, SensorFault, WasteSilent,
        LampFailure, DayBurner, PowerOutOfRange, Cycling, LightingSilent,
    )
}

#: Everything with thresholds: the event-time detectors and the wall-clock watchers (feed.stalled).
CONFIGURABLE: dict[str, type] = {**REGISTRY, **WATCHERS}
