"""Reliability: what faults cost in alerts, and what durable state costs in bytes and time.

Prints and writes ``benchmarks/results/reliability.json``:

- ``faults``: the fault-injection runs of the test suite (tests/integration/faults.py), each
  on a simulated water city through the embedded broker and real worker processes, against
  the uninterrupted run: fault, times injected, incidents expected and alerted, duplicate
  ids (re-emissions of an id already delivered: at-least-once), lost alert events.
- ``state``: changelog bytes per subject (compacted: the latest record per key) for a water
  city; the restore of 1,000,000 water meters (records produced to the broker's state topic,
  then read back and rebuilt the way a worker does on assignment); and the throughput cost
  of durability — the batched in-process path without the changelog, with the changelog
  encoded, and with it also written to the broker and confirmed, in the same run.

Usage: python benchmarks/reliability.py [--skip-faults] [--meters N] [--households N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from streams.broker import EmbeddedBroker, free_port  # noqa: E402
from streams.config import settings_from  # noqa: E402
from streams.domains import DOMAINS  # noqa: E402
from streams.durable import read_changelog  # noqa: E402
from streams.kafka_security import aiokafka_security  # noqa: E402
from streams.ingest import RawMessage  # noqa: E402
from streams.pipeline import DomainPipeline  # noqa: E402
from streams.pseudonym import Pseudonymizer  # noqa: E402
from streams.simulate import WaterScenario, simulate_water  # noqa: E402
from streams.topics import create_topics  # noqa: E402
from tests.conftest import TEST_KEY  # noqa: E402

PARTITIONS = 4


def broker_settings(broker, **extra):
    unique = uuid.uuid4().hex[:8]
    return settings_from(environ={}, bootstrap=broker.bootstrap, topic_prefix=f"r{unique}", app_id=f"rel-{unique}",
                         partitions=PARTITIONS, rebalance_timeout_s=4.0, pseudonym_key=TEST_KEY,
                         metrics_host="127.0.0.1", metrics_port=free_port(), log_level="info", **extra)


def fault_rows() -> list[dict]:
    from tests.integration import faults

    rows = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=0, log_path=Path(tmp) / "broker.log") as broker:
        runs = [("kill", lambda s, p: faults.run_kill_9(s, p, kills=5)),
                ("rebalance", faults.run_rebalance),
                ("thresholds", faults.run_new_thresholds),
                ("messy", faults.run_duplicates_and_disorder)]
        for name, run in runs:
            settings = broker_settings(broker)
            create_topics(settings)
            path = Path(tmp) / name
            path.mkdir()
            started = time.perf_counter()
            rows.append({**run(settings, path).row(), "seconds": round(time.perf_counter() - started, 1)})
            print_row(rows[-1])
        path = Path(tmp) / "stall"
        path.mkdir()
        started = time.perf_counter()
        rows.append({**faults.run_broker_stall(path, stall_s=30.0).row(), "seconds": round(time.perf_counter() - started, 1)})
        print_row(rows[-1])
    return rows


def print_row(row: dict) -> None:
    print(f"  {row['fault']:42} injected {row['injected']:>6}  incidents {row['incidents_alerted']:>3}/"
          f"{row['incidents_expected']:<3} duplicate ids {row['duplicate_ids']:>3}  lost {row['lost']}  "
          f"unexpected {row['unexpected']}  ({row['seconds']} s)", flush=True)


def water_messages(households: int, days: float = 3.0):
    simulation = simulate_water(WaterScenario(households=households, days=days, start=1_790_000_000.0, malformed=0))
    offsets = [0] * PARTITIONS
    messages = []
    for _when, step in simulation.steps():
        for key, value in step:
            p = zlib.crc32(key) % PARTITIONS
            messages.append(RawMessage(value, "r", p, offsets[p], key))
            offsets[p] += 1
    return simulation, messages


def changelog_bytes(households: int) -> dict:
    """Compacted changelog size of a water city after 3 days, per subject."""
    settings = settings_from(environ={}, pseudonym_key=TEST_KEY)
    simulation, messages = water_messages(households)
    pipeline = DomainPipeline(DOMAINS["water"], settings, Pseudonymizer(TEST_KEY.encode()),
                              clock=lambda: simulation.end + 3600)
    latest, written, records = {}, 0, 0
    for i in range(0, len(messages), settings.batch_size):
        pipeline.process(messages[i:i + settings.batch_size])
        for partition, key, value in pipeline.changelog():
            latest[(partition, key)] = len(key) + len(value)
            written += len(key) + len(value)
            records += 1
    subjects = sum(len(s.subjects) for s in pipeline.states.values())
    row_sizes = [size for (_p, key), size in latest.items() if key.startswith(b"s:")]
    return {"households": households, "readings": simulation.valid_readings, "subjects": subjects,
            "compacted_bytes": sum(latest.values()), "compacted_bytes_per_subject": round(sum(latest.values()) / subjects, 1),
            "largest_record_bytes": max(latest.values()), "subject_row_bytes_mean": round(float(np.mean(row_sizes)), 1),
            "written_bytes_per_reading": round(written / simulation.valid_readings, 1), "records_written": records}


def million_meters_state(meters: int, gateways: int):
    """A water state with ``meters`` meters after one reading each: one envelope per gateway."""
    settings = settings_from(environ={}, pseudonym_key=TEST_KEY)
    pipeline = DomainPipeline(DOMAINS["water"], settings, Pseudonymizer(TEST_KEY.encode()), clock=lambda: 2e9)
    per_gateway = meters // gateways
    offsets = [0] * PARTITIONS
    messages = []
    for g in range(gateways):
        readings = [{"id": f"urn:ngsi-ld:WaterMeter:M{g:05d}-{m:04d}", "type": "WaterConsumptionObserved",
                     "dateObserved": "2026-09-21T10:00:00Z", "waterConsumption": 100.0 + m * 0.001}
                    for m in range(per_gateway)]
        value = orjson.dumps({"type": "ReadingBatch", "gatewayId": f"gw-{g:05d}", "readings": readings})
        p = g % PARTITIONS
        messages.append(RawMessage(value, "r", p, offsets[p], f"d-{g % 50}".encode()))
        offsets[p] += 1
    for i in range(0, len(messages), 200):
        pipeline.process(messages[i:i + 200])
    return pipeline


async def _produce_state(bootstrap: str, topic: str, records, security: dict | None = None) -> float:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1024 * 1024,
                                **(security or {}))
    await producer.start()
    started = time.perf_counter()
    try:
        futures = [await producer.send(topic, value, key=key, partition=p) for p, key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


def restore_million(meters: int) -> dict:
    started = time.perf_counter()
    pipeline = million_meters_state(meters, gateways=max(1, meters // 500))
    build_s = time.perf_counter() - started
    encode_started = time.perf_counter()
    records = pipeline.changelog()
    encode_s = time.perf_counter() - encode_started
    total_bytes = sum(len(k) + len(v) for _p, k, v in records)
    with EmbeddedBroker(port=0) as broker:
        settings = broker_settings(broker, domains="water")
        create_topics(settings)
        topic = settings.topic("water.state.v1")
        produce_s = asyncio.run(_produce_state(broker.bootstrap, topic, records, aiokafka_security(settings)))
        restore_started = time.perf_counter()
        found = asyncio.run(read_changelog(broker.bootstrap, topic, {p: 0 for p in range(PARTITIONS)},
                                           security=aiokafka_security(settings)))
        read_s = time.perf_counter() - restore_started
        restored = DomainPipeline(DOMAINS["water"], settings, Pseudonymizer(TEST_KEY.encode()), clock=lambda: 2e9)
        rebuild_started = time.perf_counter()
        for partition, partition_records in found.items():
            restored.restore(partition, partition_records)
        rebuild_s = time.perf_counter() - rebuild_started
    subjects = sum(len(s.subjects) for s in restored.states.values())
    assert subjects == sum(len(s.subjects) for s in pipeline.states.values()) == meters
    for p, state in pipeline.states.items():
        for name in state.subjects.fields:
            np.testing.assert_array_equal(restored.states[p].subject(name), state.subject(name))
    return {"meters": meters, "records": len(records), "bytes": total_bytes,
            "largest_record_bytes": max(len(k) + len(v) for _p, k, v in records),
            "state_built_in_process_s": round(build_s, 2), "encode_s": round(encode_s, 2),
            "produce_s": round(produce_s, 2), "read_s": round(read_s, 2), "rebuild_s": round(rebuild_s, 2),
            "restore_s": round(read_s + rebuild_s, 2), "identical_after_restore": True}


def durability_cost(households: int) -> dict:
    """Readings/s of the batched path: no changelog, changelog encoded, changelog written and confirmed."""
    settings = settings_from(environ={}, pseudonym_key=TEST_KEY)
    simulation, messages = water_messages(households)
    batch = settings.batch_size

    def run(mode: str, producer_loop=None) -> float:
        pipeline = DomainPipeline(DOMAINS["water"], settings, Pseudonymizer(TEST_KEY.encode()),
                                  clock=lambda: simulation.end + 3600)
        pipeline.process(messages[:1])
        pipeline = DomainPipeline(DOMAINS["water"], settings, Pseudonymizer(TEST_KEY.encode()),
                                  clock=lambda: simulation.end + 3600)
        started = time.perf_counter()
        for i in range(0, len(messages), batch):
            pipeline.process(messages[i:i + batch])
            if mode != "off":
                records = pipeline.changelog()
                if producer_loop is not None:
                    producer_loop(records)
        return simulation.valid_readings / (time.perf_counter() - started)

    off = run("off")
    encoded = run("encode")
    with EmbeddedBroker(port=0) as broker:
        s = broker_settings(broker, domains="water")
        create_topics(s)
        topic = s.topic("water.state.v1")
        loop = asyncio.new_event_loop()
        from aiokafka import AIOKafkaProducer

        async def start():
            p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5,
                                 max_batch_size=1024 * 1024, **aiokafka_security(s))
            await p.start()
            return p

        producer = loop.run_until_complete(start())

        async def write(records):
            futures = [await producer.send(topic, value, key=key, partition=p) for p, key, value in records]
            await asyncio.gather(*futures)

        try:
            written = run("write", lambda records: loop.run_until_complete(write(records)))
        finally:
            loop.run_until_complete(producer.stop())
            loop.close()
    return {"households": households, "readings": simulation.valid_readings, "batch_size_messages": batch,
            "readings_per_s_without_changelog": round(off), "readings_per_s_changelog_encoded": round(encoded),
            "readings_per_s_changelog_written_and_confirmed": round(written),
            "cost_of_durability_pct": round(100 * (1 - written / off), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-faults", action="store_true", help="only the state figures")
    parser.add_argument("--meters", type=int, default=1_000_000, help="meters for the restore figure")
    parser.add_argument("--households", type=int, default=10_000, help="households for the durability cost")
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "results" / "reliability.json"))
    args = parser.parse_args()
    report: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    if not args.skip_faults:
        print("fault injection (real broker, real worker processes, water city of 300 households, 3 days):")
        report["faults"] = fault_rows()
    print("state:")
    report["state"] = {"changelog": changelog_bytes(1000)}
    c = report["state"]["changelog"]
    print(f"  changelog: {c['compacted_bytes_per_subject']} bytes per subject compacted "
          f"({c['subjects']} subjects, largest record {c['largest_record_bytes']} B); "
          f"{c['written_bytes_per_reading']} bytes written per reading", flush=True)
    report["state"]["restore"] = restore_million(args.meters)
    r = report["state"]["restore"]
    print(f"  restore of {r['meters']:,} water meters: {r['restore_s']} s ({r['read_s']} s reading "
          f"{r['records']:,} records / {r['bytes'] / 1e6:.0f} MB, {r['rebuild_s']} s rebuilding); largest record "
          f"{r['largest_record_bytes']} B", flush=True)
    report["state"]["durability_cost"] = durability_cost(args.households)
    d = report["state"]["durability_cost"]
    print(f"  batched path, {d['readings']:,} readings: {d['readings_per_s_without_changelog']:,}/s without "
          f"changelog, {d['readings_per_s_changelog_encoded']:,}/s encoded, "
          f"{d['readings_per_s_changelog_written_and_confirmed']:,}/s written and confirmed "
          f"(cost {d['cost_of_durability_pct']} %)", flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
