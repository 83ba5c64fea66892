"""Shared pieces of the fault-injection tests: a reference run, worker processes, alert comparison."""

from __future__ import annotations

import random
import signal
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

from kafka.partitioner.default import murmur2

from streams.broker import stop_process
from streams.demo import start_worker
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from streams.pseudonym import Pseudonymizer
from tests.conftest import TEST_KEY

START = 1_790_000_000.0 - 1_790_000_000.0 % 86400


def kafka_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def reference_alerts(domain, simulation, settings, thresholds=None) -> list[dict]:
    """What an uninterrupted worker emits: the same pipeline in-process, Kafka's partitioning."""
    pipeline = DomainPipeline(domain, settings, Pseudonymizer(TEST_KEY.encode()), thresholds,
                              clock=lambda: simulation.end + 3600)
    offsets = [0] * settings.partitions
    alerts = []
    for _when, step in simulation.steps():
        batch = []
        for key, value in step:
            p = kafka_partition(key, settings.partitions)
            batch.append(RawMessage(value, "x", p, offsets[p], key))
            offsets[p] += 1
        alerts += [a.event for a in pipeline.process(batch).alerts]
    return alerts


def episodes(alerts) -> set[tuple]:
    """(id, detector, subject, state, episode start, time) of each alert event, duplicates folded."""
    return {(a["id"], a["data"]["detector"], a["subject"], a["data"]["state"], a["data"]["episodeStart"], a["time"])
            for a in alerts}


def one_id_per_episode_and_state(alerts) -> bool:
    ids = {}
    for a in alerts:
        ids.setdefault((a["data"]["detector"], a["subject"], a["data"]["episodeStart"], a["data"]["state"]),
                       set()).add(a["id"])
    return all(len(v) == 1 for v in ids.values())


def new_episode_per_silence(alerts) -> int:
    """How many (detector, subject, state) were reported for more than one episode start."""
    starts = Counter()
    seen = set()
    for a in alerts:
        key = (a["data"]["detector"], a["subject"], a["data"]["state"], a["data"]["episodeStart"])
        if key not in seen:
            seen.add(key)
            starts[key[:3]] += 1
    return sum(1 for n in starts.values() if n > 1)


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def wait_ready(process, port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"worker exited with {process.returncode} before it was ready")
        if ready(port):
            return
        time.sleep(0.1)
    raise AssertionError(f"worker not ready within {timeout_s:.0f} s")


def wait_for_alerts(reader, expected: set, timeout_s: float) -> set:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = episodes(list(reader.alerts))
        if got >= expected:
            break
        time.sleep(0.25)
    time.sleep(2.0)   # anything beyond the expected set would show up now
    return episodes(list(reader.alerts))


class Killer(threading.Thread):
    """Kills (SIGKILL) and restarts a worker ``times`` times at random moments once it is ready."""

    def __init__(self, settings, log_path: Path, times: int, seed: int, env: dict, delay_s=(0.3, 2.5)):
        super().__init__(daemon=True, name="killer")
        self.settings, self.log_path, self.times, self.env = settings, log_path, times, env
        self.rng = random.Random(seed)
        self.delay_s = delay_s
        self.worker = start_worker(settings, log_path, extra_env=env)
        self.kills = 0
        self.error: BaseException | None = None

    def run(self):
        try:
            for _ in range(self.times):
                wait_ready(self.worker, self.settings.metrics_port)
                time.sleep(self.rng.uniform(*self.delay_s))
                self.worker.send_signal(signal.SIGKILL)
                self.worker.wait(10)
                self.kills += 1
                self.worker = start_worker(self.settings, self.log_path, extra_env=self.env)
        except BaseException as error:   # reported by the test
            self.error = error

    def stop(self):
        self.join(120)
        stop_process(self.worker)
