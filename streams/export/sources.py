"""Where exported entities come from: a file of messages, the readings topics, the alert topic.

Contract: :func:`message_entities` reads JSON lines (:func:`file_messages`) (one wire-format message per line: a reading
or a ``ReadingBatch`` envelope of any domain, told apart by ``type``, or an alert CloudEvent
as ``glasscity alerts tail --format jsonl`` writes) and yields the entities of
:mod:`streams.export.entities`. Readings are decoded and validated by :mod:`streams.ingest`
exactly as the worker does, so what the worker would refuse is refused here too and
reported (:class:`ExportReport`), never exported and never fatal. Meter ids are replaced by
their pseudonyms with the worker's key before an entity exists.

:func:`topic_messages` reads each readings topic from its beginning to its end (no consumer
group); :func:`topic_alerts` reads the general alert topic the same way. Events of
detectors publishing to the restricted welfare topic are never exported, from a file or
a topic (counted in ``ExportReport.restricted``).
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import orjson

import schemas
from streams.export.entities import alert_entity, is_restricted, observation_entity

__all__ = ["ExportReport", "file_messages", "message_entities", "topic_messages", "topic_alerts", "ExportError",
           "CHUNK_MESSAGES"]

#: Messages decoded in one call (bounds memory to a chunk's readings, not the file's).
CHUNK_MESSAGES = 2000


class ExportError(Exception):
    """The export cannot run (input unreadable, broker unreachable); the message says why."""


@dataclass
class ExportReport:
    """What an export read, produced and left out."""

    messages: int = 0
    readings: int = 0
    alerts: int = 0
    entities: int = 0
    refused: list = field(default_factory=list)       # (where, reason, detail) of each refused item
    skipped: Counter = field(default_factory=Counter)  # reading type -> readings without a model here
    restricted: int = 0                                # welfare alerts left out

    def summary(self) -> str:
        parts = [f"{self.entities} entities from {self.readings} readings and {self.alerts} alert events "
                 f"({self.messages} messages)"]
        if self.refused:
            parts.append(f"{len(self.refused)} refused")
        if self.skipped:
            parts.append("not exported (no Smart Data Model mapping): "
                         + ", ".join(f"{n} {kind}" for kind, n in sorted(self.skipped.items())))
        if self.restricted:
            parts.append(f"{self.restricted} welfare alert event(s) not exported (restricted)")
        return "; ".join(parts)


def _reading_domains() -> dict[str, str]:
    """Reading ``type`` -> domain, from each domain's wire schema (its definitions' ``type`` consts)."""
    from streams.domains import DOMAINS

    found = {}
    for domain in DOMAINS.values():
        for definition in schemas.load(domain.schema)["definitions"].values():
            const = definition.get("properties", {}).get("type", {}).get("const")
            if isinstance(const, str) and const != "ReadingBatch":
                found[const] = domain.name
    return found


def _domain_of(document, domains: dict[str, str]) -> str | None:
    if not isinstance(document, dict):
        return None
    if document.get("type") == "ReadingBatch":
        readings = document.get("readings")
        first = readings[0] if isinstance(readings, list) and readings else None
        return domains.get(first.get("type")) if isinstance(first, dict) else None
    return domains.get(document.get("type"))


def message_entities(messages: Iterable[tuple[str, bytes]], pseudonymizer: Callable[[], object],
                     report: ExportReport) -> Iterator[dict]:
    """Entities of ``(where, message bytes)`` pairs (readings or alert events, any domain, in order per chunk).

    ``pseudonymizer()`` gives the :class:`~streams.pseudonym.Pseudonymizer` (asked for only when a
    domain with personal subjects appears, so exporting traffic needs no key).
    """
    from streams.domains import DOMAINS
    from streams.ingest import RawMessage, decode

    domains = _reading_domains()
    pending: dict[str, list[RawMessage]] = {}
    wheres: list[str] = []

    def flush() -> Iterator[dict]:
        for name, raw in pending.items():
            domain = DOMAINS[name]
            batch = decode(raw, domain, now=math.inf)
            for dead in batch.dead_letters:
                at = wheres[dead.source.offset]
                if dead.reading_index >= 0:
                    at += f" reading {dead.reading_index + 1}"
                report.refused.append((at, dead.reason, dead.detail))
            subjects = batch.subject_ids
            if domain.subject_pseudonym is not None:
                subjects = pseudonymizer().many(domain.subject_pseudonym, subjects)
            report.readings += len(batch)
            for i, subject in enumerate(subjects):
                reading = batch.reading(i)
                entity = observation_entity(name, reading, subject)
                if entity is None:
                    report.skipped[reading.get("type", "?")] += 1
                    continue
                report.entities += 1
                yield entity
        pending.clear()
        wheres.clear()

    for where, value in messages:
        report.messages += 1
        try:
            document = orjson.loads(value)
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, dict) and "specversion" in document:
            yield from _alert(document, where, report)
            continue
        domain = _domain_of(document, domains)
        if domain is None:
            report.refused.append((where, "unknown", "neither a reading of a known type (water, traffic, waste, "
                                                     "lighting) nor an alert event"))
            continue
        wheres.append(where)
        pending.setdefault(domain, []).append(RawMessage(value, "export", 0, len(wheres) - 1))
        if len(wheres) >= CHUNK_MESSAGES:
            yield from flush()
    yield from flush()


def _alert(event: dict, where: str, report: ExportReport) -> Iterator[dict]:
    report.alerts += 1
    if is_restricted(event):
        report.restricted += 1
        return
    try:
        entity = alert_entity(event)
    except (KeyError, TypeError, AttributeError) as error:
        report.refused.append((where, "schema", f"not an alert event of schemas/alert.schema.json "
                                                f"({error.__class__.__name__}: {error})"))
        return
    report.entities += 1
    yield entity


def file_messages(path: str) -> list[tuple[str, bytes]]:
    """The non-blank lines of a JSON-lines file as ``(where, value)``; ExportError if it cannot be read."""
    try:
        with open(path, "rb") as handle:
            lines = handle.read().splitlines()
    except OSError as error:
        raise ExportError(f"cannot read the input file {path}: {error.strerror}") from None
    return [(f"{path}: line {n}", line) for n, line in enumerate(lines, 1) if line.strip()]


def topic_messages(settings, domains) -> list[tuple[str, bytes]]:
    """Every message of the domains' readings topics, beginning to end, as ``(where, value)``."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    from streams.durable import read_changelog
    from streams.kafka_security import aiokafka_security, kafka_python_security

    topics = [settings.topic(d.topic("readings")) for d in domains]
    try:   # partitions from the metadata (kafka-python: a plain client outside any group)
        probe = KafkaConsumer(bootstrap_servers=settings.bootstrap.split(","), group_id=None,
                              client_id="glasscity-export", allow_auto_create_topics=False,
                              **kafka_python_security(settings))
    except KafkaError as error:
        raise ExportError(f"no Kafka broker reachable at {settings.bootstrap}: {error}") from None
    try:
        partitions = {topic: sorted(probe.partitions_for_topic(topic) or ()) for topic in topics}
    finally:
        probe.close()
    for topic, numbers in partitions.items():
        if not numbers:
            raise ExportError(f"the broker at {settings.bootstrap} has no topic {topic}: create the topics first "
                              f"(glasscity topics create), or check --topic-prefix")
    security = aiokafka_security(settings)

    async def read() -> list[tuple[str, bytes]]:
        found = []
        for topic, numbers in partitions.items():
            records = await read_changelog(settings.bootstrap, topic, {p: 0 for p in numbers}, security=security)
            found += [(f"{topic}[{p}] record {n}", value) for p in numbers
                      for n, (_key, value) in enumerate(records[p], 1) if value is not None]
        return found

    try:
        return asyncio.run(read())
    except Exception as error:   # aiokafka's connection errors and the stall TimeoutError: cannot read
        raise ExportError(f"cannot read the readings topics at {settings.bootstrap}: "
                          f"{error.__class__.__name__}: {error}") from None


def topic_alerts(settings) -> list[tuple[str, bytes]]:
    """Every event of the general alert topic, beginning to end, as ``(where, value)`` (never the welfare topic)."""
    from streams.control.feed import AlertTopicsMissing, follow_alerts

    async def read() -> list[tuple[str, bytes]]:
        found = []
        async for item in follow_alerts(settings, welfare=False, from_beginning=True, until_end=True):
            where = f"{item.topic}[{item.partition}]@{item.offset}"
            found.append((where, orjson.dumps(item.event) if item.event is not None else b""))
        return found

    try:
        return asyncio.run(read())
    except AlertTopicsMissing as error:
        raise ExportError(str(error)) from None
    except Exception as error:
        raise ExportError(f"cannot read the alert topic at {settings.bootstrap}: "
                          f"{error.__class__.__name__}: {error}") from None
