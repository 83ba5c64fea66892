"""Records of the readings topics go from Faust's consumer to the batch path in whole fetches.

Faust delivers every record on its own: ``Consumer._drain_messages`` wraps each in a
``Message``, waits on it with ``Service.wait_first`` (two tasks and an ``asyncio.wait``
per record), the Conductor decodes it into an ``Event`` and puts it on the agent's
channel queue, the stream takes it off again, tracks it, calls the sensors, and
``noack_take`` buffers it through a processor; acking goes back through the same
layers. Measured on single-reading messages (``benchmarks/single_messages.py``) that
machinery, not the pipeline, held the worker at a few percent of a bare aiokafka
consumer. Here, what aiokafka fetched for a readings topic is handed, fetch by fetch,
to that topic's agent as lists of records, and the agent acks a whole batch at once.

Faust stays the application: it owns the consumer group (join, heartbeats, eager
rebalances, ``on_partitions_revoked`` / ``on_rebalance_complete``), the fetcher and its
flow control, the commit timer and ``broker_commit_every``, the agents' lifecycle,
timers, the producer and web. Only the hop from a fetch to our agent changes:

* :class:`FetchConsumer` (the aiokafka driver's Consumer) overrides
  ``_wait_next_records``: of each fetch it takes out the records of registered topics
  (:class:`FetchBuffer`) and returns the rest to Faust's per-message path, unchanged.
  It does per partition what ``_drain_messages`` does per message: drops what lies
  below the read offset (redelivered after a seek), records gaps in the offsets so
  commits can pass them (true gaps only: Faust's own rule also counts the message after
  a gap as done before it is processed), advances the read offset and updates the
  monitor's end offsets. While Faust's flow is stopped (a rebalance) nothing is taken:
  Faust drops the fetch and seeks back to the committed offsets as usual.
* The buffer is bounded (``2 x max_records`` records, plus at most one fetch): when it
  is full the fetcher waits, so aiokafka stops fetching, as with Faust's stream buffer.
* :meth:`FetchBuffer.take` returns a :class:`Batch` of at most ``max_records`` records,
  waiting at most ``within_s`` after the first one for more (the bounds of
  ``noack_take``). Fetches from before a rebalance (other generation) or taken while
  flow control is suspended are dropped unacknowledged (re-read from the committed
  offset, as Faust's stream skips such events). A batch in flight is registered in the
  consumer's set of unacknowledged messages, so a revocation waits for it
  (``stream_wait_empty``) before committing, exactly as for events in a ``noack_take``.
* :meth:`Batch.ack` marks the batch's offsets acknowledged in the consumer exactly as
  ``Consumer.ack`` does for one message (same structures, same lock, same checks), and
  commits when ``broker_commit_every`` acks have accumulated. Faust's commit then never
  passes an offset that was not acked, and the caller acks only after its output and
  state are confirmed.

Faust internals relied on (asserted at start-up by :func:`check_faust`, which names
what is missing): ``Consumer._wait_next_records``, ``_read_offset``, ``_committed_offset``,
``_acked``, ``_acked_index``, ``_n_acked``, ``_commit_every``, ``_unacked_messages``,
``_add_gap``, ``flow_active``, ``App._new_transport``, ``App.consumer_generation_id``,
``App.flow_control``; read from faust-streaming 0.15.3 (pyproject allows >=0.11,<0.16).
Per-message Faust sensors (``on_message_in``, ``on_stream_event_in/out``) are not called
for these records; the livelock detector's inbound time is set per batch and partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import deque
from typing import Any, NamedTuple

import faust
from mode.utils.futures import notify
from faust.transport.drivers import aiokafka as _driver

__all__ = ["App", "Batch", "FetchBuffer", "FetchConsumer", "FetchTransport", "FaustIncompatible", "check_faust"]

#: faust-streaming versions this was read against; others are checked by :func:`check_faust`.
SUPPORTED = ((0, 11), (0, 16))

try:    # Consumer.ack holds it since 0.12-ish; older versions have none (single-threaded acks)
    from faust.types.tuples import ack_lock as _ack_lock
except ImportError:   # pragma: no cover - depends on the installed faust
    _ack_lock = contextlib.nullcontext()


class FaustIncompatible(RuntimeError):
    """The installed Faust lacks an internal that the fetch hand-off relies on."""


def _version() -> tuple[int, ...]:
    parts = []
    for part in faust.__version__.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_faust(app: faust.App | None = None) -> None:
    """Raise :class:`FaustIncompatible` naming every internal the hand-off needs and this Faust lacks.
    With ``app``, also its consumer's instance attributes (call after the consumer exists)."""
    missing = []
    version = _version()
    if not (SUPPORTED[0] <= version[:2] < SUPPORTED[1]):
        missing.append(f"faust-streaming {faust.__version__} is outside the supported range "
                       f"{'.'.join(map(str, SUPPORTED[0]))} to <{'.'.join(map(str, SUPPORTED[1]))}")
    base = _driver.Consumer
    for name, coroutine in (("_wait_next_records", True), ("_add_gap", True), ("commit", True), ("highwater", False)):
        fn = getattr(base, name, None)
        if fn is None or (coroutine and not inspect.iscoroutinefunction(fn)):
            missing.append(f"Consumer.{name}{' (a coroutine)' if coroutine else ''}")
    if not hasattr(faust.App, "_new_transport"):
        missing.append("App._new_transport")
    if getattr(_driver.Transport, "Consumer", None) is not _driver.Consumer:
        missing.append("aiokafka Transport.Consumer")
    if app is not None:
        consumer = app.consumer
        for name in ("_read_offset", "_committed_offset", "_acked", "_acked_index", "_n_acked", "_commit_every",
                     "_unacked_messages", "_waiting_for_ack", "flow_active"):
            if not hasattr(consumer, name):
                missing.append(f"Consumer.{name}")
        for name in ("consumer_generation_id", "flow_control", "monitor"):
            if not hasattr(app, name):
                missing.append(f"App.{name}")
    if missing:
        raise FaustIncompatible("the installed faust-streaming lacks what streams.fetches relies on: "
                                + "; ".join(missing) + " (pin faust-streaming to a version it was read against)")


class _InFlight:
    """Stands in Faust's set of unacknowledged messages for a batch being processed: a revocation
    waits for it (``Consumer.wait_empty`` reads ``acked`` and ``refcount``)."""

    __slots__ = ("acked", "refcount", "records", "__weakref__")

    def __init__(self, records: int) -> None:
        self.acked = False
        self.refcount = 1
        self.records = records

    def __repr__(self) -> str:
        return f"<batch of {self.records} fetched records>"


class Batch:
    """At most ``max_records`` records of one topic, in fetch order per partition.

    ``records`` are aiokafka ``ConsumerRecord`` objects (``topic``, ``partition``, ``offset``,
    ``key``, ``value``, ...)."""

    __slots__ = ("records", "oldest_timestamp_ms", "_consumer", "_offsets", "_token")

    def __init__(self, records: list, offsets: dict, consumer: "FetchConsumer", token: _InFlight,
                 oldest_timestamp_ms: int | None = None) -> None:
        self.records = records
        #: Kafka timestamp (ms since the epoch) of the oldest record: the earliest of each partition's first
        #: record in the batch (a partition's records are in offset order); None when the broker gave none.
        self.oldest_timestamp_ms = oldest_timestamp_ms
        self._offsets = offsets          # TP -> [offsets]
        self._consumer = consumer
        self._token = token

    def __len__(self) -> int:
        return len(self.records)

    def next_offsets(self) -> dict:
        """TP -> the offset after the batch's last record of that partition (its position once processed)."""
        return {tp: offsets[-1] + 1 for tp, offsets in self._offsets.items() if offsets}

    async def ack(self) -> int:
        """Mark every record of the batch acknowledged (once its effects are durable); commits when
        ``broker_commit_every`` acks have accumulated. Returns how many offsets were newly acked."""
        if self._token.acked:
            return 0
        consumer = self._consumer
        n = consumer.ack_offsets(self._offsets)
        self._token.acked = True
        consumer._unacked_messages.discard(self._token)
        every = consumer._commit_every
        if every is not None and consumer._n_acked >= every:
            consumer._n_acked = 0
            await consumer.commit()
        return n


class _Chunk(NamedTuple):
    tp: Any
    records: list
    generation: int


class FetchBuffer:
    """Fetched records of one topic waiting for its agent (filled by :class:`FetchConsumer`)."""

    def __init__(self, app: faust.App, topic: str, max_records: int, within_s: float) -> None:
        if max_records < 1:
            raise ValueError("max_records must be >= 1")
        self.app = app
        self.topic = topic
        self.max_records = max_records
        self.within_s = within_s
        self.limit = 2 * max_records
        self._chunks: deque[_Chunk] = deque()
        self.pending = 0
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self.dropped = 0      # records dropped unacknowledged (fetched before a rebalance)

    async def put(self, tp, records: list, generation: int, consumer: "FetchConsumer") -> None:
        """Called by the consumer's fetcher: wait while the buffer is full (backpressure), unless the flow
        stops (a rebalance: then the fetch is left to Faust, which drops it and seeks back)."""
        while self.pending >= self.limit:
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), timeout=0.2)
            except asyncio.TimeoutError:
                pass
            if not consumer.flow_active or consumer.should_stop:
                return
        self._chunks.append(_Chunk(tp, records, generation))
        self.pending += len(records)
        self._arrived.set()

    def _fresh(self, chunk: _Chunk) -> bool:
        return chunk.generation == self.app.consumer_generation_id and self.app.flow_control.is_active()

    def _drop_stale(self) -> None:
        while self._chunks and not self._fresh(self._chunks[0]):
            chunk = self._chunks.popleft()
            self.pending -= len(chunk.records)
            self.dropped += len(chunk.records)
            self._room.set()

    async def take(self) -> Batch:
        """The next batch: waits for a first record, then up to ``within_s`` for ``max_records``."""
        while True:
            self._drop_stale()
            if self._chunks:
                break
            self._arrived.clear()
            await self._arrived.wait()
        if self.pending < self.max_records and self.within_s > 0:
            deadline = time.monotonic() + self.within_s
            while self.pending < self.max_records:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), timeout=remaining)
                except asyncio.TimeoutError:
                    break
        records: list = []
        offsets: dict = {}
        oldest: int | None = None     # ms; one look per fetched chunk, not per record
        room = self.max_records
        while room and self._chunks:
            self._drop_stale()
            if not self._chunks:
                break
            chunk = self._chunks[0]
            if len(chunk.records) <= room:
                self._chunks.popleft()
                part = chunk.records
            else:   # split a fetch bigger than the batch: the rest stays first in line
                part = chunk.records[:room]
                self._chunks[0] = chunk._replace(records=chunk.records[room:])
            records.extend(part)
            first = getattr(part[0], "timestamp", None)
            if first is not None and first >= 0 and (oldest is None or first < oldest):
                oldest = first
            offsets.setdefault(chunk.tp, []).extend([r.offset for r in part])
            self.pending -= len(part)
            room -= len(part)
        self._room.set()
        consumer = self.app.consumer
        token = _InFlight(len(records))
        consumer._unacked_messages.add(token)
        inbound = getattr(self.app.monitor, "stream_inbound_time", None)
        if inbound is not None:   # the livelock detector's "stream is processing" per partition
            now = time.monotonic()
            for tp in offsets:
                inbound[tp] = now
        return Batch(records, offsets, consumer, token, oldest)


class FetchConsumer(_driver.Consumer):
    """The aiokafka driver's Consumer, handing the records of topics with a :class:`FetchBuffer`
    (``app.fetch_buffers``) to that buffer per fetch instead of to Faust's per-message path."""

    async def _wait_next_records(self, timeout: float):
        records, active_partitions = await super()._wait_next_records(timeout)
        buffers = getattr(self.app, "fetch_buffers", None)
        if not records or not buffers or not self.flow_active or self.should_stop:
            return records, active_partitions
        generation = self.app.consumer_generation_id
        rest = {}
        buffered = getattr(self, "_buffered_partitions", ())
        acks_enabled_for = self.app.topics.acks_enabled_for
        monitor = self.app.monitor
        for tp, batch in records.items():
            buffer = buffers.get(tp.topic)
            if buffer is None:
                rest[tp] = batch
                continue
            if not batch or not (active_partitions is None or tp in active_partitions or tp in buffered):
                continue   # as Faust's getmany: records of a partition no longer active are not delivered
            read = self._read_offset[tp]
            if read is not None:
                batch = [r for r in batch if r.offset >= read] if batch[0].offset < read else batch
                if not batch:
                    continue
            if acks_enabled_for(tp.topic):   # offsets missing from the log (compaction, control records)
                first = batch[0].offset
                if read is not None and first > read + 1:
                    await self._add_gap(tp, read + 1, first - 1)
                if batch[-1].offset - first != len(batch) - 1:
                    previous = first
                    for record in batch:
                        if record.offset > previous + 1:
                            await self._add_gap(tp, previous + 1, record.offset - 1)
                        previous = record.offset
            self._read_offset[tp] = batch[-1].offset
            if monitor is not None:
                monitor.track_tp_end_offset(tp, self.highwater(tp))
            await buffer.put(tp, batch, generation, self)
        return rest, active_partitions

    def ack_offsets(self, offsets_by_tp: dict) -> int:
        """``Consumer.ack`` for many offsets at once: the same structures, lock and checks."""
        n = 0
        acks_enabled_for = self.app.topics.acks_enabled_for
        with _ack_lock:
            try:
                for tp, offsets in offsets_by_tp.items():
                    if not acks_enabled_for(tp.topic):
                        continue
                    committed = self._committed_offset[tp]
                    index = self._acked_index[tp]
                    acked = self._acked[tp]
                    for offset in offsets:
                        if (committed is None or offset >= committed) and offset not in index:
                            index.add(offset)
                            acked.append(offset)
                            n += 1
                self._n_acked += n
            finally:
                notify(self._waiting_for_ack)
        return n


class FetchTransport(_driver.Transport):
    Consumer = FetchConsumer


class App(faust.App):
    """faust.App whose consumer hands registered topics' fetches to :class:`FetchBuffer` objects."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_faust()
        super().__init__(*args, **kwargs)
        self.fetch_buffers: dict[str, FetchBuffer] = {}

    def _new_transport(self):
        url = self.conf.broker_consumer[0]
        if url.scheme not in ("kafka", "aiokafka", ""):
            raise FaustIncompatible(f"streams.fetches needs the aiokafka transport (kafka://), not {url.scheme}://")
        return FetchTransport(self.conf.broker_consumer, self)

    def fetch_buffer(self, topic: str, max_records: int, within_s: float) -> FetchBuffer:
        """The buffer through which ``topic``'s records reach its agent (one per topic)."""
        if topic in self.fetch_buffers:
            raise ValueError(f"topic {topic} already has a fetch buffer")
        buffer = self.fetch_buffers[topic] = FetchBuffer(self, topic, max_records, within_s)
        return buffer
