"""Detectors: one per file, a tiny uniform contract (see :mod:`streams.detectors.base`).

``REGISTRY`` lists every detector class by name; the worker, the register, the
thresholds table and the conformance test all read it, so nothing runs that is
not declared here. Thresholds are documented on each detector's ``Thresholds``
and overridden from a JSON file (:mod:`streams.detectors.thresholds`).
"""

from streams.detectors.base import Declaration, Detector, Readings, Transition, threshold
from streams.detectors.feed.gateway_outage import GatewayOutage
from streams.detectors.water.meter_silent import MeterSilent
from streams.detectors.water.no_use_24h import NoUse24h

__all__ = ["Declaration", "Detector", "Readings", "Transition", "threshold", "REGISTRY"]

REGISTRY: dict[str, type[Detector]] = {
    cls.declaration.name: cls for cls in (
        GatewayOutage, MeterSilent, NoUse24h,
    )
}
