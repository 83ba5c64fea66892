"""Read the alert topics: history, live, or both, with a plain consumer outside any group.

:func:`follow_alerts` yields one :class:`FeedItem` per record of the alert topics — the
general one always, the restricted welfare topic only when asked (``welfare=True``: the
caller decides who may see it). A record that is not a readable alert event is yielded
with ``event=None`` and ``error`` saying why, never dropped in silence and never fatal:
the alert topics are ours, so such a record is a bug or tampering to report, not input
to dead-letter.

No consumer group: every reader sees every partition, so a page or a ``tail`` shows the
whole city whatever partitions a worker owns, and readers never rebalance the workers.
``from_beginning`` starts at the oldest retained alert, else at the current end.
``until_end`` stops once the topics' ends (as of the start) are reached and a poll comes
back empty: end offsets reported by some brokers lag what they store (see the design
notes on Tansu), so an empty poll, not the reported end alone, ends the history.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import NamedTuple

import orjson

from streams.config import Settings

__all__ = ["FeedItem", "follow_alerts", "alert_topics", "AlertTopicsMissing"]

GENERAL_TOPIC, WELFARE_TOPIC = "alerts.v1", "alerts.welfare.v1"


class FeedItem(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp_ms: int          # the record's Kafka timestamp (ms)
    event: dict | None         # the decoded alert event, or None when unreadable
    error: str | None = None   # why the record is unreadable


class AlertTopicsMissing(LookupError):
    """The broker answers but has no alert topic of that name: nothing has created the topics yet."""


def alert_topics(settings: Settings, welfare: bool) -> list[str]:
    """Full names of the alert topics a reader may see."""
    return [settings.topic(GENERAL_TOPIC)] + ([settings.topic(WELFARE_TOPIC)] if welfare else [])


def _decode(value: bytes | None) -> tuple[dict | None, str | None]:
    if value is None:
        return None, "empty record"
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        return None, f"not JSON ({error})"
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
        return None, "not an alert event (no data object)"
    return event, None


async def follow_alerts(settings: Settings, *, welfare: bool = False, from_beginning: bool = False,
                        until_end: bool = False, poll_ms: int = 200,
                        stop: asyncio.Event | None = None) -> AsyncIterator[FeedItem]:
    """Alert records in arrival order per partition; see the module docstring.

    ``stop`` ends a live follow from outside (the page's shutdown). Raises aiokafka's
    ``KafkaConnectionError`` when the broker cannot be reached at start.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.kafka_security import aiokafka_security

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap.split(","), group_id=None,
                                enable_auto_commit=False, client_id="glasscity-alert-reader",
                                auto_offset_reset="earliest" if from_beginning else "latest",
                                fetch_max_wait_ms=poll_ms, **aiokafka_security(settings))
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()     # a consumer that never started still holds its client
        raise
    try:
        partitions = []
        for topic in alert_topics(settings, welfare):
            known = consumer.partitions_for_topic(topic)
            if not known:
                await consumer._client.force_metadata_update()   # a fresh client knows no topic yet
                known = consumer.partitions_for_topic(topic)
            if not known:
                raise AlertTopicsMissing(f"the broker at {settings.bootstrap} has no topic {topic}: create the "
                                         f"topics first (glasscity topics create), or check --topic-prefix")
            partitions.extend(TopicPartition(topic, p) for p in sorted(known))
        consumer.assign(partitions)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        ends = await consumer.end_offsets(partitions) if until_end and partitions else {}
        while stop is None or not stop.is_set():
            batch = await consumer.getmany(timeout_ms=poll_ms, max_records=10_000)
            for tp, records in batch.items():
                for record in records:
                    event, error = _decode(record.value)
                    yield FeedItem(tp.topic, tp.partition, record.offset, record.timestamp, event, error)
            if until_end and not batch:
                positions = [await consumer.position(tp) for tp in partitions]
                if all(pos >= ends[tp] for pos, tp in zip(positions, partitions)):
                    return
    finally:
        await consumer.stop()
