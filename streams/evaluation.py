"""Compare emitted alerts with simulations' ground truth.

Used by the demo's summary, the quality harness and the tests. An incident is
*detected* when its detector raises an alert naming its subject; a raised alert
that names no incident of its detector is a *false alert*. Delays are measured in
city (event) time from the moment an incident became detectable by definition
(its start plus the detector's definitional delay, e.g. 24 h for no-use).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime

from streams.pseudonym import Pseudonymizer

__all__ = ["DetectorSummary", "expected_alerts", "summarise", "format_table", "incident_subject"]


def incident_subject(incident, domain, detector_cls, pseudonymizer: Pseudonymizer) -> str:
    """The alert subject an incident should produce: a pseudonym where the subject is personal."""
    personal = domain.subject_pseudonym and detector_cls.declaration.subject_kind == domain.subject_kind
    return pseudonymizer.pseudonym(domain.subject_pseudonym, incident.subject) if personal else incident.subject


def _incident_targets(domain, incidents, registry, pseudonymizer):
    for incident in incidents:
        name = domain.incident_detectors[incident.kind]
        yield name, incident_subject(incident, domain, registry[name], pseudonymizer), incident


def expected_alerts(domain, incidents, registry, pseudonymizer: Pseudonymizer) -> set[tuple[str, str, str]]:
    """(detector, subject, state) of every alert the incidents should cause, and only those."""
    expected = set()
    for name, subject, incident in _incident_targets(domain, incidents, registry, pseudonymizer):
        expected.add((name, subject, "raised"))
        if incident.end is not None:
            expected.add((name, subject, "cleared"))
    return expected


@dataclass
class DetectorSummary:
    detector: str
    domain: str
    incident_kind: str
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
    def precision(self) -> float:
        raised = self.detected + self.false_alerts
        return self.detected / raised if raised else 1.0

    @property
    def recall(self) -> float:
        return self.detected / self.injected if self.injected else 1.0

    @property
    def median_delay_s(self) -> float | None:
        return statistics.median(self.delays_s) if self.delays_s else None

    @property
    def median_seen_delay_s(self) -> float | None:
        return statistics.median(self.seen_delays_s) if self.seen_delays_s else None


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def summarise(alerts: list[dict], runs, detectors: dict, registry: dict, pseudonymizer: Pseudonymizer,
              seen_at: dict[str, float] | None = None, within_incident: bool = False) -> list[DetectorSummary]:
    """One :class:`DetectorSummary` per detector of the given runs.

    ``runs``: (domain, incidents) pairs; ``detectors``: name -> configured detector
    (for its definitional delay) of every detector that ran: the incidents of one that did
    not (a dormant detector left off) are left out of the summary; ``seen_at`` (optional): alert id -> city time (s)
    at which a reader received it. ``within_incident``: a raised alert detects an
    incident only when it is raised during it (from its start to its end, or on when
    it has none); one on the same subject at another time is a false alert. For real
    data with an incident injected into every subject (DAIAD), where an alert at any
    time would otherwise count as the detection.
    """
    summaries: dict[str, DetectorSummary] = {}
    wanted: dict[tuple[str, str], object] = {}
    for domain, incidents in runs:
        for kind, name in domain.incident_detectors.items():
            if name in detectors:
                summaries.setdefault(name, DetectorSummary(name, domain.name, kind))
        for name, subject, incident in _incident_targets(domain, incidents, registry, pseudonymizer):
            summary = summaries.get(name)
            if summary is None:
                continue
            summary.injected += 1
            summary.expected_cleared += incident.end is not None
            wanted[(name, subject)] = incident
    raised_once: set[tuple[str, str]] = set()
    for alert in sorted(alerts, key=lambda a: a["time"]):
        data = alert["data"]
        summary = summaries.get(data["detector"])
        if summary is None:
            continue
        key = (data["detector"], alert["subject"])
        incident = wanted.get(key)
        if data["state"] == "raised":
            during = incident is not None and incident.start <= _epoch(alert["time"]) and (
                incident.end is None or _epoch(alert["time"]) <= incident.end)
            if incident is None or key in raised_once or (within_incident and not during):
                summary.false_alerts += 1
                continue
            raised_once.add(key)
            summary.detected += 1
            detectable_at = incident.start + detectors[data["detector"]].definitional_delay_s()
            summary.delays_s.append(_epoch(alert["time"]) - detectable_at)
            if seen_at and alert["id"] in seen_at:
                summary.seen_delays_s.append(seen_at[alert["id"]] - detectable_at)
        elif incident is not None and incident.end is not None:
            summary.cleared += 1
    return list(summaries.values())


def format_table(summaries: list[DetectorSummary]) -> str:
    def minutes(value):
        return "-" if value is None else f"{value / 60:.0f} min"

    rows = [("domain", "detector", "incident kind", "injected", "alerted", "missed", "cleared", "false alerts",
             "median delay: event time", "received (city time)")]
    for s in summaries:
        rows.append((s.domain, s.detector, s.incident_kind, str(s.injected), str(s.detected), str(s.missed),
                     f"{s.cleared}/{s.expected_cleared}", str(s.false_alerts), minutes(s.median_delay_s),
                     minutes(s.median_seen_delay_s)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
