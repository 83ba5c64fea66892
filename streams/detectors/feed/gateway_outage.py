"""feed.gateway_outage: a gateway that delivers nothing for a while is one feed alert."""

from __future__ import annotations

from dataclasses import dataclass

from kernels import sweep_gateway_outage
from streams.detectors._transitions import transitions
from streams.detectors.base import Declaration, Detector

__all__ = ["GatewayOutage", "GatewayOutageThresholds"]


@dataclass(frozen=True)
class GatewayOutageThresholds:
    silent_after_s: float = 7200.0   # s without any reading delivered by the gateway


class GatewayOutage(Detector):
    declaration = Declaration(
        name="feed.gateway_outage", domain="water",
        purpose="Tell operators that a gateway or head-end stopped delivering readings, as one alert, "
                "instead of a welfare or silent-meter alert for each of its households.",
        legal_basis="Legitimate interest / public task of operating the metering network (GDPR Art. 6(1)(e)).",
        reads=("gatewayId", "dateObserved"), recipients="network operations",
        alert_topic="alerts.v1", severity="warning", subject_kind="gateway",
        retention="alerts kept 90 days", human_oversight="an operator checks the gateway before any field visit",
    )

    def __init__(self, thresholds: GatewayOutageThresholds = GatewayOutageThresholds()):
        self.thresholds = thresholds

    def sweep(self, state, watermark):
        since = state.gateway("gateway_outage_since")
        return transitions(self.declaration.name, state.gateways.keys, since, watermark,
                           lambda: sweep_gateway_outage(watermark, self.thresholds.silent_after_s,
                                                        state.gateway("gateway_last_seen"), since))
