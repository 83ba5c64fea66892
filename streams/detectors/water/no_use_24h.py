"""water.no_use_24h: the welfare check — a meter that reports but shows no use for 24 h."""

from __future__ import annotations

from dataclasses import dataclass

from kernels import sweep_no_use
from streams.detectors._transitions import transitions
from streams.detectors.base import Declaration, Detector

__all__ = ["NoUse24h", "NoUseThresholds"]


@dataclass(frozen=True)
class NoUseThresholds:
    no_use_after_s: float = 86400.0     # s without any rise of the index
    silent_after_s: float = 10800.0     # a meter silent this long is not "still reporting"


class NoUse24h(Detector):
    declaration = Declaration(
        name="water.no_use_24h", domain="water",
        purpose="Welfare check: a household whose meter keeps reporting but shows no water use for 24 hours "
                "may need a visit (enrolled vulnerable residents).",
        legal_basis="Vital interests and consent of enrolled residents (GDPR Art. 6(1)(d), 9(2)(c)); "
                    "social-care public task.",
        reads=("id (pseudonymised)", "dateObserved", "waterConsumption"),
        recipients="welfare team only (restricted topic)",
        alert_topic="alerts.welfare.v1", severity="critical", subject_kind="water_meter",
        retention="alerts kept 30 days, then deleted",
        human_oversight="a welfare officer re-identifies the household and decides whether to call or visit",
    )

    def __init__(self, thresholds: NoUseThresholds = NoUseThresholds()):
        self.thresholds = thresholds

    def sweep(self, state, watermark):
        since = state.meter("no_use_since")
        t = self.thresholds
        return transitions(self.declaration.name, state.meters.keys, since, watermark,
                           lambda: sweep_no_use(watermark, t.no_use_after_s, t.silent_after_s,
                                                state.meter("last_seen"), state.meter("last_use"),
                                                state.meter("meter_gateway"), state.gateway("gateway_outage_since"),
                                                since))
