"""water.meter_silent: a meter that stops reporting (a device fault, not a welfare case)."""

from __future__ import annotations

from dataclasses import dataclass

from kernels import sweep_meter_silent
from streams.detectors._transitions import transitions
from streams.detectors.base import Declaration, Detector

__all__ = ["MeterSilent", "MeterSilentThresholds"]


@dataclass(frozen=True)
class MeterSilentThresholds:
    silent_after_s: float = 10800.0   # s without a reading from the meter


class MeterSilent(Detector):
    declaration = Declaration(
        name="water.meter_silent", domain="water",
        purpose="Find meters that stopped reporting so they can be repaired; says nothing about the household.",
        legal_basis="Public task of operating the water network (GDPR Art. 6(1)(e)).",
        reads=("id (pseudonymised)", "dateObserved", "gatewayId"), recipients="metering maintenance",
        alert_topic="alerts.v1", severity="info", subject_kind="water_meter",
        retention="alerts kept 90 days", human_oversight="maintenance staff decide on repair visits",
    )

    def __init__(self, thresholds: MeterSilentThresholds = MeterSilentThresholds()):
        self.thresholds = thresholds

    def sweep(self, state, watermark):
        since = state.meter("silent_since")
        return transitions(self.declaration.name, state.meters.keys, since, watermark,
                           lambda: sweep_meter_silent(watermark, self.thresholds.silent_after_s,
                                                      state.meter("last_seen"), state.meter("meter_gateway"),
                                                      state.gateway("gateway_outage_since"), since))
