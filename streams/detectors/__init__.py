"""Detectors: one per file, a tiny uniform contract (see :mod:`streams.detectors.base`).

``REGISTRY`` lists every detector class; the worker, the register and the
conformance test all read it, so nothing runs that is not declared here.
``water_detectors(settings)`` builds the water domain's absence detectors with
thresholds from the settings, in sweep order (gateways first).
"""

from streams.detectors.base import Declaration, Detector, Transition
from streams.detectors.feed.gateway_outage import GatewayOutage, GatewayOutageThresholds
from streams.detectors.water.meter_silent import MeterSilent, MeterSilentThresholds
from streams.detectors.water.no_use_24h import NoUse24h, NoUseThresholds

__all__ = ["Declaration", "Detector", "Transition", "REGISTRY", "water_detectors",
           "GatewayOutage", "MeterSilent", "NoUse24h"]

REGISTRY: dict[str, type[Detector]] = {
    cls.declaration.name: cls for cls in (GatewayOutage, MeterSilent, NoUse24h)
}


def water_detectors(settings) -> list[Detector]:
    """Active water detectors in sweep order: the gateway sweep must run first."""
    detectors = [
        GatewayOutage(GatewayOutageThresholds(settings.gateway_silent_after_s)),
        MeterSilent(MeterSilentThresholds(settings.meter_silent_after_s)),
        NoUse24h(NoUseThresholds(settings.no_use_after_s, settings.meter_silent_after_s)),
    ]
    return [d for d in detectors if d.declaration.status == "active"]
