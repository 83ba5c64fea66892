"""The control room's live view: the alert feed folded into open alerts, rates and KPIs, for the page.

Contract of :class:`ControlRoom`:

* :meth:`ControlRoom.run` follows the alert topics from the beginning (:func:`streams.control.feed.follow_alerts`,
  no consumer group, so every worker's room sees the whole city) and folds every event into an
  :class:`~streams.control.book.AlertBook`: the general topic into one book, the welfare topic (read only
  when a welfare role is configured) into another that only the welfare view ever shows.
* :meth:`ControlRoom.ingest` is the whole of what one record does (the tests drive it directly): fold,
  count the intervention delay of a clear in ``glasscity_alert_intervention_delay_seconds{detector}``,
  keep it in the recent feed, and hand the event to every subscriber allowed to see it.
* :meth:`ControlRoom.view` is the state the page draws, as JSON-ready dicts: the recent feed, open alerts
  by domain and age band, per-domain rates, the KPIs (intervention delay per detector, the street-lighting
  energy saving) and the plan (sensor positions from the readings' ``location``, alert markers). Alerts,
  open counts, alert rates and delays come from the alert topics (the whole city); readings per second,
  the lighting saving and the plan's positions come from this worker (its partitions, since it started).
  The general view never holds a welfare alert, shows household (water) meters and their alerts only as
  counts per 250 m cell (docs/privacy.md), and never a household's pseudonym.
* :meth:`ControlRoom.refresh` (every :data:`REFRESH_S`) sets ``glasscity_alerts_open{domain,age}`` and pushes
  the view to subscribers; a subscriber that falls :data:`SUBSCRIBER_BACKLOG` messages behind is dropped
  (its browser reconnects and starts again from a fresh view) so a stalled tab never holds memory.

Times are epoch seconds; rates are per second (readings) and per hour (alerts, event time).
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import REGISTRY

from streams import metrics
from streams.config import Settings
from streams.control.book import AGE_BANDS, CLOCK_SKEW_S, AlertBook, MalformedAlert
from streams.control.feed import WELFARE_TOPIC, FeedItem, follow_alerts
from streams.domains import DOMAINS
from streams.alerts import iso_time

__all__ = ["ControlRoom", "Subscriber", "GATEWAYS", "REFRESH_S", "FEED_LENGTH", "SUBSCRIBER_BACKLOG", "PERSONAL_DOMAINS"]

log = logging.getLogger("glasscity.control")

#: How often the page's view is recomputed and pushed, and the open-alerts gauge set (s).
REFRESH_S = 2.0
#: Alert events the page's feed keeps (newest first).
FEED_LENGTH = 200
#: Messages a subscriber may have waiting before it is dropped (it reconnects to a fresh view).
SUBSCRIBER_BACKLOG = 500
#: Delays kept per detector for the median and 90th percentile (the histogram has them all).
DELAYS_KEPT = 1000
#: Open alerts listed on the page (oldest first); the counts cover them all.
OPEN_LISTED = 100
#: Raises kept for the alerts-per-hour rate, behind the newest (s): a day, for a feed read out of order.
RAISES_KEPT_S = 86400.0
#: Alert event ids remembered to drop copies (a re-read feed, a redelivered update).
SEEN_KEPT = 200_000
#: What the page shows instead of a household's pseudonym on a general alert.
HIDDEN_SUBJECT = "household (pseudonym not shown)"
#: Wait before following the alert topics again after the feed failed (s).
RETRY_S = 5.0
#: Domains whose subjects are households (pseudonymised: streams.domains), and their pseudonyms' prefixes:
#: their general alerts are counts per cell on the plan, and the page never shows such a pseudonym but on a
#: welfare alert in the welfare view.
PERSONAL_DOMAINS = frozenset(d.name for d in DOMAINS.values() if d.subject_pseudonym)
PERSONAL_SUBJECT_PREFIXES = tuple(f"{d.subject_pseudonym}-" for d in DOMAINS.values() if d.subject_pseudonym)

#: The positions() key of gateways (network equipment, placed exactly: a gateway's alerts are about it).
GATEWAYS = "gateways"
#: positions() -> {domain: {subject as alerts carry it: (longitude, latitude)}, GATEWAYS: {gateway id: ...}},
#: WGS 84 degrees
Positions = Callable[[], dict[str, dict[str, tuple[float, float]]]]


@dataclass(eq=False)
class Subscriber:
    """One page connection: its queue of (event name, JSON-ready data), and whether it is the welfare role's."""

    welfare: bool
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(SUBSCRIBER_BACKLOG))
    dropped: bool = False


def _quantiles(delays) -> dict:
    """count, median and 90th percentile (nearest rank) of intervention delays (s); None when there are none."""
    ordered = sorted(delays)
    if not ordered:
        return {"count": 0, "median_s": None, "p90_s": None}
    return {"count": len(ordered), "median_s": statistics.median(ordered),
            "p90_s": ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]}


def _is_welfare(alert) -> bool:
    return alert.topic is not None and alert.topic.endswith(WELFARE_TOPIC)


def _counter(name: str, labels: dict[str, str]) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


class ControlRoom:
    """See the module docstring. ``positions`` gives the sensors' positions (the worker's pipelines);
    ``clock`` the wall clock (s)."""

    def __init__(self, settings: Settings, domains: Iterable[str], positions: Positions | None = None,
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self.domains = tuple(domains)
        self.positions = positions or (lambda: {})
        self.clock = clock
        self.welfare_enabled = bool(settings.welfare_token)
        self.books = {False: AlertBook(), True: AlertBook()}          # welfare? -> book
        self.feeds = {False: deque(maxlen=FEED_LENGTH), True: deque(maxlen=FEED_LENGTH)}
        self.raises = {False: deque(), True: deque()}                 # (event time, domain), a day's worth
        self.delays: dict[bool, dict[str, deque]] = {False: {}, True: {}}   # welfare? -> detector -> delays (s)
        self.subscribers: set[Subscriber] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()           # alert event ids folded (newest last)
        self._gauged: set[tuple[str, str]] = set()                     # (domain, band) pairs the gauge has set
        self.unreadable = 0
        self.feed_error: str | None = None
        self._rates: dict[str, float] = {d: 0.0 for d in self.domains}
        self._last_counts: tuple[float, dict[str, float]] | None = None
        self._stop = asyncio.Event()

    # -- the feed ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the alert topics until :meth:`stop`; a failing feed is retried every :data:`RETRY_S`."""
        ticker = asyncio.ensure_future(self._tick())
        try:
            while not self._stop.is_set():
                # after a failure the feed is read again from the beginning: folding is idempotent, so what
                # was already folded comes back as duplicates and changes nothing (no delay counted twice)
                try:
                    async for item in follow_alerts(self.settings, welfare=self.welfare_enabled,
                                                    from_beginning=True, stop=self._stop):
                        self.ingest(item)
                except asyncio.CancelledError:
                    raise
                except Exception as error:     # noqa: BLE001 - the page says it, the worker goes on
                    self.feed_error = f"{type(error).__name__}: {error}"
                    log.warning("control room: cannot follow the alert topics (%s); retrying in %g s",
                                self.feed_error, RETRY_S)
                    try:
                        await asyncio.wait_for(self._stop.wait(), RETRY_S)
                    except asyncio.TimeoutError:
                        pass
        finally:
            ticker.cancel()

    def stop(self) -> None:
        self._stop.set()

    def ingest(self, item: FeedItem) -> None:
        """Fold one alert record (see the module docstring)."""
        self.feed_error = None
        welfare = item.topic.endswith(WELFARE_TOPIC)
        if item.event is None:
            self.unreadable += 1
            log.warning("control room: unreadable alert record %s[%d]@%d: %s", item.topic, item.partition,
                        item.offset, item.error)
            return
        try:
            folded = self.books[welfare].fold(item.event, item.topic)
        except MalformedAlert as error:
            self.unreadable += 1
            log.warning("control room: unreadable alert record %s[%d]@%d: %s", item.topic, item.partition,
                        item.offset, error)
            return
        if folded.duplicate or self._seen_before(item.event):
            return
        data = item.event["data"]
        if folded.delay_s is not None:
            metrics.INTERVENTION_DELAY.labels(data["detector"]).observe(folded.delay_s)
            self.delays[welfare].setdefault(data["detector"], deque(maxlen=DELAYS_KEPT)).append(folded.delay_s)
        if folded.state == "raised" and folded.alert is not None:
            raises = self.raises[welfare]
            raises.append((folded.alert.raised_s, folded.alert.domain))
            while raises and raises[0][0] < folded.alert.raised_s - RAISES_KEPT_S:   # bounded memory
                raises.popleft()
        row = self._row(item.event, welfare)
        self.feeds[welfare].appendleft(row)
        self._publish("alert", row, welfare_only=welfare)

    def _seen_before(self, event: dict) -> bool:
        """Whether this very event (its id) was folded already: a re-read feed or a redelivered ``updated``
        (the book makes raises and clears idempotent; this also keeps the feed free of copies)."""
        event_id = event.get("id")
        if not isinstance(event_id, str):
            return False
        if event_id in self._seen:
            return True
        self._seen[event_id] = None
        while len(self._seen) > SEEN_KEPT:
            self._seen.popitem(last=False)
        return False

    @staticmethod
    def _shown_subject(domain: str, subject: str, welfare: bool) -> str:
        """The subject as the page may show it: a household's pseudonym only on a welfare alert (welfare view
        only); a general alert about a household says just that, so no pseudonym is tied to its cell."""
        return HIDDEN_SUBJECT if domain in PERSONAL_DOMAINS and not welfare and subject.startswith(
            PERSONAL_SUBJECT_PREFIXES) else subject

    @classmethod
    def _row(cls, event: dict, welfare: bool) -> dict:
        data = event["data"]
        return {"time": event.get("time"), "domain": data["domain"], "detector": data["detector"],
                "state": data["state"], "severity": data["severity"],
                "subject": cls._shown_subject(data["domain"], event["subject"], welfare),
                "description": data.get("description", ""), "welfare": welfare}

    # -- subscribers ---------------------------------------------------------------------------

    def subscribe(self, welfare: bool) -> Subscriber:
        if welfare and not self.welfare_enabled:
            raise PermissionError("no welfare role is configured")
        subscriber = Subscriber(welfare)
        self.subscribers.add(subscriber)
        subscriber.queue.put_nowait(("state", self.view(welfare)))
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def _publish(self, name: str, data: dict, *, welfare_only: bool) -> None:
        for subscriber in list(self.subscribers):
            if welfare_only and not subscriber.welfare:
                continue
            try:
                subscriber.queue.put_nowait((name, data))
            except asyncio.QueueFull:
                subscriber.dropped = True
                self.subscribers.discard(subscriber)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                self.refresh()
            except Exception:      # noqa: BLE001 - one bad refresh must not end the page
                log.exception("control room: refresh failed")

    def refresh(self) -> None:
        """Set the open-alerts gauge and push the view to every subscriber (see the module docstring)."""
        self._sample_rates()
        now = self.now()
        counts = self.books[False].open_counts(now, self.domains)
        for (domain, band), n in self.books[True].open_counts(now, self.domains).items():
            counts[(domain, band)] = counts.get((domain, band), 0) + n
        for pair in self._gauged - set(counts):     # a band of a domain no longer counted goes back to 0
            counts[pair] = 0
        for (domain, band), n in counts.items():
            metrics.ALERTS_OPEN.labels(domain, band).set(n)
        self._gauged |= set(counts)
        views = {}
        for subscriber in list(self.subscribers):
            if subscriber.welfare not in views:
                views[subscriber.welfare] = self.view(subscriber.welfare)
        for welfare, view in views.items():
            self._publish_view(view, welfare)

    def _publish_view(self, view: dict, welfare: bool) -> None:
        for subscriber in list(self.subscribers):
            if subscriber.welfare == welfare:
                try:
                    subscriber.queue.put_nowait(("state", view))
                except asyncio.QueueFull:
                    subscriber.dropped = True
                    self.subscribers.discard(subscriber)

    # -- the view ------------------------------------------------------------------------------

    def now(self) -> float:
        """The clock ages are measured against: the books' (wall time, or the feed's newest alert when the
        feed is far behind, as for a replayed or simulated city)."""
        wall = self.clock()
        newest = [b.newest_s for b in self.books.values() if b.newest_s is not None]
        if newest and wall - max(newest) > CLOCK_SKEW_S:
            return max(newest)
        return wall

    def _sample_rates(self) -> None:
        wall = self.clock()
        counts = {d: _counter("glasscity_readings_consumed_total", {"domain": d}) for d in self.domains}
        if self._last_counts is not None:
            then, before = self._last_counts
            elapsed = wall - then
            if elapsed > 0:
                self._rates = {d: max(0.0, (counts[d] - before.get(d, 0.0)) / elapsed) for d in self.domains}
        self._last_counts = (wall, counts)

    def view(self, welfare: bool = False) -> dict:
        """The page's state (see the module docstring); ``welfare`` adds the welfare book to it."""
        now = self.now()
        books = [self.books[False]] + ([self.books[True]] if welfare else [])
        open_alerts = sorted((a for b in books for a in b.open_alerts()), key=lambda a: (a.raised_s, a.detector))
        by_domain = {d: {label: 0 for _bound, label in AGE_BANDS} for d in self.domains}
        for book in books:
            for (domain, band), n in book.open_counts(now, self.domains).items():
                by_domain.setdefault(domain, {label: 0 for _bound, label in AGE_BANDS})[band] += n
        feed = list(self.feeds[False])
        if welfare:
            feed = sorted(feed + list(self.feeds[True]), key=lambda r: r["time"] or "", reverse=True)[:FEED_LENGTH]
        hour_ago = now - 3600.0
        alerts_per_h = {d: 0 for d in self.domains}
        for w in ([False, True] if welfare else [False]):
            for at, domain in self.raises[w]:
                if hour_ago <= at <= now:
                    alerts_per_h[domain] = alerts_per_h.get(domain, 0) + 1
        return {
            "now": iso_time(now), "view": "welfare" if welfare else "general", "domains": list(self.domains),
            "bands": [label for _bound, label in AGE_BANDS],
            "feed_error": self.feed_error, "unreadable": self.unreadable, "feed": feed,
            "open": {"total": len(open_alerts), "by_domain": by_domain,
                     "oldest": [{"domain": a.domain, "detector": a.detector, "severity": a.severity,
                                 "subject": self._shown_subject(a.domain, a.subject, _is_welfare(a)),
                                 "raised": iso_time(a.raised_s), "age_s": now - a.raised_s, "welfare": _is_welfare(a)}
                                for a in open_alerts[:OPEN_LISTED]]},
            "rates": {d: {"readings_per_s": self._rates.get(d, 0.0), "alerts_per_h": alerts_per_h.get(d, 0)}
                      for d in self.domains},
            "kpi": {"intervention_delay": self._delays(welfare),
                    "intervention_delay_all": _quantiles([d for w in ([False, True] if welfare else [False])
                                                          for ds in self.delays[w].values() for d in ds]),
                    "lighting": self._lighting()},
            "plan": self._plan(open_alerts, welfare),
        }

    def _delays(self, welfare: bool) -> dict:
        found = {detector: _quantiles(delays) for detector, delays in self.delays[False].items()}
        if welfare:
            found.update({detector: _quantiles(delays) for detector, delays in self.delays[True].items()})
        return dict(sorted(found.items()))

    @staticmethod
    def _lighting() -> dict:
        used = _counter("glasscity_lighting_energy_joules_total", {"kind": "used"})
        full = _counter("glasscity_lighting_energy_joules_total", {"kind": "full_power_night"})
        return {"used_j": used, "full_power_night_j": full, "saving": (1.0 - used / full) if full > 0 else None}

    def _plan(self, open_alerts, welfare: bool) -> dict:
        try:
            positions = self.positions()
        except RuntimeError as error:     # a pipeline changed its positions while they were read: next refresh
            log.debug("control room: positions not read this time: %s", error)
            positions = {}
        sensors, cells = {}, {}
        for domain, known in positions.items():
            if domain in PERSONAL_DOMAINS:
                for lon, lat in known.values():
                    cells[(lon, lat)] = cells.get((lon, lat), 0) + 1
            else:
                sensors[domain] = [[round(lon, 6), round(lat, 6)] for lon, lat in known.values()]
        markers, cell_alerts, unplaced = [], {}, 0
        for alert in open_alerts:
            where = positions.get(alert.domain, {}).get(alert.subject)
            gateway = where is None and alert.subject in positions.get(GATEWAYS, {})
            if gateway:
                where = positions[GATEWAYS][alert.subject]
            if where is None:
                unplaced += 1
                continue
            lon, lat = where
            if alert.domain in PERSONAL_DOMAINS and not gateway and not _is_welfare(alert):
                cell_alerts[(lon, lat)] = cell_alerts.get((lon, lat), 0) + 1
                continue
            markers.append({"lon": round(lon, 6), "lat": round(lat, 6), "domain": alert.domain,
                            "detector": alert.detector, "severity": alert.severity, "subject": alert.subject})
        points = [p for group in sensors.values() for p in group] + [[lon, lat] for lon, lat in cells]
        bounds = None
        if points:
            lons, lats = [p[0] for p in points], [p[1] for p in points]
            bounds = [min(lons), min(lats), max(lons), max(lats)]
        return {"bounds": bounds, "sensors": sensors,
                "cells": [[round(lon, 6), round(lat, 6), n] for (lon, lat), n in cells.items()],
                "cell_alerts": [[round(lon, 6), round(lat, 6), n] for (lon, lat), n in cell_alerts.items()],
                "markers": markers, "unplaced": unplaced}
