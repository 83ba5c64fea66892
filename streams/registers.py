"""The Kafka side of the consent registers and of the audit log's topic copy.

* :func:`publish` writes records to one of the shared single-partition topics (a consent
  register, the audit topic) and returns once the broker confirmed every one, or raises
  :class:`RegisterError`.
* :func:`read_all` reads such a topic from its start to its end (a tool's read: "the end" is
  where a fetch returns nothing more past the reported end).
* :class:`RegisterFollower` is the worker's view: it follows the three consent registers into a
  :class:`streams.consent.ConsentRegister` — exactly to their end when the worker starts
  (through a marker record, as the state restore does), then every batch.
* :func:`publish_audit` / :func:`compare_audit`: the audit log's copy on ``<prefix>.audit.v1``
  (key = the entry's ``seq``; value = the entry's JSON line), and the comparison of file and topic.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson

from streams.consent import REGISTER_TOPICS, ConsentRegister
from streams.topics import AUDIT_TOPIC

__all__ = ["RegisterError", "publish", "read_all", "RegisterFollower", "publish_audit", "compare_audit",
           "MARKER_KEY", "topic_entries"]

log = logging.getLogger("glasscity.consent")

#: A record the follower writes to find the end; not a register record (ignored when read).
MARKER_KEY = b"m"


class RegisterError(RuntimeError):
    """A register or audit topic cannot be written or read; the message says where and why."""


def publish(settings, short: str, records: list[tuple[bytes, bytes | None]], client_id: str = "glasscity-cli") -> int:
    """Write ``(key, value)`` records (value None = tombstone) to ``<prefix>.<short>``, each confirmed."""
    from kafka.errors import KafkaError

    from streams.delivery import DeliveryCheck, ProduceError, close_producer, make_producer
    from streams.kafka_security import kafka_python_security

    from streams.worker import broker_answers

    topic = settings.topic(short)
    if not broker_answers(settings.bootstrap, timeout_s=2.0):      # fail now, not after the flush timeout
        raise RegisterError(f"no Kafka broker answers at {settings.bootstrap}")
    try:
        producer = make_producer(settings.bootstrap, client_id, linger_ms=5, **kafka_python_security(settings))
    except KafkaError as error:
        raise RegisterError(f"no Kafka broker reachable at {settings.bootstrap}: {error}") from None
    try:
        check = DeliveryCheck(producer, flush_timeout_s=30.0)
        for key, value in records:
            check.send(topic, key=key, value=value)
        return check.flush()
    except ProduceError as error:
        raise RegisterError(f"writing to {topic} failed: {error}") from None
    except KafkaError as error:
        raise RegisterError(f"writing to {topic} failed: {error}") from None
    finally:
        close_producer(producer, timeout_s=10)


def read_all(settings, short: str, timeout_s: float = 30.0) -> list[tuple[bytes, bytes | None]]:
    """Every record of the single-partition topic ``<prefix>.<short>``, in log order."""
    from streams.durable import read_changelog
    from streams.kafka_security import aiokafka_security

    topic = settings.topic(short)
    try:
        found = asyncio.run(read_changelog(settings.bootstrap, topic, {0: 0}, stall_timeout_s=timeout_s,
                                           security=aiokafka_security(settings)))
    except Exception as error:   # aiokafka raises its own errors and TimeoutError; all mean "cannot read"
        raise RegisterError(f"cannot read {topic} at {settings.bootstrap}: {error.__class__.__name__}: "
                            f"{error}") from None
    return [(k, v) for k, v in found[0] if k != MARKER_KEY]


class RegisterFollower:
    """Follows the consent register topics into ``register`` (one aiokafka consumer, no group)."""

    def __init__(self, settings, register: ConsentRegister, publisher=None):
        self.settings = settings
        self.register = register
        self.publisher = publisher          # streams.durable.Publisher, for the start-up marker
        self.topics = {settings.topic(short): kind for kind, short in REGISTER_TOPICS.items()}
        self._consumer = None
        self.ready = False          # every register read to its end once

    #: Longest start-up read of the registers without progress before giving up (s).
    START_STALL_S = 60.0

    async def start(self) -> None:
        """Read every register to its end: a marker is written to each, and read up to."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from streams.durable import Outgoing

        if self.ready:
            return
        if self._consumer is not None:       # a start that failed half-way: begin again from the start
            await self.stop()
            self.register.clear()
        from streams.kafka_security import aiokafka_security

        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap.split(","), group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=100,
                                    **aiokafka_security(self.settings))
        await consumer.start()
        missing = sorted(set(self.topics) - await consumer.topics())
        if missing:
            await consumer.stop()
            raise RegisterError(f"the consent register topics {', '.join(missing)} do not exist at "
                                f"{self.settings.bootstrap}; create them with `glasscity topics create`")
        partitions = [TopicPartition(topic, 0) for topic in self.topics]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        self._consumer = consumer
        ends = {}
        if self.publisher is not None:
            marker = orjson.dumps({"marker": self.settings.app_id})
            confirmed = await self.publisher.send_all(
                [Outgoing(topic, MARKER_KEY, marker, "state", partition=0) for topic in self.topics], "consent")
            ends = {TopicPartition(topic, 0): meta.offset for topic, meta in zip(self.topics, confirmed)}
        started = last_progress = time.monotonic()
        while True:
            if await self.poll(timeout_ms=200):
                last_progress = time.monotonic()
            if all([await consumer.position(tp) > end for tp, end in ends.items()]):
                break
            if time.monotonic() - last_progress > self.START_STALL_S:
                raise RegisterError(f"reading the consent registers stalled: nothing new for "
                                    f"{self.START_STALL_S:.0f} s ({len(self.register.enrolled)} enrolments so far)")
        self.ready = True
        log.info("consent registers read in %.2f s", time.monotonic() - started)
        log.info("consent registers read: %d enrolled, %d with absences, %d with objections",
                 len(self.register.enrolled), sum(1 for a in self.register.absences.values() if a),
                 sum(1 for o in self.register.objections.values() if o))

    async def poll(self, timeout_ms: int = 0) -> int:
        """Fold in what has arrived (waits at most ``timeout_ms``); returns the number of register records."""
        if self._consumer is None:
            return 0
        from streams import metrics

        batch = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=50_000)
        applied = 0
        for tp, records in batch.items():
            kind = self.topics[tp.topic]
            malformed = self.register.malformed
            for record in records:
                if record.key != MARKER_KEY:
                    self.register.apply(kind, record.key, record.value)
                    applied += 1
                    metrics.CONSENT_RECORDS.labels(kind).inc()
            metrics.CONSENT_MALFORMED.labels(kind).inc(self.register.malformed - malformed)
        if applied:
            metrics.HOUSEHOLDS_ENROLLED.set(len(self.register.enrolled))
        return applied

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


def publish_audit(settings, entries: list[dict]) -> int:
    """Copy audit entries to ``<prefix>.audit.v1`` (confirmed)."""
    return publish(settings, AUDIT_TOPIC, [(str(e["seq"]).encode(), orjson.dumps(e)) for e in entries],
                   client_id="glasscity-audit")


def topic_entries(topic_records: list[tuple[bytes, bytes | None]], problems: list | None = None) -> dict[int, dict]:
    """The audit topic's entries by ``seq``; a record that is not an entry is named in ``problems``."""
    copies: dict[int, dict] = {}
    for key, value in topic_records:
        try:
            entry = orjson.loads(value or b"")
            copies[int(entry["seq"])] = entry
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            if problems is not None:
                problems.append(f"topic record {key!r}: not an audit entry")
    return copies


def compare_audit(file_entries: list[dict], topic_records: list[tuple[bytes, bytes | None]]) -> list[str]:
    """How the file and the topic copy differ: entries missing from either, or different (by position)."""
    problems = []
    copies = topic_entries(topic_records, problems)
    for position, entry in enumerate(file_entries, start=1):
        copy = copies.pop(entry["seq"], None)
        if copy is None:
            problems.append(f"entry {position}: not on the audit topic (run `glasscity audit sync`)")
        elif copy != entry:
            problems.append(f"entry {position}: differs from its copy on the audit topic (hash "
                            f"{entry['hash'][:12]} in the file, {str(copy.get('hash'))[:12]} on the topic)")
    for seq in sorted(copies):
        problems.append(f"entry {seq + 1}: on the audit topic but not in the file (removed from the file)")
    return problems
