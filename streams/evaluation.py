"""Compare emitted alerts with a simulation's ground truth.

Used by the demo's summary and by the tests. An incident is *detected* when an
alert ``raised`` by its detector names its subject; a raised alert that names no
incident is a *false alert*. Detection delay is measured in city (event) time
from the moment the incident became detectable by definition (its start plus the
detector's threshold) to the alert's ``time``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime

from streams.config import Settings
from streams.pseudonym import Pseudonymizer

__all__ = ["KIND_DETECTORS", "KindSummary", "expected_alerts", "summarise", "subject_of"]

#: incident kind -> (detector, settings field holding its threshold in s)
KIND_DETECTORS = {
    "no_use": ("water.no_use_24h", "no_use_after_s"),
    "meter_silent": ("water.meter_silent", "meter_silent_after_s"),
    "gateway_outage": ("feed.gateway_outage", "gateway_silent_after_s"),
}


def subject_of(incident, pseudonymizer: Pseudonymizer) -> str:
    return incident.subject if incident.kind == "gateway_outage" else pseudonymizer.meter(incident.subject)


def expected_alerts(incidents, pseudonymizer: Pseudonymizer) -> set[tuple[str, str, str]]:
    """(detector, subject, state) of every alert the incidents should cause, and only those."""
    expected = set()
    for incident in incidents:
        detector = KIND_DETECTORS[incident.kind][0]
        subject = subject_of(incident, pseudonymizer)
        expected.add((detector, subject, "raised"))
        if incident.end is not None:
            expected.add((detector, subject, "cleared"))
    return expected


@dataclass
class KindSummary:
    kind: str
    detector: str
    injected: int = 0
    detected: int = 0
    cleared: int = 0
    expected_cleared: int = 0
    false_alerts: int = 0
    delays_s: list[float] = field(default_factory=list)
    seen_delays_s: list[float] = field(default_factory=list)

    @property
    def missed(self) -> int:
        return self.injected - self.detected

    @property
    def median_delay_s(self) -> float | None:
        return statistics.median(self.delays_s) if self.delays_s else None

    @property
    def median_seen_delay_s(self) -> float | None:
        return statistics.median(self.seen_delays_s) if self.seen_delays_s else None


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def summarise(alerts: list[dict], incidents, settings: Settings, pseudonymizer: Pseudonymizer,
              seen_at: dict[str, float] | None = None) -> list[KindSummary]:
    """One :class:`KindSummary` per incident kind, from CloudEvent alerts.

    ``seen_at`` (optional) maps an alert id to the city time (s) at which a reader
    received it, for the delay as an analyst experiences it.
    """
    summaries = {kind: KindSummary(kind, detector) for kind, (detector, _) in KIND_DETECTORS.items()}
    wanted: dict[tuple[str, str], object] = {}
    for incident in incidents:
        summary = summaries[incident.kind]
        summary.injected += 1
        summary.expected_cleared += incident.end is not None
        wanted[(summary.detector, subject_of(incident, pseudonymizer))] = incident
    by_detector = {detector: summaries[kind] for kind, (detector, _) in KIND_DETECTORS.items()}
    raised_once: set[tuple[str, str]] = set()
    for alert in sorted(alerts, key=lambda a: a["time"]):
        data = alert["data"]
        summary = by_detector.get(data["detector"])
        if summary is None:
            continue
        key = (data["detector"], alert["subject"])
        incident = wanted.get(key)
        if data["state"] == "raised":
            if incident is None or key in raised_once:
                summary.false_alerts += 1
                continue
            raised_once.add(key)
            summary.detected += 1
            threshold = getattr(settings, KIND_DETECTORS[incident.kind][1])
            summary.delays_s.append(_epoch(alert["time"]) - (incident.start + threshold))
            if seen_at and alert["id"] in seen_at:
                summary.seen_delays_s.append(seen_at[alert["id"]] - (incident.start + threshold))
        elif incident is not None and incident.end is not None:
            summary.cleared += 1
    return list(summaries.values())


def format_table(summaries: list[KindSummary]) -> str:
    def minutes(value):
        return "-" if value is None else f"{value / 60:.0f} min"

    rows = [("incident kind", "detector", "injected", "alerted", "missed", "cleared", "false alerts",
             "median delay: event time", "received (city time)")]
    for s in summaries:
        rows.append((s.kind, s.detector, str(s.injected), str(s.detected), str(s.missed),
                     f"{s.cleared}/{s.expected_cleared}", str(s.false_alerts), minutes(s.median_delay_s),
                     minutes(s.median_seen_delay_s)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
