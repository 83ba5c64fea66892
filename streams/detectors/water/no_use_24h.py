"""water.no_use_24h: the welfare check — a meter that reports but shows no use for 24 h."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import sweep_no_use
from streams.detectors._cadence import CADENCE_READS, learnt_cadence
from streams.detectors._transitions import tick_transitions
from streams.detectors.base import Declaration, Detector, threshold

__all__ = ["NoUse24h"]


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
        requires_enrolment=True, absence_holds=True, retention_s=30 * 86400.0,
        owner="Social care department (welfare team)",
        logic="Only for households that have signed up for it. If the meter keeps reporting but shows no water used "
              "at all for 24 hours (by default), the welfare team is told. A welfare officer looks up who lives "
              "there and decides whether to call or visit. Nothing is sent while the household has said it is away, "
              "while the meter itself is silent or while its gateway is out.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        no_use_after_s: float = threshold(86400.0, "s", "The 24-hour welfare rule: a whole day without any use.", above=0)
        reporting_within_s: float = threshold(
            10800.0, "s", "A meter counts as still reporting if its last reading is younger than this (the "
                          "silent-meter floor): a silent meter is a device case, not a welfare case.", above=0)
        reporting_missed_reports: float = threshold(
            3.0, "reports", "A meter also counts as still reporting while its last reading is younger than this "
                            "many of its learnt reporting intervals (water.meter_silent's rule): one that reports "
                            "every 6 h is not silent 3 h after a report, so its welfare check is not held back.", minimum=0.0)

    state_reads = (*CADENCE_READS, "last_use", "gateway",                 # the tracker's
                   "gateway.outage_since", "gateway.outage_opened")      # feed.gateway_outage's
    subject_fields = (("no_use_since", np.float64, np.nan),)

    multi_tick = True
    tick_aware_reads = ("gateway.outage_since", "gateway.outage_opened")

    def sweep_ticks(self, state, ticks):
        since = state.subject("no_use_since")
        t = self.thresholds
        outage = state.group("gateway")
        return tick_transitions(self.declaration.name, state.subjects.keys, since, ticks,
                                lambda raised_at: sweep_no_use(
                                    ticks, t.no_use_after_s, t.reporting_within_s, state.subject("last_seen"),
                                    state.subject("last_use"), state.subject("gateway"), outage.column("outage_since"),
                                    since, missed_reports=t.reporting_missed_reports,
                                    gateway_outage_opened=outage.column("outage_opened"),
                                    raised_at=raised_at, **learnt_cadence(state, gaps=False)),
                                ended_by=state.subject("last_use"))

    def definitional_delay_s(self) -> float:
        return self.thresholds.no_use_after_s
