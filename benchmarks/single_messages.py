"""Worker throughput through the broker vs a bare aiokafka consumer, on single-reading messages
(and, with ``--households-per-gateway 500 --single-share 0``, on envelopes of 500 readings).

One topic of water readings is produced to the embedded broker once, then consumed by:

- ``bare``: a bare aiokafka consumer (no group, ``getmany`` + ``orjson.loads`` per message):
  the Python client ceiling the goal is stated against;
- ``worker``: a ``glasscity worker`` process (consumer group, the whole pipeline, alerts and
  changelog confirmed before commit). Two figures: wall time from process start (includes
  kernel warm-up and the group join), and the steady rate from the first counted reading to
  the last (``/metrics`` polled every 0.25 s);
- ``in_process``: the same messages through :class:`streams.pipeline.DomainPipeline` in this
  process, batches of ``batch_size`` (no broker): the pipeline's own ceiling.

``--profile FILE`` samples the worker with py-spy (``--py-spy``, a py-spy binary) while it
consumes and prints where the samples fall (Faust's per-event machinery, the pipeline, the
aiokafka thread, ...); the collapsed stacks are kept in FILE.

Usage: python benchmarks/single_messages.py [--households N] [--days D] [--profile /tmp/w.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402

from streams.broker import EmbeddedBroker, free_port, stop_process  # noqa: E402
from streams.config import settings_from  # noqa: E402
from streams.demo import metric_sum, read_metrics, start_worker  # noqa: E402
from streams.domains import DOMAINS  # noqa: E402
from streams.ingest import RawMessage  # noqa: E402
from streams.pipeline import DomainPipeline  # noqa: E402
from streams.pseudonym import Pseudonymizer  # noqa: E402
from streams.simulate import WaterScenario, simulate_water  # noqa: E402
from streams.simulate.produce import produce  # noqa: E402
from streams.topics import create_topics  # noqa: E402

KEY = "benchmark-pseudonym-key-0000"


async def _bare(bootstrap: str, topic: str, partitions: int, expected: int) -> dict:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        started = time.perf_counter()
        n = 0
        while n < expected:
            for _tp, records in (await consumer.getmany(timeout_ms=1000, max_records=10000)).items():
                for record in records:
                    orjson.loads(record.value)
                    n += 1
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
    return {"messages": n, "seconds": round(seconds, 3), "msgs_per_s": round(n / seconds)}


def bare(bootstrap, topic, partitions, expected, runs=2) -> dict:
    results = [asyncio.run(_bare(bootstrap, topic, partitions, expected)) for _ in range(runs)]
    return max(results, key=lambda r: r["msgs_per_s"])


def in_process(messages: list[RawMessage], settings, end: float) -> dict:
    domain = DOMAINS["water"]
    pipeline = DomainPipeline(domain, settings, Pseudonymizer(KEY.encode()), clock=lambda: end + 3600)
    pipeline.process(messages[:1])   # kernels compiled / loaded from cache before timing
    pipeline = DomainPipeline(domain, settings, Pseudonymizer(KEY.encode()), clock=lambda: end + 3600)
    readings = 0
    started = time.perf_counter()
    for i in range(0, len(messages), settings.batch_size):
        pipeline.process(messages[i:i + settings.batch_size])
    seconds = time.perf_counter() - started
    return {"messages": len(messages), "seconds": round(seconds, 3), "msgs_per_s": round(len(messages) / seconds),
            "batch_size": settings.batch_size}


def worker(settings, expected_readings: int, messages: int, log_path: Path, profile: str | None,
           py_spy: str, extra_env: dict) -> dict:
    started = time.perf_counter()
    process = start_worker(settings, log_path, extra_env=extra_env)
    spy = None
    first_at = first_count = None
    try:
        deadline = time.monotonic() + 900
        got = 0.0
        while got < expected_readings:
            if process.poll() is not None:
                raise RuntimeError(f"worker exited with code {process.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker consumed {got:.0f}/{expected_readings} readings")
            try:
                got = metric_sum(read_metrics(settings.metrics_port), "glasscity_readings_consumed_total")
            except OSError:
                got = 0.0
            if got > 0 and first_at is None:
                first_at, first_count = time.perf_counter(), got
                if profile:
                    spy = subprocess.Popen([py_spy, "record", "--pid", str(process.pid), "--rate", "250",
                                            "--format", "raw", "--threads", "--nonblocking", "-o", profile],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.25)
        done = time.perf_counter()
    finally:
        if spy is not None:
            spy.send_signal(2)     # SIGINT: py-spy writes its output and exits
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
        stop_process(process)
    steady = (expected_readings - first_count) / (done - first_at) if done > first_at else float("nan")
    share = messages / expected_readings   # messages per reading
    return {"readings": expected_readings, "messages": messages,
            "seconds_incl_startup": round(done - started, 2),
            "readings_per_s_incl_startup": round(expected_readings / (done - started)),
            "steady_seconds": round(done - first_at, 2), "steady_readings_per_s": round(steady),
            "steady_msgs_per_s": round(steady * share)}


#: Buckets for the profile: the first pattern found in a stack (innermost frame first) names it.
BUCKETS = [
    ("pipeline (DomainPipeline.process)", ("process (streams/pipeline",)),
    ("publish + changelog (ours)", ("publish (streams/app.py", "send_all (streams/durable")),
    ("fetch hand-off (streams.fetches)", ("streams/fetches.py",)),
    ("faust stream iteration / take / ack", ("faust/streams.py", "faust/_cython/streams", "faust/events.py")),
    ("faust conductor / channel delivery", ("faust/transport/conductor.py", "faust/channels.py",
                                            "faust/_cython/conductor", "faust/topics.py", "mode/utils/queues.py")),
    ("faust consumer drain / getmany / ack", ("faust/transport/consumer.py",)),
    ("faust sensors / monitor", ("faust/sensors",)),
    ("faust aiokafka driver (thread hop)", ("faust/transport/drivers/aiokafka.py", "mode/threads.py")),
    ("aiokafka (fetch, decode records)", ("aiokafka/",)),
    ("asyncio event loop", ("asyncio/",)),
]


def analyse(path: str) -> dict:
    """Share of samples per bucket: the innermost frame from our list that the stack passes through
    decides (so time in a Faust frame called from our code counts for Faust, and vice versa)."""
    totals: Counter = Counter()
    threads: Counter = Counter()
    all_samples = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        all_samples += n
        frames = stack.split(";")
        threads[frames[0][:60]] += n
        bucket = "other"
        for frame in reversed(frames):
            found = next((name for name, patterns in BUCKETS if any(p in frame for p in patterns)), None)
            if found:
                bucket = found
                break
        totals[bucket] += n
    return {"samples": all_samples, "threads": dict(threads.most_common()),
            "buckets": {k: round(v / all_samples, 3) for k, v in totals.most_common()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=2000)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--households-per-gateway", type=int, default=50)
    parser.add_argument("--single-share", type=float, default=1.0, help="share of readings sent one per message")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--profile", default=None, help="py-spy collapsed stacks of the worker to this file")
    parser.add_argument("--py-spy", default="py-spy")
    parser.add_argument("--skip-bare", action="store_true")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the worker (repeatable)")
    parser.add_argument("--output", default=None, help="JSON results to this file")
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)
    extra_env["GLASSCITY_BATCH_SIZE"] = str(args.batch_size)
    scenario = WaterScenario(households=args.households, days=args.days, start=1_790_000_000.0, malformed=0,
                             households_per_gateway=args.households_per_gateway,
                             single_reading_share=args.single_share)
    simulation = simulate_water(scenario)
    report: dict = {"scenario": {"households": args.households, "days": args.days,
                                 "households_per_gateway": args.households_per_gateway,
                                 "single_share": args.single_share, "batch_size": args.batch_size,
                                 "worker_env": extra_env}}
    messages = []
    offsets = [0, 0, 0, 0]
    for _when, step in simulation.steps():
        for k, v in step:
            p = zlib.crc32(k) % 4
            messages.append(RawMessage(v, "r", p, offsets[p], k))
            offsets[p] += 1
    settings0 = settings_from(environ={}, pseudonym_key=KEY, batch_size=args.batch_size)
    report["in_process"] = in_process(messages, settings0, simulation.end)
    report["in_process"]["readings_per_s"] = round(simulation.valid_readings / report["in_process"]["seconds"])
    print(f"in-process: {report['in_process']['msgs_per_s']:,} msgs/s ({len(messages):,} messages, "
          f"{simulation.valid_readings:,} readings)", flush=True)
    del messages
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=0) as broker:
        settings = settings_from(environ={}, bootstrap=broker.bootstrap, pseudonym_key=KEY, rebalance_timeout_s=4.0,
                                 metrics_host="127.0.0.1", metrics_port=free_port(), log_level="warning",
                                 batch_size=args.batch_size)
        create_topics(settings)
        t0 = time.perf_counter()
        sent = produce(simulation, settings)
        print(f"produced {sent:,} messages in {time.perf_counter() - t0:.1f} s", flush=True)
        topic = settings.topic("water.readings.v1")
        if not args.skip_bare:
            report["bare_aiokafka"] = bare(broker.bootstrap, topic, settings.partitions, sent)
            print(f"bare aiokafka getmany+orjson: {report['bare_aiokafka']['msgs_per_s']:,} msgs/s", flush=True)
        report["worker"] = worker(settings, simulation.valid_readings, sent, Path(tmp) / "worker.log", args.profile,
                                  args.py_spy, extra_env)
        w = report["worker"]
        print(f"worker: steady {w['steady_msgs_per_s']:,} msgs/s = {w['steady_readings_per_s']:,} readings/s "
              f"({w['steady_seconds']} s); incl. start-up {w['readings_per_s_incl_startup']:,} readings/s "
              f"({w['seconds_incl_startup']} s)", flush=True)
        if "bare_aiokafka" in report:
            ratio = w["steady_msgs_per_s"] / report["bare_aiokafka"]["msgs_per_s"]
            report["worker_over_bare"] = round(ratio, 3)
            print(f"worker / bare: {ratio:.2f} (goal >= 0.5)")
    if args.profile:
        report["profile"] = analyse(args.profile)
        print("profile of the worker while consuming (share of samples):")
        for name, share in report["profile"]["buckets"].items():
            print(f"  {share:6.1%}  {name}")
        print("  threads:", report["profile"]["threads"])
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
