"""The Kafka side of "nothing lost": confirmed publishing and reading a changelog back.

Contract:

* :class:`Publisher` sends a list of :class:`Outgoing` records through the Faust app's
  producer and returns only once the broker has confirmed every one of them. A record
  the broker refuses is sent again (``attempts`` times, with a pause); if it still
  fails, :class:`PublishFailed` is raised — the caller must not acknowledge the input
  that produced it. Nothing is ever skipped.
* :func:`read_changelog` reads partitions of a state topic from a start offset to their
  end with a plain consumer outside any consumer group, and returns the records per
  partition in offset order. The worker makes the end exact: it first writes a marker
  record to each partition it restores and reads up to that marker's offset (end offsets
  reported by the embedded broker can trail what it stores). Without known ends, "the
  end" is where a fetch returns nothing more *and* the reported end has been passed — a
  heuristic, used by tools only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import NamedTuple

__all__ = ["Outgoing", "Publisher", "PublishFailed", "read_changelog"]

log = logging.getLogger("glasscity.worker")


class Outgoing(NamedTuple):
    """One record to publish; ``kind`` is a bounded metric label (alert, dead_letter, late, state)."""

    topic: str
    key: bytes | None
    value: bytes
    kind: str
    partition: int | None = None
    headers: list | None = None


class PublishFailed(RuntimeError):
    """The broker refused records after every retry; the input behind them must not be committed."""


class Publisher:
    """Confirmed sends through a Faust app's producer (aiokafka underneath)."""

    def __init__(self, app, attempts: int = 5, pause_s: float = 1.0, on_failure=None):
        self.app = app
        self.attempts = attempts
        self.pause_s = pause_s
        self.on_failure = on_failure   # called with (label, kind, error) for each refused record (metrics)

    async def send_all(self, records: list[Outgoing], label: str = "") -> list:
        """Send every record and wait for the broker's confirmation of each; returns their metadata."""
        pending = list(range(len(records)))
        results: list = [None] * len(records)
        for attempt in range(1, self.attempts + 1):
            # Enqueue one record at a time (each send only waits when the partition's batch is
            # full), then wait for all confirmations: thousands of concurrent send() calls would
            # each wait on every batch drain and cost quadratic time.
            futures = []
            for i in pending:
                futures.append(await self._enqueue(records[i]))
            outcomes = await asyncio.gather(*futures, return_exceptions=True)
            failed = []
            for i, outcome in zip(pending, outcomes):
                if isinstance(outcome, BaseException):
                    if isinstance(outcome, asyncio.CancelledError):
                        raise outcome
                    failed.append((i, outcome))
                    if self.on_failure:
                        self.on_failure(label, records[i].kind, outcome)
                else:
                    results[i] = outcome
            if not failed:
                return results
            pending = [i for i, _ in failed]
            first = failed[0][1]
            if attempt < self.attempts:
                log.warning("%d of %d records refused by the broker (%s: %s); retrying (attempt %d of %d)",
                            len(failed), len(records), type(first).__name__, first, attempt + 1, self.attempts)
                await asyncio.sleep(self.pause_s * attempt)
        raise PublishFailed(f"{len(pending)} of {len(records)} records still refused after {self.attempts} "
                            f"attempts ({type(first).__name__}: {first})")

    async def _enqueue(self, record: Outgoing) -> asyncio.Future:
        """The delivery future of one record; a refusal at enqueue time (too large) becomes a failed future."""
        try:
            return await self.app.producer.send(record.topic, record.key, record.value, record.partition, None,
                                                record.headers)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            failed = asyncio.get_running_loop().create_future()
            failed.set_exception(error)
            return failed


async def read_changelog(bootstrap: str, topic: str, starts: dict[int, int], ends: dict[int, int] | None = None,
                         idle_ms: int = 200, stall_timeout_s: float = 60.0,
                         security: dict | None = None) -> dict[int, list[tuple[bytes, bytes]]]:
    """Records ``(key, value)`` of each partition from its start offset to its end, in log order.

    ``security``: the client's SASL/TLS options (:func:`streams.kafka_security.aiokafka_security`).

    ``ends`` (partition -> offset of a record known to be there, e.g. a marker this worker just
    wrote) makes the end exact: reading stops once every partition has passed its end offset.
    Without it, see the module docstring. Gives up with :class:`TimeoutError` only when no
    record arrives for ``stall_timeout_s`` (a big changelog takes as long as it takes).
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    result: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in starts}
    if not starts:
        return result
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=idle_ms,
                                max_partition_fetch_bytes=4 * 1024 * 1024, **(security or {}))
    await consumer.start()
    try:
        partitions = {p: TopicPartition(topic, p) for p in starts}
        consumer.assign(list(partitions.values()))
        for p, tp in partitions.items():
            consumer.seek(tp, max(0, starts[p]))
        reported_end = None if ends else await consumer.end_offsets(list(partitions.values()))
        last_progress = time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=idle_ms, max_records=50_000)
            for tp, records in batch.items():
                result[tp.partition].extend((r.key, r.value) for r in records)
            if batch:
                last_progress = time.monotonic()
            positions = {p: await consumer.position(tp) for p, tp in partitions.items()}
            if ends is not None:
                if all(positions[p] > ends[p] for p in partitions):
                    return result
            elif not batch and all(positions[p] >= reported_end[tp] for p, tp in partitions.items()):
                return result
            if time.monotonic() - last_progress > stall_timeout_s:
                raise TimeoutError(f"reading {topic} stalled: no record for {stall_timeout_s:.0f} s")
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
