"""Hostile messages of every kind, interleaved with a valid city feed: no crash, exactly one dead
letter per refused item (with its provenance headers, never over the producer limit), every valid
reading processed, including the valid readings that shared an envelope with bad ones.

Two runs of the same corpus recipe: 5,000 messages (every kind, the near-1 MB ones included)
through a real worker and broker, and 100,000 through the same pipeline in-process (the decode,
validation and dead-letter code the worker runs, without the broker's transport time).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from kafka import KafkaConsumer, TopicPartition

from streams.broker import stop_process
from streams.demo import metric_sum, read_metrics, start_worker
from streams.domains import DOMAINS
from streams.ingest.dead_letter import MAX_DEAD_LETTER_RECORD_BYTES, REASONS
from streams.pipeline import DomainPipeline
from streams.pseudonym import Pseudonymizer
from streams.simulate.hostile import KINDS, hostile_messages
from streams.simulate.produce import produce
from tests.conftest import TEST_KEY
from tests.integration.faults import START, Steps, kafka_batches, log_tail, wait_ready, water_city

BULK_SIZE_LIMIT = 4_096      # the bulk's "huge" kinds sit just below 4 kB...
#: ...and one of every huge kind per domain just below the 1 MB producer limit.
#: Large kinds (deep nesting, huge strings) are capped per domain: every kind is there, but the
#: broker is not made to store gigabytes (the corpus itself shares their bytes; a topic cannot).
LARGE_BYTES, LARGE_PER_KIND = 2_048, 40
PROVENANCE = {"source_topic", "source_partition", "source_offset", "stage", "reason"}


@dataclass
class HostileCity:
    """The water city plus ``per_domain`` hostile messages per domain spread over its steps."""

    feeds: list                   # producible per domain (Steps), water's with the valid city in it
    expected_dead: dict           # domain -> dead letters due
    expected_valid: dict          # domain -> valid readings due
    kinds: set                    # hostile kinds in the corpus


def hostile_city(per_domain: int) -> HostileCity:
    rng = random.Random(9)
    city = water_city(seed=31)
    steps = [(when, list(messages)) for when, messages in city.steps()]
    expected_dead = {name: 0 for name in DOMAINS}
    expected_valid = {name: 0 for name in DOMAINS}
    expected_dead["water"] += len(city.malformed)
    expected_valid["water"] += city.valid_readings
    hostile_steps = {name: [] for name in DOMAINS}
    kinds_seen = set()
    for name, domain in DOMAINS.items():
        drawn = hostile_messages(domain, 2 * per_domain, seed=rng.randrange(1 << 30), size_limit=BULK_SIZE_LIMIT,
                                 at=START + 36 * 3600)
        large = Counter()
        corpus = []
        for m in drawn:
            if len(m.value) + len(m.key or b"") > LARGE_BYTES:
                large[m.kind] += 1
                if large[m.kind] > LARGE_PER_KIND:
                    continue
            corpus.append(m)
        huge = list({m.kind: m for m in hostile_messages(domain, len(KINDS), seed=1, at=START + 36 * 3600)
                     if m.kind.startswith("huge")}.values())
        assert len(huge) >= 5 and max(len(m.value) + len(m.key or b"") for m in huge) > 900_000
        corpus = corpus[:per_domain - len(huge)] + huge
        assert len(corpus) == per_domain
        kinds_seen |= {m.kind for m in corpus}
        expected_dead[name] += sum(m.expected_dead_letters for m in corpus)
        expected_valid[name] += sum(m.expected_valid_readings for m in corpus)
        rng.shuffle(corpus)
        chunk = len(corpus) // len(steps) + 1
        for i in range(len(steps)):
            hostile_steps[name].append([(m.key, m.value) for m in corpus[i * chunk:(i + 1) * chunk]])

    feeds = [Steps(city, [(when, messages + hostile_steps["water"][i]) for i, (when, messages) in enumerate(steps)])]
    for name in ("traffic", "waste", "lighting"):
        sim = Steps(city, [(when, hostile_steps[name][i]) for i, (when, _m) in enumerate(steps)])
        sim.domain = name
        feeds.append(sim)
    return HostileCity(feeds, expected_dead, expected_valid, kinds_seen)


def count_records(settings, shorts: list[str], expected: int, timeout_s: float = 120.0) -> dict[str, tuple]:
    """Per topic: its records (consumed, not end offsets), their reasons, and the largest record (bytes).
    One consumer reads every topic; ``expected`` records in all before it may stop."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000,
                             max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    topics = {settings.topic(short): short for short in shorts}
    partitions = [TopicPartition(topic, p) for topic in topics for p in range(settings.partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    found = {short: [0, Counter(), 0] for short in shorts}
    total = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=1000, max_records=20_000)
        if not batch and total >= expected:
            break
        for tp, records in batch.items():
            counts = found[topics[tp.topic]]
            for record in records:
                total += 1
                counts[0] += 1
                headers = dict(record.headers)
                counts[1][headers["reason"].decode()] += 1
                assert PROVENANCE <= headers.keys()
                size = len(record.value or b"") + len(record.key or b"") + sum(len(k) + len(v) for k, v in
                                                                               record.headers)
                counts[2] = max(counts[2], size)
    consumer.close()
    return {short: tuple(counts) for short, counts in found.items()}


@pytest.mark.slow
def test_5000_hostile_messages_through_a_worker_no_crash_every_one_dead_lettered(broker_settings, tmp_path):
    settings = broker_settings
    city = hostile_city(per_domain=1_250)       # 5,000 in all
    assert city.kinds == set(KINDS)
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        wait_ready(worker, settings.metrics_port)
        produce(city.feeds, settings)
        deadline = time.monotonic() + 300
        samples = {}
        while time.monotonic() < deadline:
            assert worker.poll() is None, log_tail(tmp_path / "worker.log")
            samples = read_metrics(settings.metrics_port)
            if all(metric_sum(samples, "glasscity_invalid_total", domain=n) >= city.expected_dead[n]
                   and metric_sum(samples, "glasscity_readings_consumed_total", domain=n) >= city.expected_valid[n]
                   for n in DOMAINS):
                break
            time.sleep(0.5)
        time.sleep(1.0)
        samples = read_metrics(settings.metrics_port)
        assert worker.poll() is None, "the worker crashed on hostile input"
    finally:
        stop_process(worker)
    dead_letters = count_records(settings, [f"{name}.dlq.v1" for name in DOMAINS], sum(city.expected_dead.values()))
    for name in DOMAINS:
        assert metric_sum(samples, "glasscity_invalid_total", domain=name) == city.expected_dead[name], name
        assert metric_sum(samples, "glasscity_readings_consumed_total", domain=name) == city.expected_valid[name], name
        total, reasons, largest = dead_letters[f"{name}.dlq.v1"]
        assert total == city.expected_dead[name], name
        assert set(reasons) <= set(REASONS)
        assert largest <= MAX_DEAD_LETTER_RECORD_BYTES


def test_100000_hostile_messages_through_the_pipeline_every_one_dead_lettered(settings):
    city = hostile_city(per_domain=25_000)      # 100,000 in all
    assert len(city.kinds) >= 20
    for feed in city.feeds:
        pipeline = DomainPipeline(DOMAINS[feed.domain], settings, Pseudonymizer(TEST_KEY.encode()), clock=time.time)
        dead, readings, reasons, largest = 0, 0, Counter(), 0
        for batch in kafka_batches(feed.steps(), settings.partitions):
            result = pipeline.process(batch)
            readings += result.readings
            for letter in result.dead_letters:
                key, value, headers = letter.kafka_record()    # the record the worker sends
                dead += 1
                reasons[letter.reason] += 1
                assert PROVENANCE <= {name for name, _v in headers}
                largest = max(largest, len(key or b"") + len(value) + sum(len(n) + len(v) for n, v in headers))
        assert dead == city.expected_dead[feed.domain], feed.domain
        assert readings == city.expected_valid[feed.domain], feed.domain
        assert set(reasons) <= set(REASONS)
        assert largest <= MAX_DEAD_LETTER_RECORD_BYTES
