"""The peers glasscity is measured against, each doing the same detector work per reading.

The work: the last-seen / no-use state of every water meter (a dict: meter id -> last time,
last index, time of last use, whether an episode is open), folding each reading in event-time
order and flagging a meter whose index has not risen for 24 h: what ``water.no_use_24h`` and the
tracker do, written the way a Python user of each tool would write it, one reading at a time.

Kafka peers run as their own processes against the same broker and topic as the glasscity worker,
each in its own consumer group (or, for the librdkafka ceiling, with assigned partitions), reading
from the beginning; each stops once it has consumed ``--expected`` messages or ``--limit-s``
seconds after its first message, and prints one JSON line: messages, readings, seconds (from the
first message to the last one processed), and rates.

- ``aiokafka``: a bare ``AIOKafkaConsumer.getmany`` loop with orjson: the Python client ceiling of
  the transport Faust (and so glasscity) uses.
- ``faust``: a plain per-event Faust agent (``async for value in stream``), raw values, orjson.
- ``quix``: a Quix Streams application (librdkafka): a StreamingDataFrame that decodes, expands
  an envelope into its readings, and folds each reading (``sdf.update``).
- ``librdkafka``: a confluent-kafka ``consume(10000)`` + orjson loop: the Python client limit.

``river`` (not a Kafka peer) scores the traffic series in-process: :func:`river_scores`.

Usage: python benchmarks/peers.py {aiokafka,faust,quix,librdkafka} --bootstrap HOST:PORT --topic T
[--expected N] [--limit-s S] [--group G]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime

import orjson

DAY = 86400.0


class NoUse:
    """Per meter: [last seen (s), last index (m3), last use (s), episode open]; counts episodes raised."""

    __slots__ = ("meters", "raised", "readings")

    def __init__(self):
        self.meters: dict[str, list] = {}
        self.raised = 0
        self.readings = 0

    def fold(self, reading: dict) -> None:
        self.readings += 1
        t = datetime.fromisoformat(reading["dateObserved"]).timestamp()
        x = reading["waterConsumption"]
        meter = self.meters.get(reading["id"])
        if meter is None:
            self.meters[reading["id"]] = [t, x, t, False]
            return
        if t <= meter[0]:
            return
        if x > meter[1]:
            meter[2], meter[3] = t, False
        meter[0], meter[1] = t, x
        if not meter[3] and t - meter[2] >= DAY:
            meter[3] = True
            self.raised += 1

    def message(self, value) -> None:
        """One Kafka message: a reading, or an envelope of readings."""
        data = orjson.loads(value) if isinstance(value, (bytes, bytearray, memoryview)) else value
        readings = data.get("readings")
        if readings is None:
            self.fold(data)
        else:
            for reading in readings:
                self.fold(reading)


class Progress:
    def __init__(self, expected: int, limit_s: float):
        self.expected, self.limit_s = expected, limit_s
        self.messages = 0
        self.first = self.last = None

    def add(self, count: int) -> bool:
        """Count consumed messages; True once done (all expected, or the time limit after the first)."""
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.messages += count
        self.last = now
        return self.messages >= self.expected or now - self.first >= self.limit_s

    def report(self, peer: str, work: NoUse, **extra) -> dict:
        seconds = (self.last - self.first) if self.first is not None else 0.0
        return {"peer": peer, "messages": self.messages, "readings": work.readings, "meters": len(work.meters),
                "raised": work.raised, "seconds": round(seconds, 3),
                "msgs_per_s": round(self.messages / seconds) if seconds > 0 else None,
                "readings_per_s": round(work.readings / seconds) if seconds > 0 else None,
                "complete": self.messages >= self.expected, **extra}


def run_aiokafka(args) -> dict:
    import asyncio

    from aiokafka import AIOKafkaConsumer

    async def main():
        work, progress = NoUse(), Progress(args.expected, args.limit_s)
        consumer = AIOKafkaConsumer(args.topic, bootstrap_servers=args.bootstrap, group_id=args.group,
                                    auto_offset_reset="earliest", enable_auto_commit=True,
                                    max_partition_fetch_bytes=16 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=10000)
                count = 0
                for records in batches.values():
                    for record in records:
                        work.message(record.value)
                    count += len(records)
                if count and progress.add(count):
                    break
        finally:
            await consumer.stop()
        return progress.report("aiokafka", work, client="aiokafka getmany(max_records=10000) + orjson")

    return asyncio.run(main())


def run_librdkafka(args) -> dict:
    import confluent_kafka

    work, progress = NoUse(), Progress(args.expected, args.limit_s)
    consumer = confluent_kafka.Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group,
                                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                         "fetch.max.bytes": 64 * 1024 * 1024,
                                         "max.partition.fetch.bytes": 16 * 1024 * 1024})
    metadata = consumer.list_topics(args.topic, timeout=10)
    partitions = sorted(metadata.topics[args.topic].partitions)
    # assigned partitions, no group coordination: the client's own limit, read from the beginning
    consumer.assign([confluent_kafka.TopicPartition(args.topic, p, confluent_kafka.OFFSET_BEGINNING)
                     for p in partitions])
    try:
        while True:
            messages = consumer.consume(10000, timeout=0.5)
            count = 0
            for message in messages:
                if message.error():
                    continue
                work.message(message.value())
                count += 1
            if count and progress.add(count):
                break
    finally:
        consumer.close()
    return progress.report("librdkafka", work, client=f"confluent-kafka {confluent_kafka.version()[0]} "
                           f"(librdkafka {confluent_kafka.libversion()[0]}) consume(10000) + orjson, "
                           f"{len(partitions)} partitions assigned")


def run_faust(args) -> dict:
    import logging

    import faust

    work, progress = NoUse(), Progress(args.expected, args.limit_s)
    app = faust.App(args.group, broker=f"kafka://{args.bootstrap}", store="memory://", web_enabled=False,
                    topic_partitions=4, broker_rebalance_timeout=4.0, broker_session_timeout=10.0,
                    broker_heartbeat_interval=1.0, consumer_auto_offset_reset="earliest", topic_allow_declare=False)
    topic = app.topic(args.topic, value_type=bytes, value_serializer="raw")
    result: dict = {}

    @app.agent(topic)
    async def no_use(stream):
        async for value in stream:
            work.message(value)
            if progress.add(1):
                result.update(progress.report("faust", work, client=f"faust-streaming {faust.__version__}: "
                                              "async for value in stream, raw value + orjson"))
                print(json.dumps(result), flush=True)
                os._exit(0)

    logging.getLogger().setLevel(logging.WARNING)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return result


def run_quix(args) -> dict:
    import quixstreams
    from quixstreams import Application

    work, progress = NoUse(), Progress(args.expected, args.limit_s)
    app = Application(broker_address=args.bootstrap, consumer_group=args.group, auto_offset_reset="earliest",
                      auto_create_topics=False, use_changelog_topics=False, loglevel="WARNING")
    topic = app.topic(args.topic, value_deserializer="bytes", key_deserializer="bytes")
    sdf = app.dataframe(topic)

    def decode(value):
        data = orjson.loads(value)
        if progress.add(1):
            app.stop()          # this message's readings are still folded
        readings = data.get("readings")
        return [data] if readings is None else readings

    sdf = sdf.apply(decode, expand=True)
    sdf = sdf.update(work.fold)
    app.run()
    return progress.report("quix", work, client=f"quixstreams {quixstreams.__version__}: StreamingDataFrame "
                           "apply(orjson, expand=True) + update(fold) per reading")


def river_scores(ts, slots, values, model: str = "predictive") -> dict:
    """river's online anomaly scoring of the same traffic series, one reading at a time.

    The model closest to :mod:`kernels.series` (a per-series streaming score from a prediction and
    the series' own distribution of deviations): per (detector, channel), a
    ``river.anomaly.PredictiveAnomalyDetection`` around Holt's linear trend
    (``river.time_series.HoltWinters(alpha, beta)``, the kernel's short view), which scores each
    reading by its prediction error against the errors' running distribution (score in [0, 1]);
    a reading's score is its worst channel's, as ours. Returns readings, seconds, rate."""
    import math

    from river import anomaly, time_series

    models: dict = {}
    started = time.perf_counter()
    k = len(values[0]) if len(values) else 0
    scored = 0
    for t, s, row in zip(ts, slots, values):
        worst = 0.0
        for c in range(k):
            x = row[c]
            if math.isnan(x):
                continue
            key = (s, c)
            entry = models.get(key)
            if entry is None:
                entry = models[key] = [anomaly.PredictiveAnomalyDetection(
                    time_series.HoltWinters(alpha=0.3, beta=0.1), horizon=1, n_std=3.0, warmup_period=12), 0]
            detector = entry[0]
            if entry[1] >= 2:     # HoltWinters cannot forecast before it has two values (river raises)
                worst = max(worst, detector.score_one(None, x))
            else:
                entry[1] += 1
            detector.learn_one(None, x)
        scored += 1
    seconds = time.perf_counter() - started
    return {"readings": scored, "series": len({s for s in slots}), "models": len(models), "seconds": round(seconds, 3),
            "readings_per_s": round(scored / seconds) if seconds > 0 else None,
            "model": "river.anomaly.PredictiveAnomalyDetection(time_series.HoltWinters(alpha=0.3, beta=0.1), "
                     "horizon=1, n_std=3.0, warmup_period=12) per (detector, channel); score = worst channel; the first two values of a series are learnt, not scored (HoltWinters cannot forecast before)"}


PEERS = {"aiokafka": run_aiokafka, "faust": run_faust, "quix": run_quix, "librdkafka": run_librdkafka}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("--bootstrap", required=True, help="host:port of the broker")
    parser.add_argument("--topic", required=True, help="topic to consume from the beginning")
    parser.add_argument("--expected", type=int, default=sys.maxsize, help="stop after this many messages")
    parser.add_argument("--limit-s", type=float, default=20.0, help="stop this many seconds after the first message")
    parser.add_argument("--group", default=None, help="consumer group (default: bench-<peer>-<pid>)")
    args = parser.parse_args(argv)
    args.group = args.group or f"bench-{args.peer}-{os.getpid()}"
    result = PEERS[args.peer](args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
