"""feed.gateway_outage: a gateway that delivers nothing for a while is one feed alert.

Out after ``max(silent_after_s, missed_reports x the gateway's learnt delivery cadence,
min(gap_margin x its longest recent gap, gap_ceiling_s))`` (:mod:`streams.detectors._cadence`;
readings less than a minute apart are one delivery).
When an outage ends, ``outage_ended`` keeps the time of the first reading after it began (the
earliest one, whatever order readings arrive in; ``outage_back`` collects it on the reading path):
the meters behind the gateway that went quiet before it get one reporting interval of grace from then
(``water.meter_silent``), since their own first readings after an outage follow the gateway's
first over the next minutes. ``outage_opened`` keeps the tick an open outage was raised at: a sweep over
many ticks at once tells its readers from which of them on the gateway was out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import sweep_absence
from kernels.config import CLEARED, REOPENED
from streams.detectors._cadence import gap_margin_threshold, group_silence_reads, learnt_cadence, silence_rule
from streams.detectors._transitions import tick_transitions
from streams.detectors.base import Declaration, Detector, threshold

__all__ = ["GatewayOutage"]


class GatewayOutage(Detector):
    declaration = Declaration(
        name="feed.gateway_outage", domain="water",
        purpose="Tell operators that a gateway or head-end stopped delivering readings, as one alert, "
                "instead of a welfare or silent-meter alert for each of its households.",
        legal_basis="Legitimate interest / public task of operating the metering network (GDPR Art. 6(1)(e)).",
        reads=("gatewayId", "dateObserved"), recipients="network operations",
        alert_topic="alerts.v1", severity="warning", subject_kind="gateway",
        retention="alerts kept 90 days", human_oversight="an operator checks the gateway before any field visit",
        owner="Water utility, network operations",
        logic="It notes when each radio gateway (the relay that collects the meters' readings in a neighbourhood) "
              "last delivered anything. When a gateway has delivered nothing for two hours (by default; longer for "
              "a gateway that usually delivers less often or has had such gaps before, never more than a day), it "
              "sends one alert about the gateway, and holds back the alerts about the meters behind it. An operator "
              "checks the gateway before anyone is sent out.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        silent_after_s: float = threshold(
            7200.0, "s", "The floor: two missed hourly deliveries; below water.meter_silent's 3 h so an outage is seen "
                         "before its meters look silent one by one, and their alerts are held back.", above=0.0)
        missed_reports: float = threshold(
            2.0, "deliveries", "Out after this many of the gateway's own learnt delivery intervals when longer than "
                               "the floor (a gateway delivering every 6 h after 12 h); one fewer than "
                               "water.meter_silent's three, so its meters' alerts are still held back.", minimum=0.0)
        gap_margin: float = gap_margin_threshold()
        gap_ceiling_s: float = threshold(
            86400.0, "s", "A gateway is out after a day whatever its dropouts: below "
                          "water.meter_silent's two days, so an outage is still seen before its "
                          "meters one by one.", above=0.0)

    reading_groups = ("gateway",)
    state_reads = group_silence_reads("gateway")
    group_fields = {"gateway": (("outage_since", np.float64, np.nan), ("outage_back", np.float64, np.nan),
                                ("outage_ended", np.float64, np.nan), ("outage_opened", np.float64, np.nan))}

    def update(self, state, readings):
        """Keep, per gateway in an open outage, its earliest reading after the outage began."""
        gateway = readings.groups["gateway"]
        since = state.group_column("gateway", "outage_since")
        known = (gateway >= 0) & (gateway < since.shape[0])
        if not known.any():
            return []
        g, ts = gateway[known], readings.ts[known]
        back = ~np.isnan(since[g]) & (ts > since[g])
        np.fmin.at(state.group_column("gateway", "outage_back"), g[back], ts[back])
        return []

    multi_tick = True

    def sweep_ticks(self, state, ticks):
        since = state.group_column("gateway", "outage_since")
        last_seen = state.group_column("gateway", "last_seen")

        def run_kernel(raised_at):
            codes = sweep_absence(ticks, self.thresholds.silent_after_s, last_seen, since, raised_at=raised_at,
                                  **silence_rule(self.thresholds), **learnt_cadence(state, "gateway"))
            ended = np.flatnonzero((codes == CLEARED) | (codes == REOPENED))
            back = state.group_column("gateway", "outage_back")
            first = back[ended]
            state.group_column("gateway", "outage_ended")[ended] = np.where(np.isnan(first), last_seen[ended], first)
            back[ended] = np.nan
            opened = state.group_column("gateway", "outage_opened")
            opened[ended] = np.nan
            up = np.flatnonzero(raised_at >= 0)
            opened[up] = ticks[raised_at[up]]
            return codes

        return tick_transitions(self.declaration.name, state.group("gateway").keys, since, ticks, run_kernel,
                                ended_by=last_seen)

    def definitional_delay_s(self) -> float:
        return self.thresholds.silent_after_s
