"""Throughput of the water path, in-process and through the real broker.

Prints figures and writes ``benchmarks/results/throughput.json``. Speed lives here,
not in the tests. Two figures:

- ``in_process``: the one pipeline (decode -> pseudonymise -> kernels -> alerts) on
  pre-generated messages, no broker, for the water city of ``--households`` and for
  each other domain's default scenario: readings per second of CPU-bound work.
- ``broker``: the whole feed produced to the embedded broker first, then a worker
  process consumes it; wall time from worker start to every reading counted
  (includes the worker's start-up and consumer-group join).

Usage: python benchmarks/throughput.py [--households N] [--days D] [--skip-broker]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.broker import EmbeddedBroker, free_port, stop_process  # noqa: E402
from streams.config import settings_from  # noqa: E402
from streams.demo import start_worker, wait_until_consumed  # noqa: E402
from streams.domains import DOMAINS  # noqa: E402
from streams.ingest import RawMessage  # noqa: E402
from streams.pipeline import DomainPipeline  # noqa: E402
from streams.pseudonym import Pseudonymizer  # noqa: E402
from streams.simulate import WaterScenario, simulate_water  # noqa: E402
from streams.simulate.produce import produce  # noqa: E402
from streams.topics import create_topics  # noqa: E402

KEY = "benchmark-pseudonym-key-0000"


def in_process(domain, simulation, settings) -> dict:
    messages = []
    offsets = [0, 0, 0, 0]
    for _when, step in simulation.steps():
        for k, v in step:
            p = zlib.crc32(k) % 4
            messages.append(RawMessage(v, "r", p, offsets[p], k))
            offsets[p] += 1
    pipeline = DomainPipeline(domain, settings, Pseudonymizer(KEY.encode()), clock=lambda: simulation.end + 3600)
    pipeline.process(messages[:1])  # kernels compiled / loaded from cache before timing
    pipeline = DomainPipeline(domain, settings, Pseudonymizer(KEY.encode()), clock=lambda: simulation.end + 3600)
    started = time.perf_counter()
    alerts = 0
    for i in range(0, len(messages), settings.batch_size):
        alerts += len(pipeline.process(messages[i:i + settings.batch_size]).alerts)
    seconds = time.perf_counter() - started
    return {"messages": len(messages), "readings": simulation.valid_readings, "alerts": alerts,
            "seconds": round(seconds, 3), "readings_per_s": round(simulation.valid_readings / seconds),
            "batch_size_messages": settings.batch_size}


def through_broker(simulation, scenario_settings) -> dict:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=0) as broker:
        settings = settings_from(environ={}, bootstrap=broker.bootstrap, pseudonym_key=KEY, rebalance_timeout_s=4.0,
                                 metrics_host="127.0.0.1", metrics_port=free_port(), log_level="warning",
                                 batch_size=scenario_settings.batch_size)
        create_topics(settings)
        produce_started = time.perf_counter()
        sent = produce(simulation, settings)
        produce_seconds = time.perf_counter() - produce_started
        started = time.perf_counter()
        worker = start_worker(settings, Path(tmp) / "worker.log")
        try:
            wait_until_consumed(worker, settings.metrics_port, simulation.valid_readings, len(simulation.malformed),
                                timeout_s=900)
            seconds = time.perf_counter() - started
        finally:
            stop_process(worker)
    return {"messages": sent, "readings": simulation.valid_readings, "produce_seconds": round(produce_seconds, 2),
            "consume_seconds_incl_startup": round(seconds, 2),
            "readings_per_s_incl_startup": round(simulation.valid_readings / seconds)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=10000)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--skip-broker", action="store_true")
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "results" / "throughput.json"))
    args = parser.parse_args()
    settings = settings_from(environ={}, pseudonym_key=KEY)
    simulation = simulate_water(WaterScenario(households=args.households, days=args.days, start=1_790_000_000.0,
                                              malformed=20))
    report = {"households": args.households, "days": args.days, "machine": {"cpus": os.cpu_count(),
              "python": platform.python_version()},
              "in_process": {"water": in_process(DOMAINS["water"], simulation, settings)}}
    for name, domain in DOMAINS.items():
        if name != "water":
            sim = domain.simulate(days=args.days, start=1_790_000_000.0)
            report["in_process"][name] = in_process(domain, sim, settings)
    for name, figures in report["in_process"].items():
        print(f"in-process {name:9}: {figures['readings_per_s']:>9,} readings/s "
              f"({figures['readings']:,} readings in {figures['seconds']} s)")
    if not args.skip_broker:
        report["broker"] = through_broker(simulation, settings)
        b = report["broker"]
        print(f"through the broker: {b['readings_per_s_incl_startup']:,} readings/s including worker start-up "
              f"({b['readings']:,} readings in {b['consume_seconds_incl_startup']} s; produced in "
              f"{b['produce_seconds']} s)")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
