"""water.meter_silent: a meter that stops reporting (a device fault, not a welfare case)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import sweep_meter_silent
from streams.detectors._transitions import transitions
from streams.detectors.base import Declaration, Detector, threshold

__all__ = ["MeterSilent"]


class MeterSilent(Detector):
    declaration = Declaration(
        name="water.meter_silent", domain="water",
        purpose="Find meters that stopped reporting so they can be repaired; says nothing about the household.",
        legal_basis="Public task of operating the water network (GDPR Art. 6(1)(e)).",
        reads=("id (pseudonymised)", "dateObserved", "gatewayId"), recipients="metering maintenance",
        alert_topic="alerts.v1", severity="info", subject_kind="water_meter",
        retention="alerts kept 90 days", human_oversight="maintenance staff decide on repair visits",
    )

    @dataclass(frozen=True)
    class Thresholds:
        silent_after_s: float = threshold(10800.0, "s", "Three missed hourly reports: one or two can be radio loss.")

    subject_fields = (("silent_since", np.float64, np.nan),)

    def sweep(self, state, watermark):
        since = state.subject("silent_since")
        return transitions(self.declaration.name, state.subjects.keys, since, watermark,
                           lambda: sweep_meter_silent(watermark, self.thresholds.silent_after_s,
                                                      state.subject("last_seen"), state.subject("gateway"),
                                                      state.group_column("gateway", "outage_since"), since),
                           ended_by=state.subject("last_seen"))

    def definitional_delay_s(self) -> float:
        return self.thresholds.silent_after_s
