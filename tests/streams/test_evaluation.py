"""streams.evaluation: matching alerts with injected incidents."""

from dataclasses import dataclass

from streams.alerts import iso_time
from streams.detectors import REGISTRY
from streams.domains import DOMAINS
from streams.evaluation import summarise
from streams.pseudonym import Pseudonymizer

PSEUDONYMS = Pseudonymizer(b"evaluation-test-key-0123")


@dataclass
class Incident:
    kind: str
    subject: str
    start: float
    end: float | None


def alert(subject, t, state="raised"):
    return {"id": f"{subject}-{t}-{state}", "subject": PSEUDONYMS.pseudonym("wm", subject), "time": iso_time(t),
            "data": {"detector": "water.meter_silent", "state": state}}


def test_within_incident_counts_only_an_alert_raised_during_it():
    water = DOMAINS["water"]
    detectors = {name: cls() for name, cls in REGISTRY.items()}
    incidents = [Incident("meter_silent", "a", 1000.0, 2000.0), Incident("meter_silent", "b", 1000.0, None)]
    alerts = [alert("a", 500.0), alert("a", 1500.0), alert("b", 900.0), alert("b", 5000.0), alert("c", 100.0)]

    def figures(**kwargs):
        [s] = [s for s in summarise(alerts, [(water, incidents)], detectors, REGISTRY, PSEUDONYMS, **kwargs)
               if s.detector == "water.meter_silent"]
        return s.detected, s.false_alerts

    assert figures() == (2, 3)                       # any time: the first alert on a subject detects
    assert figures(within_incident=True) == (2, 3)   # during: a at 1500, b at 5000 (b lasts)
    alerts[1] = alert("a", 2500.0)                   # a's only later alert comes after its end
    assert figures() == (2, 3) and figures(within_incident=True) == (1, 4)
