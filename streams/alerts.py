"""Alerts as CloudEvents-shaped JSON, with deterministic ids.

The id is a hash of (detector, subject, episode start, state), so replaying the
same input after a crash re-emits the same ids and consumers can de-duplicate.
``data.episodeId`` (without the state) links an episode's raised and cleared
events. Times are RFC 3339 UTC strings; episode starts are event times.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import orjson

from streams.detectors.base import Declaration, Transition

__all__ = ["alert_event", "alert_id", "episode_id", "iso_time", "ALERT_TYPES"]

ALERT_TYPES = {"raised": "city.glasscity.alert.raised", "cleared": "city.glasscity.alert.cleared"}


def iso_time(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def episode_id(detector: str, subject: str, episode_start: float) -> str:
    text = f"{detector}|{subject}|{iso_time(episode_start)}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def alert_id(detector: str, subject: str, episode_start: float, state: str) -> str:
    return hashlib.sha256(f"{episode_id(detector, subject, episode_start)}|{state}".encode()).hexdigest()[:32]


def alert_event(transition: Transition, declaration: Declaration, source: str = "urn:glasscity:worker") -> dict:
    """The CloudEvent (spec 1.0 attributes) for one episode transition."""
    t = transition
    return {
        "specversion": "1.0",
        "id": alert_id(t.detector, t.subject, t.episode_start, t.state),
        "source": f"{source}:{declaration.domain}",
        "type": ALERT_TYPES[t.state],
        "subject": t.subject,
        "time": iso_time(t.time),
        "datacontenttype": "application/json",
        "data": {
            "detector": t.detector,
            "domain": declaration.domain,
            "state": t.state,
            "severity": declaration.severity,
            "subjectKind": declaration.subject_kind,
            "episodeId": episode_id(t.detector, t.subject, t.episode_start),
            "episodeStart": iso_time(t.episode_start),
            "description": declaration.purpose,
            **({"details": t.details} if t.details else {}),
        },
    }


def encode(event: dict) -> bytes:
    return orjson.dumps(event)
