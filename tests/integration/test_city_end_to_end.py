"""All four domains at once through the real broker and one worker process.

The worker's alerts must equal, event for event, what the same pipeline produces
in-process on the same simulated city with Kafka's own partitioning — and meet the
quality bar against the ground truth. Every valid reading and every dead letter is
counted per domain.
"""

import asyncio
import re
import time

import orjson
from kafka import KafkaConsumer

from streams.demo import AlertReader, metric_sum, start_worker, wait_until_consumed
from streams.detectors import REGISTRY
from streams.domains import DOMAINS
from streams.evaluation import summarise
from streams.pseudonym import Pseudonymizer
from streams.simulate.produce import produce
from streams.broker import stop_process
from tests.conftest import TEST_KEY
from tests.integration.faults import Steps, reference_alerts

START = 1_790_000_000.0 - 1_790_000_000.0 % 86400


def in_process(domain, simulation, settings):
    return reference_alerts(domain, simulation, settings)


def as_tuples(alerts):
    return sorted((a["data"]["detector"], a["subject"], a["data"]["state"], a["data"]["episodeStart"], a["time"])
                  for a in alerts)


def test_all_domains_at_once(broker_settings, tmp_path):
    settings = broker_settings
    assert set(DOMAINS) == {"water", "traffic", "waste", "lighting"}
    simulations = [domain.simulate(days=3.0, seed=7, start=START) for domain in DOMAINS.values()]
    expected = [a for domain, sim in zip(DOMAINS.values(), simulations) for a in in_process(domain, sim, settings)]
    worker = start_worker(settings, tmp_path / "worker.log")
    reader = AlertReader(settings)
    reader.start()
    try:
        produce(simulations, settings)
        samples = wait_until_consumed(worker, settings.metrics_port, sum(s.valid_readings for s in simulations),
                                      sum(len(s.malformed) for s in simulations), timeout_s=240)
        deadline = time.monotonic() + 30
        while len(reader.alerts) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        # an early water message delivered again at the end: its readings are late, copied to the late topic
        water = simulations[0]
        straggler = next(m for _when, step in list(water.steps())[10:] for m in step if b'"readings"' in m[1])
        produce(Steps(water, [(0.0, [straggler])]), settings, enrol=False)
        late = len(orjson.loads(straggler[1])["readings"])
        wait_until_consumed(worker, settings.metrics_port, sum(s.valid_readings for s in simulations) + late,
                            sum(len(s.malformed) for s in simulations), timeout_s=60)
        time.sleep(1.0)
    finally:
        reader.stop()
        stop_process(worker)
    assert reader.error is None
    assert as_tuples(reader.alerts) == as_tuples(expected), (tmp_path / "worker.log").read_text()[-2000:]
    no_raw_household_id_past_ingress(settings, tmp_path / "worker.log", late)

    for domain, sim in zip(DOMAINS.values(), simulations):
        assert metric_sum(samples, "glasscity_readings_consumed_total", domain=domain.name) == sim.valid_readings
        assert metric_sum(samples, "glasscity_invalid_total", domain=domain.name) == len(sim.malformed)
        assert len(sim.malformed) > 0, f"{domain.name}'s scenario mixes in no malformed input"

    # the detectors the worker runs: the active ones (no audit log activates a dormant one)
    detectors = {name: cls() for name, cls in REGISTRY.items() if cls.declaration.status == "active"}
    runs = [(domain, sim.incidents) for domain, sim in zip(DOMAINS.values(), simulations)]
    summaries = summarise(reader.alerts, runs, detectors, REGISTRY, Pseudonymizer(TEST_KEY.encode()))
    assert {s.detector for s in summaries} == set(detectors), "every detector has incidents in the city"
    for s in summaries:
        assert s.injected > 0 and s.recall >= 0.98 and s.precision >= 0.95, s


#: A raw household identifier of the simulated city (urn:ngsi-ld:WaterMeter:GC-000123; bins, lamps and
#: detectors use the same numbering, so the kind is part of the pattern).
RAW_METER_ID = re.compile(rb"WaterMeter:GC-\d{6}")


def every_record(settings, topics: list[str]) -> dict[str, list]:
    """Every record of each of ``topics``, read from the beginning with one consumer outside any group
    (aiokafka: its record parsing keeps reading some 200,000 records short)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as AioPartition

    async def read() -> dict[str, list]:
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024)
        await consumer.start()
        try:
            partitions = [AioPartition(topic, p) for topic in topics
                          for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            records, deadline = {topic: [] for topic in topics}, time.monotonic() + 60
            while time.monotonic() < deadline:
                if all([await consumer.position(tp) >= ends[tp] for tp in partitions]):
                    break
                for tp, batch in (await consumer.getmany(timeout_ms=500, max_records=50_000)).items():
                    records[tp.topic] += batch
            return records
        finally:
            await consumer.stop()

    return asyncio.run(read())


def no_raw_household_id_past_ingress(settings, worker_log, late_expected: int):
    """Acceptance: every message of every topic but the water readings and water dead letters, and
    every line the worker logged, is free of raw household ids."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap)
    try:
        topics = sorted(t for t in consumer.topics() if t.startswith(settings.topic_prefix + "."))
    finally:
        consumer.close()
    exempt = {settings.topic("water.readings.v1"), settings.topic("water.dlq.v1")}
    assert exempt <= set(topics) and len(topics) == 22
    seen = {}
    for topic, records in every_record(settings, [t for t in topics if t not in exempt]).items():
        seen[topic] = len(records)
        for record in records:
            parts = [record.key or b"", record.value or b""] + [v or b"" for _k, v in record.headers or ()]
            leaked = [p for p in parts if RAW_METER_ID.search(p)]
            assert not leaked, f"raw household id on {topic}: {leaked[0][:200]!r}"
    assert seen[settings.topic("water.late.v1")] == late_expected           # the late path was exercised
    assert seen[settings.topic("water.state.v1")] > 0 and seen[settings.topic("alerts.welfare.v1")] > 0
    assert seen[settings.topic("consent.enrolment.v1")] > 0
    # and the exempt topics do carry them: the check can see one
    readings = settings.topic("water.readings.v1")
    assert any(RAW_METER_ID.search(r.value or b"") for r in every_record(settings, [readings])[readings][:50])
    lines = [line for line in worker_log.read_bytes().splitlines() if RAW_METER_ID.search(line)]
    assert not lines, f"raw household id in the worker's log: {lines[0][:200]!r}"
