"""Re-inject dead letters: a domain's DLQ topic back into its readings topic.

Contract of :func:`replay_dead_letters` (behind ``glasscity dlq replay``):

- Reads ``<prefix>.<domain>.dlq.v1`` from the beginning of every partition with a
  plain consumer outside any consumer group (kafka-python's groups stall on the
  embedded broker), to its end: the end offsets the broker reports are only a hint
  (Tansu reports fewer than it stores), so reading goes on past them until a poll
  returns nothing.
- Records written after the replay began are not read: a record the worker refuses
  again comes back to the DLQ, and must not be re-injected in a loop.
- Selects records whose ``reason`` header equals ``reason`` (if given) and whose
  timestamp is at or after ``since`` (epoch s, if given).
- Re-produces each selected record's value with its key to
  ``<prefix>.<domain>.readings.v1``, with a ``replayed_from`` header
  (``topic:partition:offset`` of the dead letter); every send is checked
  (:class:`streams.delivery.DeliveryCheck`). Records marked ``truncated`` hold an
  incomplete value: they are skipped and counted, never re-injected.
- Returns a :class:`ReplayReport`; ``failed`` > 0 when the broker refused any.
  ``dry_run`` counts what would be re-injected and produces nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from streams.delivery import DeliveryCheck, ProduceError, close_producer, make_producer
from streams.kafka_security import kafka_python_security

from streams import timeparse
from streams.timeparse import InstantError

__all__ = ["ReplayReport", "DlqError", "DlqArgumentError", "replay_dead_letters", "parse_since"]

#: Flush and check deliveries after this many re-injected records, so a refusing
#: broker stops the replay early instead of after the whole topic.
FLUSH_EVERY = 1000


class DlqError(RuntimeError):
    """The replay could not run: no broker, no such topic, or the topic could not be read."""


class DlqArgumentError(DlqError):
    """The replay was asked something impossible: unknown domain or reason, unreadable ``since``."""


@dataclass
class ReplayReport:
    """Counts of one replay. ``read`` records seen in the DLQ, ``selected`` of them
    matching the filters; of those, ``reinjected`` confirmed by the broker,
    ``skipped`` truncated (not replayable), ``failed`` refused or not sent."""

    domain: str
    source_topic: str
    target_topic: str
    read: int = 0
    selected: int = 0
    reinjected: int = 0
    skipped: int = 0
    failed: int = 0
    dry_run: bool = False
    error: str | None = None

    def summary(self) -> str:
        done = (f"would re-inject {self.selected - self.skipped}" if self.dry_run
                else f"re-injected {self.reinjected}")
        line = (f"dlq replay {self.domain}: read {self.read} from {self.source_topic}, selected {self.selected}, "
                f"{done} to {self.target_topic}, skipped {self.skipped} truncated, failed {self.failed}")
        return line + (f"; {self.error}" if self.error else "")


def parse_since(text: str) -> float:
    """Epoch seconds of ``--since`` (:func:`streams.timeparse.parse_since`: ISO 8601, epoch s or an age)."""
    try:
        return timeparse.parse_since(text)
    except InstantError as error:
        raise DlqArgumentError(f"--since {text.strip()!r}: {error}") from None


def _header(record, name: str) -> bytes | None:
    for key, value in record.headers or ():
        if key == name:
            return value
    return None


def replay_dead_letters(settings, domain: str, reason: str | None = None, since: float | None = None,
                        dry_run: bool = False, poll_timeout_s: float = 1.0, read_timeout_s: float = 60.0,
                        producer=None) -> ReplayReport:
    """Re-inject ``domain``'s dead letters into its readings topic (see the module doc).

    ``poll_timeout_s``: one poll's wait; an empty poll past the reported end ends the
    read. ``read_timeout_s``: give up (:class:`DlqError`) if the reported end is not
    reached in that long. ``producer``: a kafka-python producer to use (not closed).
    """
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    from streams.domains import DOMAINS
    from streams.ingest.dead_letter import REASONS, TRUNCATED_HEADER

    if domain not in DOMAINS:
        raise DlqArgumentError(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
    if reason is not None and reason not in REASONS:
        raise DlqArgumentError(f"unknown reason {reason!r}; expected one of {', '.join(REASONS)}")
    source = settings.topic(DOMAINS[domain].topic("dlq"))
    target = settings.topic(DOMAINS[domain].topic("readings"))
    report = ReplayReport(domain, source, target, dry_run=dry_run)
    started_ms = int(time.time() * 1000)
    since_ms = None if since is None else since * 1000.0
    wanted_reason = None if reason is None else reason.encode()

    security = kafka_python_security(settings)
    try:
        consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap.split(","), group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 client_id="glasscity-dlq-replay",
                                 allow_auto_create_topics=False,   # a mistyped prefix must not create a DLQ
                                 **security)
    except KafkaError as error:
        raise DlqError(f"no Kafka broker reachable at {settings.bootstrap}: {error}") from None
    own = producer is None and not dry_run
    check = None
    try:
        numbers = consumer.partitions_for_topic(source)
        if not numbers:
            raise DlqError(f"topic {source} does not exist at {settings.bootstrap}")
        partitions = [TopicPartition(source, p) for p in sorted(numbers)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        reported_end = consumer.end_offsets(partitions)   # a lower bound on Tansu, never the end
        finished: set = set()   # partitions that reached records newer than the replay
        if not dry_run:
            producer = producer or make_producer(settings.bootstrap, "glasscity-dlq-replay", linger_ms=10, **security)
            check = DeliveryCheck(producer)
        deadline = time.monotonic() + read_timeout_s
        while True:
            batches = consumer.poll(timeout_ms=int(poll_timeout_s * 1000))
            if not batches:
                behind = [tp for tp in partitions
                          if tp not in finished and consumer.position(tp) < reported_end[tp]]
                if not behind:
                    break
                if time.monotonic() > deadline:
                    raise DlqError(f"{source} could not be read to its end within {read_timeout_s:g} s "
                                   f"(still behind on partitions {sorted(tp.partition for tp in behind)})")
                continue
            for tp, records in batches.items():
                for record in records:
                    if record.timestamp >= started_ms:
                        finished.add(tp)
                        consumer.pause(tp)   # the rest of this partition was written after we began
                        break
                    report.read += 1
                    if wanted_reason is not None and _header(record, "reason") != wanted_reason:
                        continue
                    if since_ms is not None and record.timestamp < since_ms:
                        continue
                    report.selected += 1
                    if _header(record, TRUNCATED_HEADER) == b"true":
                        report.skipped += 1
                        continue
                    if check is not None:
                        origin = f"{record.topic}:{record.partition}:{record.offset}".encode()
                        # an empty original may come back as None; b"" re-injects it as it was received
                        value = record.value if record.value is not None else b""
                        check.send(target, key=record.key, value=value, headers=[("replayed_from", origin)])
                        if check.attempted % FLUSH_EVERY == 0:
                            check.flush()
        if check is not None:
            report.reinjected = check.flush()
    except ProduceError as error:
        report.reinjected = error.confirmed
        report.failed = error.attempted - error.confirmed
        report.error = str(error)
    except KafkaError as error:
        raise DlqError(f"replaying {source} to {target} failed: {error}") from None
    finally:
        consumer.close()
        if own and producer is not None:
            close_producer(producer)
    return report
