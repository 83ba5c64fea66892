"""The Faust application: topics, one agent per domain, ownership and durability. Kept thin.

Everything an agent does to a batch is :class:`streams.pipeline.DomainPipeline`; this
module moves bytes between Kafka and that pipeline, in the one order that loses nothing:

1. a batch is taken *without* acknowledging it: up to ``batch_size`` records, within
   ``batch_within_s`` of the first, handed over by Faust's consumer a whole fetch at a time
   (:mod:`streams.fetches`; Faust's per-event stream machinery cost far more than the
   pipeline on single-reading messages);
2. the pipeline folds it into the partition's state (messages its state already covers,
   redelivered after a restart, are skipped);
3. its alerts, dead letters and late readings are published and **confirmed**;
4. the state rows it changed and the partition clock (the offset covered) are written to
   the compacted ``<domain>.state.v1`` changelog, same partition, and **confirmed**;
5. only then are its offsets acknowledged, so a commit never runs ahead of durable state.

A crash between 3 and 4 re-emits the same alerts (deterministic ids) after the restart;
a crash anywhere else re-reads what the state does not cover. A record the broker keeps
refusing stops the worker (exit 4) instead of being skipped.

Ownership: on every rebalance the partitions a worker loses are dropped (their state is
already durable); partitions it is given are restored from the changelog before their
first message is processed (``on_rebalance_complete`` runs before Faust resumes the
streams). A partition kept across a rebalance keeps its state when nothing was written to
its changelog since this worker's own last write.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
import os
import sys
import time

import faust
import orjson

from streams import metrics
from streams.alerts import alert_event
from streams.config import Settings
from streams.detectors.feed.stalled import FeedWatch
from streams.fetches import App, FaustIncompatible, check_faust
from streams.durable import Outgoing, Publisher, PublishFailed, read_changelog
from streams.health import READINESS
from streams.ingest import RawMessage
from streams.kafka_security import aiokafka_security, faust_credentials
from streams.pipeline import DomainPipeline
from streams.registers import RegisterError, RegisterFollower
from streams.state.changelog import CLOCK_KEY
from streams.topics import ALERT_TOPICS

__all__ = ["create_app", "partitions_behind", "EXIT_PUBLISH_FAILED", "EXIT_PROCESSING_FAILED"]

log = logging.getLogger("glasscity.worker")

#: Exit code when the broker refuses records after every retry (nothing was acknowledged).
EXIT_PUBLISH_FAILED = 4
#: Exit code when processing a batch raised (a bug; nothing of the batch was acknowledged).
EXIT_PROCESSING_FAILED = 5
#: How often the consumer lag is measured against the end offsets the broker reports (s).
LAG_EVERY_S = 5.0
#: Key of the marker a worker writes to a changelog partition before restoring it (ignored on rebuild).
MARKER_KEY = b"m"


def faust_settings(settings: Settings) -> dict:
    session_s = min(settings.rebalance_timeout_s, 60.0)
    return dict(
        broker=["kafka://" + host for host in settings.bootstrap.split(",")],
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_allow_declare=False,        # topics are created by `glasscity topics create`
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_session_timeout=session_s,
        broker_heartbeat_interval=min(3.0, session_s / 4),
        producer_acks=-1,
        broker_credentials=faust_credentials(settings),   # SASL / TLS for its consumer and producer alike
        topic_replication_factor=settings.replication_factor,
        # No leader-election topic (<app_id>-__assignor-__leader): nothing here runs on_leader, and
        # under least-privilege ACLs the worker may read and write only the topics it declares.
        topic_disable_leader=True,
    )


class _Domain:
    """What the app keeps per domain: its pipeline, topics, owned partitions and changelog positions."""

    def __init__(self, settings: Settings, pipeline: DomainPipeline, feed_thresholds=None):
        domain = pipeline.domain
        self.name = domain.name
        self.pipeline = pipeline
        self.readings = settings.topic(domain.topic("readings"))
        self.dlq = settings.topic(domain.topic("dlq"))
        self.late = settings.topic(domain.topic("late"))
        self.state = settings.topic(domain.topic("state"))
        self.owned: set[int] = set()
        self.kept: set[int] = set()                 # revoked, kept in memory until the assignment is known
        self.last_written: dict[int, int] = {}      # partition -> changelog offset of our last state record
        self.positions: dict[int, int] = {}         # partition -> next readings offset to process (consumer lag)
        self.lock = asyncio.Lock()
        self.feed = FeedWatch(self.name, self.readings, feed_thresholds)


def partitions_behind(positions: dict[int, int], ends: dict[int, int | None]) -> set[int]:
    """Partitions whose end offset (``ends``: the next offset the broker will assign, as the latest fetch
    response gave it; None = unknown) lies beyond ``positions`` (the next offset to process): records
    wait there unprocessed, fetched or not. A partition without both is not counted."""
    return {p for p, end in ends.items() if end is not None and p in positions and end > positions[p]}


def create_app(settings: Settings, pipelines: list[DomainPipeline], feed_thresholds=None, consent=None) -> faust.App:
    """A Faust app with one agent per domain pipeline, ownership hooks, the idle-partition timer and
    the feed watch (``feed.stalled``, wall clock; ``feed_thresholds`` its thresholds).

    ``consent`` (a :class:`streams.consent.ConsentRegister` the pipelines share) is followed from the
    register topics: read to its end before the first partition is restored, then before every
    batch and on the idle timer; a change deletes the state it no longer allows at once."""
    app = App(settings.app_id, **faust_settings(settings))
    raw = dict(key_serializer="raw", value_serializer="raw")
    alert_topics = {short: settings.topic(short) for short in ALERT_TOPICS}
    domains = {p.domain.name: _Domain(settings, p, feed_thresholds) for p in pipelines}
    publisher = Publisher(app, on_failure=lambda domain, kind, error: metrics.PUBLISH_FAILURES.labels(
        domain, kind).inc())
    READINESS.expect(domains)
    follower = None
    if consent is not None:
        follower = RegisterFollower(settings, consent, publisher)

    async def follow_consent(d: _Domain) -> None:
        """Fold in register changes before a batch of ``d``; delete at once the state they no longer allow
        in ``d`` (the other domains' pipelines on the idle timer, under their own locks)."""
        if follower is not None and await follower.poll():
            d.pipeline.apply_consent()

    def outputs(d: _Domain, result) -> list[Outgoing]:
        records = []
        if result.dead_letters:
            # One line per batch, not per item: a flood of bad input must not become a flood of logs
            # (each item is on the dead-letter topic with its headers, and counted by reason).
            first = result.dead_letters[0]
            reasons = Counter(dead.reason for dead in result.dead_letters)
            log.warning("%d dead letter(s) to %s (%s); first: %s at %s[%d]@%d: %s", len(result.dead_letters), d.dlq,
                        ", ".join(f"{r} {n}" for r, n in reasons.most_common()), first.reason, first.source.topic,
                        first.source.partition, first.source.offset, first.detail[:200])
        for dead in result.dead_letters:
            key, value, headers = dead.kafka_record()
            records.append(Outgoing(d.dlq, key, value, "dead_letter", headers=headers))
        for late in result.late:
            key, value, headers = late.kafka_record()
            records.append(Outgoing(d.late, key, value, "late", headers=headers))
        for alert in result.alerts:
            records.append(Outgoing(alert_topics[alert.topic], alert.key, orjson.dumps(alert.event), "alert"))
        return records

    async def publish(d: _Domain, result, oldest_timestamp_ms: int | None = None) -> None:
        """Steps 3 and 4 of the module docstring; raises PublishFailed. ``oldest_timestamp_ms``: the Kafka
        timestamp of the batch's oldest record, for the produce-to-alert latency of its alerts."""
        await publisher.send_all(outputs(d, result), d.name)
        if result.alerts and oldest_timestamp_ms is not None:
            latency = metrics.PRODUCE_TO_ALERT.labels(d.name)
            seconds = max(0.0, time.time() - oldest_timestamp_ms / 1000.0)   # a producer clock ahead is not < 0
            for _alert in result.alerts:
                latency.observe(seconds)
        changes = d.pipeline.changelog()
        rows = [Outgoing(d.state, key, value, "state", partition=p) for p, key, value in changes if key != CLOCK_KEY]
        clocks = [Outgoing(d.state, key, value, "state", partition=p) for p, key, value in changes if key == CLOCK_KEY]
        # Rows first, confirmed, then the clocks: a clock in the log always follows every row it
        # covers (rows after the last clock are an unfinished write, ignored on restore).
        await publisher.send_all(rows, d.name)
        confirmed = await publisher.send_all(clocks, d.name)
        for record, meta in zip(clocks, confirmed):
            d.last_written[record.partition] = max(d.last_written.get(record.partition, -1), meta.offset)
        d.pipeline.record(result)

    def fatal(error: BaseException) -> None:
        print(f"glasscity worker: the broker refused records after every retry ({error}); stopping without "
              f"acknowledging the input behind them, exit {EXIT_PUBLISH_FAILED}", file=sys.stderr, flush=True)
        os._exit(EXIT_PUBLISH_FAILED)   # state is durable for everything acknowledged: a hard stop is safe

    def processing_failed(d: _Domain, stage: str, what: str) -> None:
        """Count, log (with the traceback) and stop: an exception while processing is a bug (exit 5)."""
        metrics.PROCESSING_ERRORS.labels(d.name, stage).inc()
        log.exception("%s of %s failed", what, d.name)
        print(f"glasscity worker: {what} of {d.name} failed (see the log); exit {EXIT_PROCESSING_FAILED}",
              file=sys.stderr, flush=True)
        os._exit(EXIT_PROCESSING_FAILED)

    def measure_lag(d: _Domain, next_offsets: dict, owned: set[int]) -> None:
        """Consumer lag of the partitions a batch came from, against the end offset of the latest fetch
        response (known to the consumer already: no request)."""
        for tp, position in next_offsets.items():
            if tp.partition in owned:
                d.positions[tp.partition] = position
                metrics.consumer_lag(d.name, tp.partition, app.consumer.highwater(tp), position)

    def behind(d: _Domain) -> set[int]:
        """Partitions of ``d`` with records not processed yet: the end offset of the latest fetch response
        beyond the next offset to process. Not idle, however long since their last batch."""
        ends = {tp.partition: app.consumer.highwater(tp) for tp in app.consumer.assignment()
                if tp.topic == d.readings}
        return partitions_behind(d.positions, ends)

    def add_agent(d: _Domain) -> None:
        readings = app.topic(d.readings, **raw)
        feed = app.fetch_buffer(d.readings, settings.batch_size, settings.batch_within_s)

        async def consume(stream):
            # Subscribe the topic as iterating the stream would (noack_take begins so); its records
            # then reach `feed` a fetch at a time instead of this stream, one event each (streams.fetches).
            aiter(stream.channel)
            try:
                check_faust(app)
            except FaustIncompatible as error:
                print(f"glasscity worker: {error}", file=sys.stderr, flush=True)
                os._exit(1)
            while True:
                batch = await feed.take()    # at most batch_size records, within batch_within_s of the first
                async with d.lock:
                    # A partition is processed only while owned and restored (Faust drains the
                    # streams before a revocation, so this is a safety net, not a path).
                    owned = d.owned
                    messages = [RawMessage(r.value, r.topic, r.partition, r.offset, r.key) for r in batch.records
                                if r.partition in owned]
                    if messages:
                        await follow_consent(d)
                        await publish_feed(d, d.feed.arrived(time.time()))
                        try:
                            result = d.pipeline.process(messages)
                        except Exception:
                            # Bad input never raises (it is dead-lettered); this is a bug. Stop
                            # rather than stall with the batch unacknowledged.
                            processing_failed(d, "batch", "processing a batch")
                        try:
                            await publish(d, result, batch.oldest_timestamp_ms)
                        except PublishFailed as error:
                            fatal(error)
                await batch.ack()
                measure_lag(d, batch.next_offsets(), owned)

        consume.__name__ = consume.__qualname__ = d.name
        app.agent(readings, name=d.name)(consume)

    for d in domains.values():
        add_agent(d)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender, revoked, **kwargs):
        # Faust has drained the streams and committed what was acknowledged; our state is
        # durable for all of it. Keep it in memory until the next assignment says whether
        # the partition comes back to us.
        for d in domains.values():
            gone = {tp.partition for tp in revoked if tp.topic == d.readings}
            async with d.lock:       # no batch, sweep or restore of ours is in flight across it
                d.kept |= gone & set(d.pipeline.states)
                d.owned -= gone
            READINESS.revoked(d.name, gone)

    @app.on_rebalance_complete.connect
    async def on_rebalance_complete(sender, **kwargs):
        metrics.REBALANCES.inc()
        if follower is not None:
            try:
                await follower.start()     # once: every register read to its end before any partition runs
            except RegisterError as error:
                print(f"glasscity worker: {error}", file=sys.stderr, flush=True)
                os._exit(1)
            except Exception as error:    # the broker refused the marker or the read: as for a state restore
                print(f"glasscity worker: cannot read the consent registers ({error.__class__.__name__}: "
                      f"{error}); stopping, exit {EXIT_PUBLISH_FAILED}", file=sys.stderr, flush=True)
                os._exit(EXIT_PUBLISH_FAILED)
        assignment = app.consumer.assignment()
        for d in domains.values():
            mine = {tp.partition for tp in assignment if tp.topic == d.readings}
            READINESS.assigned(d.name, mine)
            metrics.partitions_assigned(d.name, mine)
            async with d.lock:
                for partition in set(d.pipeline.states) - mine:   # not ours (any more): forget it
                    d.pipeline.drop(partition)
                    d.last_written.pop(partition, None)
                for partition in set(d.positions) - mine:
                    del d.positions[partition]
                had_none = not d.owned
                await _restore(d, mine - d.owned)
                d.kept.clear()
                d.owned = mine
                if mine and had_none:
                    d.feed.watch_from(time.time(), restart=True)
            for partition in mine:
                READINESS.restored(d.name, partition)

    async def _restore(d: _Domain, partitions: set[int]) -> None:
        """Rebuild the given partitions from the changelog, exactly to its end.

        A marker record is written to each partition first; reading up to the marker's
        offset is exact whatever end offsets the broker reports. A partition kept across
        the rebalance whose marker directly follows our own last record was written by
        nobody else: its state in memory is current.
        """
        if not partitions:
            return
        started = time.perf_counter()
        marker = orjson.dumps({"restore": settings.app_id, "at": time.time()})
        try:
            confirmed = await publisher.send_all(
                [Outgoing(d.state, MARKER_KEY, marker, "state", partition=p) for p in sorted(partitions)], d.name)
        except PublishFailed as error:
            fatal(error)
        ends = {p: meta.offset for p, meta in zip(sorted(partitions), confirmed)}
        kept = {p for p in partitions if p in d.kept and d.last_written.get(p, -2) + 1 == ends[p]}
        todo = partitions - kept
        found = await read_changelog(settings.bootstrap, d.state, {p: 0 for p in todo}, {p: ends[p] for p in todo},
                                     security=aiokafka_security(settings))
        restored, covers = 0, {p: "kept" for p in kept}
        loop = asyncio.get_running_loop()
        for partition, records in sorted(found.items()):
            # CPU-bound for a big state: off the event loop, so heartbeats go on meanwhile
            try:
                covers[partition] = await loop.run_in_executor(None, d.pipeline.restore, partition, records)
            except Exception:
                processing_failed(d, "restore", f"restoring partition {partition}")
            restored += len(records)
            if isinstance(covers[partition], int):    # the next offset to process, until a batch says more
                d.positions[partition] = covers[partition] + 1
        for partition in partitions:
            d.last_written[partition] = ends[partition]   # the marker is now the last record we know of
        log.info("restored %s state from %d changelog records in %.2f s; offset covered per partition: %s",
                 d.name, restored, time.perf_counter() - started, covers)
        metrics.STATE_RESTORED_RECORDS.labels(d.name).inc(restored)
        metrics.STATE_RESTORE_SECONDS.labels(d.name).observe(time.perf_counter() - started)

    async def publish_feed(d: _Domain, transitions) -> None:
        """feed.stalled transitions: confirmed like any alert (no state behind them to commit)."""
        if not transitions:
            return
        records = [Outgoing(alert_topics[d.feed.declaration.alert_topic], t.subject.encode(),
                            orjson.dumps(alert_event(t, d.feed.declaration)), "alert") for t in transitions]
        try:
            await publisher.send_all(records, d.name)
        except PublishFailed as error:
            fatal(error)
        for t in transitions:
            log.warning("feed %s %s: %s", d.readings, t.state, "no message for "
                        f"{d.feed.thresholds.stalled_after_s:.0f} s" if t.state == "raised" else "messages again")
            metrics.ALERTS.labels(d.name, t.detector, t.state).inc()

    @app.timer(interval=min(5.0, settings.idle_partition_after_s / 4))
    async def idle_partitions():
        if follower is not None and follower.ready and not app.rebalancing:
            await follower.poll()
            for d in domains.values():
                if d.pipeline.consent_behind():           # a change not yet applied here (any domain's poll)
                    async with d.lock:
                        d.pipeline.apply_consent()
        for d in domains.values():
            async with d.lock:
                if app.rebalancing or not d.owned:   # checked under the lock: a revoke takes it too
                    continue
                await publish_feed(d, d.feed.check(time.time()))
                try:
                    result = d.pipeline.advance_idle(d.owned, waiting=behind(d))
                except Exception:
                    processing_failed(d, "idle_sweep", "moving idle partitions on")
                try:
                    await publish(d, result)
                except PublishFailed as error:
                    fatal(error)

    @app.timer(interval=LAG_EVERY_S)
    async def end_offsets():
        """Consumer lag from the end offsets the broker reports now (one request per domain): the lag of a
        partition that stopped being fetched (a stuck batch, back-pressure) keeps growing here."""
        if app.rebalancing:
            return
        for d in domains.values():
            known = {tp: d.positions[tp.partition] for tp in app.consumer.assignment()
                     if tp.topic == d.readings and tp.partition in d.positions}
            if not known:
                continue
            try:
                ends = await app.consumer.highwaters(*known)
            except Exception as error:     # the broker away or busy: the next tick asks again
                log.debug("end offsets of %s not known now: %s: %s", d.readings, type(error).__name__, error)
                continue
            for tp, end in ends.items():
                # the position read now: a batch processed while the broker answered has moved it on
                position = d.positions.get(tp.partition)
                if position is not None and tp.partition in d.owned:
                    metrics.consumer_lag(d.name, tp.partition, end, position)

    return app
