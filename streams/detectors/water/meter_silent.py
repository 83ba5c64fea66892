"""water.meter_silent: a meter that stops reporting (a device fault, not a welfare case).

Silent after ``max(silent_after_s, missed_reports x the meter's learnt reporting cadence, ...)``
(:mod:`streams.detectors._cadence`): an hourly meter after 3 h, one that reports every 6 h after
18 h; a meter too new to have a cadence after the floor. Not while its gateway is out
(``feed.gateway_outage`` raises one alert instead), nor within one of its reporting intervals
of the gateway's return (its first reading follows the gateway's first over some minutes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import sweep_meter_silent
from streams.detectors._cadence import SILENCE_READS, gap_margin_threshold, learnt_cadence, silence_rule
from streams.detectors._transitions import tick_transitions
from streams.detectors.base import Declaration, Detector, threshold

__all__ = ["MeterSilent"]


class MeterSilent(Detector):
    declaration = Declaration(
        name="water.meter_silent", domain="water",
        purpose="Find meters that stopped reporting so they can be repaired; says nothing about the household.",
        legal_basis="Public task of operating the water network (GDPR Art. 6(1)(e)). No objection: a working "
                    "meter is needed to bill every household correctly, and the alert is about the device, "
                    "not the household's use.",
        reads=("id (pseudonymised)", "dateObserved", "gatewayId"), recipients="metering maintenance",
        alert_topic="alerts.v1", severity="info", subject_kind="water_meter",
        retention="alerts kept 90 days", human_oversight="maintenance staff decide on repair visits",
        owner="Water utility, metering",
        logic="It notes when each water meter last sent a reading. A meter silent for three hours (by default; "
              "longer if it usually reports less often or has had such gaps before, never more than two days) is "
              "reported to the metering team for repair. Nothing is concluded about the household, and nothing is "
              "reported while the meter's gateway is itself out.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        silent_after_s: float = threshold(
            10800.0, "s", "The floor: three missed hourly reports (one or two can be radio loss). A meter whose "
                          "cadence is not learnt yet (fewer than 4 intervals) is judged by it alone.", above=0.0)
        missed_reports: float = threshold(
            3.0, "reports", "Silent after this many of the meter's own learnt reporting intervals when that is longer "
                            "than the floor: a meter reporting every 6 h after 18 h, one that often skips a few "
                            "hours later than an hourly one; three, as for the floor.", minimum=0.0)
        gap_margin: float = gap_margin_threshold()
        gap_ceiling_s: float = threshold(
            172800.0, "s", "A meter is silent after two days whatever its dropouts: a stopped "
                           "meter is sent for repair within two days at worst (an hourly meter "
                           "that never drops out is still called after 3 h).", above=0.0)

    state_reads = (*SILENCE_READS, "gateway",                           # the tracker's
                   "gateway.outage_since", "gateway.outage_ended",     # feed.gateway_outage's
                   "gateway.outage_opened")
    subject_fields = (("silent_since", np.float64, np.nan),)

    multi_tick = True
    tick_aware_reads = ("gateway.outage_since", "gateway.outage_ended", "gateway.outage_opened")

    def sweep_ticks(self, state, ticks):
        since = state.subject("silent_since")
        t = self.thresholds
        outage = state.group("gateway")
        return tick_transitions(self.declaration.name, state.subjects.keys, since, ticks,
                                lambda raised_at: sweep_meter_silent(
                                    ticks, t.silent_after_s, state.subject("last_seen"), state.subject("gateway"),
                                    outage.column("outage_since"), since, **silence_rule(t), **learnt_cadence(state),
                                    gateway_outage_ended=outage.column("outage_ended"),
                                    gateway_outage_opened=outage.column("outage_opened"), raised_at=raised_at),
                                ended_by=state.subject("last_seen"))

    def definitional_delay_s(self) -> float:
        return self.thresholds.silent_after_s   # at least: a meter with a longer cadence waits longer
