"""Open alerts and intervention delays, folded from alert events.

Contract of :class:`AlertBook`:

* :meth:`AlertBook.fold` takes one alert event (the dict published on an alert topic,
  see ``schemas/alert.schema.json``) and returns what it changed (:class:`Folded`). An
  episode (``data.episodeId``) is *open* from its ``raised`` event to its ``cleared``
  event; ``updated`` refreshes an open episode. Folding is idempotent, because alerts are
  delivered at least once and a replay re-emits the same ids: a second ``raised`` of an
  open episode, or a second ``cleared`` of a recently closed one, changes nothing
  (``duplicate=True``).
* The **intervention delay** of an episode is ``cleared.time - raised.time`` (s, event
  time: both are the times the worker saw the change). It is known only when the book saw
  the raise; a clear whose raise is older than what was read gives ``delay_s=None``.
* Ages are measured against a clock the caller passes (``now_s``, epoch s); see
  :meth:`AlertBook.clock` for the default: wall time, or the newest event time seen when
  the feed is far behind the wall clock (a replayed or simulated city days in the past).
* Age bands (:data:`AGE_BANDS`) are the bounded label values of the open-alerts metric.

Times are epoch seconds (float) inside; events carry RFC 3339 UTC strings.
"""

from __future__ import annotations

import fnmatch
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from streams.timeparse import reading_time

__all__ = ["AGE_BANDS", "AlertBook", "AlertFilter", "Folded", "OpenAlert", "age_band", "MalformedAlert",
           "CLOCK_SKEW_S"]

#: (upper bound in s, label) of the open-alert age bands, youngest first; the last is unbounded.
AGE_BANDS: tuple[tuple[float, str], ...] = ((3600.0, "0-1h"), (6 * 3600.0, "1-6h"), (86400.0, "6-24h"),
                                             (7 * 86400.0, "1-7d"), (float("inf"), "7d+"))
#: When the newest alert is older than the wall clock by more than this (s), ages are measured
#: against the newest alert's time instead (the feed is a replay or a simulation, not live).
CLOCK_SKEW_S = 6 * 3600.0
#: How many closed episodes are remembered to recognise a re-delivered ``cleared``.
CLOSED_MEMORY = 100_000

_REQUIRED_DATA = ("detector", "domain", "state", "severity", "episodeId", "episodeStart")


class MalformedAlert(ValueError):
    """An alert event lacks a field the book needs, or has an unreadable time; the message says which."""


def age_band(age_s: float) -> str:
    """The :data:`AGE_BANDS` label of an age in seconds (negative ages count as the youngest)."""
    for bound, label in AGE_BANDS:
        if age_s < bound:
            return label
    return AGE_BANDS[-1][1]


class OpenAlert(NamedTuple):
    """An episode raised and not yet cleared."""

    episode_id: str
    detector: str
    domain: str
    severity: str
    subject: str
    subject_kind: str
    raised_s: float           # epoch s, the raise's event time
    episode_start_s: float    # epoch s
    description: str
    topic: str | None         # the alert topic it came from (None when folded without one)
    alert_id: str

    def age_s(self, now_s: float) -> float:
        return now_s - self.raised_s


class Folded(NamedTuple):
    """What one folded event did: ``state`` is the event's; ``alert`` the open episode it raised,
    refreshed or closed (None for a clear of an episode never seen raised); ``delay_s`` the
    intervention delay of a clear whose raise was seen."""

    state: str
    alert: OpenAlert | None
    delay_s: float | None = None
    duplicate: bool = False


@dataclass(frozen=True)
class AlertFilter:
    """Selects alert events. Every given criterion must hold; an empty one holds for all.

    ``domains``, ``severities``, ``states``: exact values; ``detectors`` and ``subjects``:
    exact names or shell-style patterns (``water.*``); ``since_s``: events at or after this
    event time (epoch s).
    """

    domains: frozenset[str] = frozenset()
    detectors: tuple[str, ...] = ()
    severities: frozenset[str] = frozenset()
    states: frozenset[str] = frozenset()
    subjects: tuple[str, ...] = ()
    since_s: float | None = None

    @classmethod
    def of(cls, *, domains: Iterable[str] = (), detectors: Iterable[str] = (), severities: Iterable[str] = (),
           states: Iterable[str] = (), subjects: Iterable[str] = (), since_s: float | None = None) -> "AlertFilter":
        return cls(frozenset(domains), tuple(detectors), frozenset(severities), frozenset(states), tuple(subjects),
                   since_s)

    def matches(self, event: dict) -> bool:
        data = event.get("data") or {}
        if self.domains and data.get("domain") not in self.domains:
            return False
        if self.severities and data.get("severity") not in self.severities:
            return False
        if self.states and data.get("state") not in self.states:
            return False
        if self.detectors and not _any_match(str(data.get("detector", "")), self.detectors):
            return False
        if self.subjects and not _any_match(str(event.get("subject", "")), self.subjects):
            return False
        if self.since_s is not None:
            at = reading_time(event["time"]) if isinstance(event.get("time"), str) else None
            if at is None or at < self.since_s:
                return False
        return True

    def matches_open(self, alert: OpenAlert) -> bool:
        """The same criteria on an open alert (state is ``raised``; ``since`` applies to the raise)."""
        if self.domains and alert.domain not in self.domains:
            return False
        if self.severities and alert.severity not in self.severities:
            return False
        if self.states and "raised" not in self.states:
            return False
        if self.detectors and not _any_match(alert.detector, self.detectors):
            return False
        if self.subjects and not _any_match(alert.subject, self.subjects):
            return False
        return self.since_s is None or alert.raised_s >= self.since_s


def _any_match(value: str, patterns: tuple[str, ...]) -> bool:
    return any(value == p or fnmatch.fnmatchcase(value, p) for p in patterns)


class AlertBook:
    """Open alerts by episode; see the module docstring."""

    def __init__(self) -> None:
        self._open: dict[str, OpenAlert] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()
        self.newest_s: float | None = None     # newest event time folded (epoch s)
        self.folded = 0

    def __len__(self) -> int:
        return len(self._open)

    def fold(self, event: dict, topic: str | None = None) -> Folded:
        """Fold one alert event; :class:`MalformedAlert` if it lacks what the book needs."""
        data = event.get("data")
        if not isinstance(data, dict):
            raise MalformedAlert("alert event without a data object")
        missing = [name for name in _REQUIRED_DATA if not isinstance(data.get(name), str)]
        if missing or not isinstance(event.get("subject"), str):
            raise MalformedAlert(f"alert event lacks {', '.join(missing or ['subject'])}")
        at = reading_time(event["time"]) if isinstance(event.get("time"), str) else None
        start = reading_time(data["episodeStart"])
        if at is None or start is None:
            raise MalformedAlert("alert event with an unreadable time (time or data.episodeStart)")
        self.folded += 1
        self.newest_s = at if self.newest_s is None else max(self.newest_s, at)
        episode, state = data["episodeId"], data["state"]
        current = self._open.get(episode)
        if state in ("raised", "updated"):
            if current is not None:
                if state == "updated":
                    return Folded(state, current)
                return Folded(state, current, duplicate=True)
            if episode in self._closed:
                return Folded(state, None, duplicate=True)    # a late re-delivery of a closed episode's raise
            alert = OpenAlert(episode, data["detector"], data["domain"], data["severity"], event["subject"],
                              str(data.get("subjectKind", "")), at, start, str(data.get("description", "")),
                              topic, str(event.get("id", "")))
            self._open[episode] = alert
            return Folded(state, alert)
        if state == "cleared":
            if current is None:
                duplicate = episode in self._closed
                self._remember_closed(episode)
                return Folded(state, None, duplicate=duplicate)
            del self._open[episode]
            self._remember_closed(episode)
            return Folded(state, current, delay_s=max(0.0, at - current.raised_s))
        raise MalformedAlert(f"alert event with an unknown state {state!r}")

    def _remember_closed(self, episode: str) -> None:
        self._closed[episode] = None
        self._closed.move_to_end(episode)
        while len(self._closed) > CLOSED_MEMORY:
            self._closed.popitem(last=False)

    def open_alerts(self, where: AlertFilter | None = None) -> list[OpenAlert]:
        """Open alerts matching ``where``, oldest raise first."""
        alerts = [a for a in self._open.values() if where is None or where.matches_open(a)]
        return sorted(alerts, key=lambda a: (a.raised_s, a.detector, a.subject))

    def clock(self, wall_s: float | None = None) -> float:
        """The time ages are measured against (epoch s): the wall clock, unless the newest
        alert is more than :data:`CLOCK_SKEW_S` behind it — then the newest alert's time."""
        wall = time.time() if wall_s is None else wall_s
        if self.newest_s is not None and wall - self.newest_s > CLOCK_SKEW_S:
            return self.newest_s
        return wall

    def open_counts(self, now_s: float, domains: Iterable[str] = ()) -> dict[tuple[str, str], int]:
        """Open alerts per (domain, age band) at ``now_s``; every given domain has every band (0 if none)."""
        counts = {(d, label): 0 for d in domains for _bound, label in AGE_BANDS}
        for alert in self._open.values():
            key = (alert.domain, age_band(alert.age_s(now_s)))
            counts[key] = counts.get(key, 0) + 1
        return counts
