"""feed.stalled: a whole domain's input has gone quiet (head-end or network-server outage).

Unlike every other detector this one runs on the worker's wall clock, not on event time:
when nothing arrives at all, event time stands still and no event-time detector can
notice — which is also why a head-end outage never becomes thousands of silent-meter or
welfare alerts. One episode per domain: raised once when no message has arrived on any
of the domain's partitions (that this worker owns) for ``stalled_after_s``, cleared by
the next message.

Contract: :class:`FeedWatch` is pure logic over wall-clock seconds (``arrived(now)``,
``check(now)`` -> transitions) so it is tested without a broker; the Faust app owns one
per domain. The declaration is per domain (the alert's ``data.domain`` is the feed's
domain) and is listed with the others in the register (:data:`WATCHERS`).
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.detectors.base import Declaration, Transition, threshold

__all__ = ["FeedWatch", "FeedStalled", "FeedStalledThresholds", "declaration_for", "WATCHERS", "NAME"]

NAME = "feed.stalled"


@dataclass(frozen=True)
class FeedStalledThresholds:
    stalled_after_s: float = threshold(
        900.0, "s", "Wall-clock time without a single message on any partition of a domain. Hourly meters "
                    "report spread over the hour through many gateways, lamps every 15 min: a whole feed "
                    "quiet for 15 min is an outage upstream, not a lull.", above=0)


def declaration_for(domain: str) -> Declaration:
    return Declaration(
        name=NAME, domain=domain,
        purpose="Tell operators that a whole feed has stopped (head-end, network server or ingestion outage), "
                "once, instead of letting every sensor behind it look silent.",
        legal_basis="Public task: operating the city's sensor network (no personal data: the subject is the "
                    "feed, i.e. the readings topic).",
        reads=("arrival of any message on the domain's readings topic (wall clock)",),
        recipients="network and platform operators",
        alert_topic="alerts.v1", severity="critical", subject_kind="feed",
        retention="alerts kept 90 days on the alert topic; any longer outage history is kept by platform "
                  "operations, outside this system",
        human_oversight="an operator checks the head-end / network server and the ingestion path",
        owner="Urban data platform operations",
        logic="It watches whether anything at all still arrives from each of the city's sensor networks (water, "
              "traffic, waste, lighting). When nothing has arrived from a whole network for 15 minutes (by "
              "default), it sends one alert, so operators look at the central systems instead of thousands of "
              "sensors seeming to go quiet at once. The alert ends when data arrive again.",
    )


class FeedStalled:
    """The watcher as the thresholds loader and the register see it (its declaration is per domain)."""

    Thresholds = FeedStalledThresholds
    declaration_for = staticmethod(declaration_for)


#: Processing-time watchers, besides the event-time detectors of the registry (thresholds, register).
WATCHERS = {NAME: FeedStalled}


class FeedWatch:
    """One domain's feed: when did its last message arrive, is an episode open (wall-clock s)."""

    def __init__(self, domain: str, subject: str, thresholds: FeedStalledThresholds | None = None):
        self.domain = domain
        self.subject = subject              # the readings topic: what went quiet
        self.thresholds = thresholds or FeedStalledThresholds()
        self.declaration = declaration_for(domain)
        self.last_arrival: float | None = None
        self.stalled_since: float | None = None

    def watch_from(self, now: float, restart: bool = False) -> None:
        """Start the clock (the worker got its partitions) if nothing has arrived yet; ``restart``
        after a time owning nothing, when the old last arrival says nothing about this feed."""
        if self.last_arrival is None or (restart and self.stalled_since is None):
            self.last_arrival = now

    def arrived(self, now: float) -> list[Transition]:
        """A message arrived: clears an open episode."""
        self.last_arrival = now
        if self.stalled_since is None:
            return []
        start, self.stalled_since = self.stalled_since, None
        return [Transition(NAME, self.subject, "cleared", start, now)]

    def check(self, now: float) -> list[Transition]:
        """Raise once when the feed has been quiet for ``stalled_after_s``."""
        if self.last_arrival is None or self.stalled_since is not None:
            return []
        if now - self.last_arrival < self.thresholds.stalled_after_s:
            return []
        self.stalled_since = self.last_arrival
        return [Transition(NAME, self.subject, "raised", self.stalled_since, now,
                           {"quietForSeconds": round(now - self.last_arrival)})]
