"""Fault injection on the real broker with real worker processes, shared by the tests
(tests/integration/test_faults.py) and the reliability benchmark (benchmarks/reliability.py).

Each ``run_*`` function injects one fault into a simulated water city and returns a
:class:`FaultRun`: the alert events expected from an uninterrupted run (the same pipeline
in-process, Kafka's own partitioning) and the events the workers actually published.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
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
    alerts = []
    for batch in kafka_batches(simulation.steps(), settings.partitions):
        alerts += [a.event for a in pipeline.process(batch).alerts]
    return alerts


def kafka_batches(steps, partitions: int):
    """One batch of raw messages per step, partitioned and numbered as the broker would (messages
    without a key in turn over the partitions, as the producer spreads them)."""
    offsets = [0] * partitions
    unkeyed = 0
    for _when, step in steps:
        batch = []
        for key, value in step:
            if key is None:
                p, unkeyed = unkeyed % partitions, unkeyed + 1
            else:
                p = kafka_partition(key, partitions)
            batch.append(RawMessage(value, "x", p, offsets[p], key))
            offsets[p] += 1
        yield batch


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


@dataclass
class FaultRun:
    """One fault and what came of it. Events are :func:`episodes` tuples."""

    fault: str
    injected: int                  # how many times the fault was injected (kills, stalls, copies...)
    expected: set
    got: set
    alerts: list = field(default_factory=list)   # every event as read, re-emissions included
    notes: dict = field(default_factory=dict)

    @property
    def incidents_expected(self) -> int:
        return sum(1 for e in self.expected if e[3] == "raised")

    @property
    def incidents_alerted(self) -> int:
        return sum(1 for e in self.expected & self.got if e[3] == "raised")

    @property
    def duplicate_ids(self) -> int:
        """Re-emissions of an id already delivered (at-least-once; consumers de-duplicate by id)."""
        ids = [a["id"] for a in self.alerts]
        return len(ids) - len(set(ids))

    @property
    def lost(self) -> int:
        return len(self.expected - self.got)

    @property
    def unexpected(self) -> int:
        return len(self.got - self.expected)

    def row(self) -> dict:
        return {"fault": self.fault, "injected": self.injected, "incidents_expected": self.incidents_expected,
                "incidents_alerted": self.incidents_alerted, "duplicate_ids": self.duplicate_ids,
                "lost": self.lost, "unexpected": self.unexpected,
                "one_id_per_episode_and_state": one_id_per_episode_and_state(self.alerts), **self.notes}


WATER_ONLY = {"GLASSCITY_DOMAINS": "water"}


def water_city(**overrides):
    from streams.simulate import WaterScenario, simulate_water

    scenario = dict(households=300, days=3, seed=21, start=START, no_use=5, meter_silent=2, gateway_outage=1,
                    malformed=10)
    scenario.update(overrides)
    return simulate_water(WaterScenario(**scenario))


class Steps:
    """A slice of a simulation's steps (or any ``(when, [(key, value)...])`` list), producible like one."""

    def __init__(self, simulation, steps):
        self.domain, self.start, self._steps = simulation.domain, simulation.start, list(steps)
        self.meter_ids = getattr(simulation, "meter_ids", ())   # the simulated city enrols its households

    def steps(self):
        return iter(self._steps)


def log_tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


def _with(settings, **changes):
    import dataclasses

    return dataclasses.replace(settings, **changes)


def run_kill_9(settings, tmp_path: Path, kills: int = 5, seed: int = 21, hour_seconds: float = 0.25) -> FaultRun:
    """SIGKILL the worker ``kills`` times at random points of a paced 3-city-day run, restarting it each time."""
    from streams.demo import AlertReader
    from streams.domains import DOMAINS
    from streams.simulate.produce import produce

    simulation = water_city(seed=seed)
    expected = episodes(reference_alerts(DOMAINS["water"], simulation, settings))
    reader = AlertReader(settings)
    reader.start()
    killer = Killer(settings, tmp_path / "worker.log", times=kills, seed=seed, env=WATER_ONLY)
    try:
        wait_ready(killer.worker, settings.metrics_port)
        killer.start()
        produce(simulation, settings, hour_seconds=hour_seconds)
        killer.join(180)
        if killer.error:
            raise killer.error
        got = wait_for_alerts(reader, expected, timeout_s=90)
    finally:
        reader.stop()
        killer.stop()
    return FaultRun(f"kill -9 x{kills}, paced run", killer.kills, expected, got, list(reader.alerts))


def run_rebalance(settings, tmp_path: Path, seed: int = 22) -> FaultRun:
    """Two workers share the partitions; one is SIGKILLed mid-run; the survivor takes over."""
    from streams.broker import free_port
    from streams.demo import AlertReader
    from streams.domains import DOMAINS
    from streams.simulate.produce import produce

    simulation = water_city(seed=seed)
    expected = episodes(reference_alerts(DOMAINS["water"], simulation, settings))
    steps = list(simulation.steps())
    half = len(steps) // 2
    other = _with(settings, metrics_port=free_port())
    reader = AlertReader(settings)
    reader.start()
    first = start_worker(settings, tmp_path / "first.log", extra_env=WATER_ONLY)
    second = start_worker(other, tmp_path / "second.log", extra_env=WATER_ONLY)
    try:
        wait_ready(first, settings.metrics_port)
        wait_ready(second, other.metrics_port)
        wait_for_split_assignment([settings.metrics_port, other.metrics_port], settings.partitions)
        produce(Steps(simulation, steps[:half]), settings, hour_seconds=0.1)
        time.sleep(1.5)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        produce(Steps(simulation, steps[half:]), settings, hour_seconds=0.1)
        got = wait_for_alerts(reader, expected, timeout_s=90)
    finally:
        reader.stop()
        stop_process(first)
        stop_process(second)
    survivor = (tmp_path / "second.log").read_text(errors="replace")
    return FaultRun("rebalance: 1 of 2 workers killed", 1, expected, got, list(reader.alerts),
                    {"survivor_restored_state": "restored water state" in survivor})


def wait_for_split_assignment(ports, partitions: int, timeout_s: float = 60.0) -> None:
    """Every worker holds partitions and together they hold them all once."""
    from streams.demo import read_metrics

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        counts = []
        for port in ports:
            try:
                counts.append(sum(v for (n, _l), v in read_metrics(port).items() if n == "glasscity_partitions_assigned"))
            except OSError:
                counts.append(0)
        if all(c > 0 for c in counts) and sum(counts) == partitions:
            return
        time.sleep(0.2)
    raise AssertionError(f"the workers never shared the {partitions} partitions")


def run_broker_stall(tmp_path: Path, stall_s: float = 30.0, seed: int = 25) -> FaultRun:
    """SIGSTOP a dedicated broker while the worker is busy, SIGCONT after ``stall_s``."""
    import os
    import uuid

    from streams.broker import EmbeddedBroker, free_port
    from streams.config import settings_from
    from streams.demo import AlertReader
    from streams.domains import DOMAINS
    from streams.simulate.produce import produce
    from streams.topics import create_topics

    with EmbeddedBroker(port=0, log_path=tmp_path / "broker.log") as broker:
        unique = uuid.uuid4().hex[:8]
        settings = settings_from(environ={}, bootstrap=broker.bootstrap, topic_prefix=f"s{unique}",
                                 app_id=f"stall-{unique}", partitions=4, rebalance_timeout_s=4.0,
                                 pseudonym_key=TEST_KEY, metrics_host="127.0.0.1", metrics_port=free_port(),
                                 page=False)
        create_topics(settings)
        simulation = water_city(seed=seed)
        expected = episodes(reference_alerts(DOMAINS["water"], simulation, settings))
        steps = list(simulation.steps())
        half = len(steps) // 2
        reader = AlertReader(settings)
        reader.start()
        worker = start_worker(settings, tmp_path / "worker.log", extra_env=WATER_ONLY)
        survived = False
        try:
            wait_ready(worker, settings.metrics_port)
            produce(Steps(simulation, steps[:half]), settings)   # the worker is still busy with it
            os.kill(broker.process.pid, signal.SIGSTOP)
            try:
                time.sleep(stall_s)
                survived = worker.poll() is None
            finally:
                os.kill(broker.process.pid, signal.SIGCONT)
            produce(Steps(simulation, steps[half:]), settings)
            got = wait_for_alerts(reader, expected, timeout_s=120)
            survived = survived and worker.poll() is None
        finally:
            reader.stop()
            stop_process(worker)
    return FaultRun(f"broker stalled {stall_s:.0f} s (SIGSTOP)", 1, expected, got, list(reader.alerts),
                    {"worker_never_restarted": survived})


def messy_steps(simulation, seed: int = 5, held_back: float = 0.2):
    """Every message twice, a share of each step held back to the next one, each step shuffled."""
    rng = random.Random(seed)
    messy, carry = [], []
    for when, step in simulation.steps():
        keep, later = [], []
        for message in step:
            (later if rng.random() < held_back else keep).append(message)
        sent = carry + keep
        rng.shuffle(sent)
        messy.append((when, [m for m in sent for _copy in (0, 1)]))
        carry = later
    messy.append((messy[-1][0] + 1, carry))
    return messy


def run_duplicates_and_disorder(settings, tmp_path: Path, seed: int = 24) -> FaultRun:
    from streams.demo import AlertReader
    from streams.domains import DOMAINS
    from streams.simulate.produce import produce

    simulation = water_city(seed=seed)
    expected = episodes(reference_alerts(DOMAINS["water"], simulation, settings))
    messy = messy_steps(simulation)
    reader = AlertReader(settings)
    reader.start()
    worker = start_worker(settings, tmp_path / "worker.log", extra_env=WATER_ONLY)
    try:
        wait_ready(worker, settings.metrics_port)
        sent = produce(Steps(simulation, messy), settings)
        got = wait_for_alerts(reader, expected, timeout_s=90)
    finally:
        reader.stop()
        stop_process(worker)
    return FaultRun("every message twice, 20 % one step late", sent // 2, expected, got, list(reader.alerts))


def run_new_thresholds(settings, tmp_path: Path, seed: int = 23) -> FaultRun:
    """Half the city, a restart with other thresholds, the rest: state kept, only thresholds change.

    Expected: the in-process run that restores its state from its own changelog and
    switches thresholds at the same point.
    """
    import json

    from streams.demo import AlertReader, wait_until_consumed
    from streams.detectors import REGISTRY
    from streams.detectors.thresholds import load_thresholds
    from streams.domains import DOMAINS
    from streams.ingest import decode
    from streams.simulate.produce import produce

    simulation = water_city(seed=seed)
    steps = list(simulation.steps())
    half = len(steps) // 2
    override = {"water.no_use_24h": {"no_use_after_s": 43200.0}, "water.meter_silent": {"silent_after_s": 14400.0}}
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps(override))
    water = DOMAINS["water"]
    before = DomainPipeline(water, settings, Pseudonymizer(TEST_KEY.encode()), clock=lambda: simulation.end + 3600)
    after = DomainPipeline(water, settings, Pseudonymizer(TEST_KEY.encode()), load_thresholds(str(path), REGISTRY),
                           clock=lambda: simulation.end + 3600)
    reference, records = [], []
    for i, batch in enumerate(kafka_batches(steps, settings.partitions)):
        if i == half:
            for p in range(settings.partitions):
                after.restore(p, [(k, v) for q, k, v in records if q == p])
        pipeline = before if i < half else after
        reference += [a.event for a in pipeline.process(batch).alerts]
        if i < half:
            records += before.changelog()   # what the worker writes per batch
    expected = episodes(reference)
    uninterrupted = episodes(reference_alerts(water, simulation, settings))
    first_half_readings = sum(len(decode([RawMessage(v, "x", 0, 0) for _k, v in step], water,
                                         now=simulation.end + 3600)) for _w, step in steps[:half])
    reader = AlertReader(settings)
    reader.start()
    worker = start_worker(settings, tmp_path / "worker.log", extra_env=WATER_ONLY)
    clean_stop = None
    try:
        wait_ready(worker, settings.metrics_port)
        produce(Steps(simulation, steps[:half]), settings)
        wait_until_consumed(worker, settings.metrics_port, first_half_readings, 0, timeout_s=60)
        clean_stop = stop_process(worker, grace_s=15.0)
        worker = start_worker(settings, tmp_path / "worker.log",
                              extra_env={**WATER_ONLY, "GLASSCITY_THRESHOLDS": str(path)})
        wait_ready(worker, settings.metrics_port)
        produce(Steps(simulation, steps[half:]), settings)
        got = wait_for_alerts(reader, expected, timeout_s=90)
    finally:
        reader.stop()
        stop_process(worker)
    return FaultRun("SIGTERM + restart with new thresholds", 1, expected, got, list(reader.alerts),
                    {"thresholds_changed_alerts": expected != uninterrupted, "first_exit_code": clean_stop})


def read_topic(settings, short):
    """Every record of a topic, read from the beginning outside any group (counted by consuming)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    partitions = [TopicPartition(settings.topic(short), p) for p in range(settings.partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records = list(consumer)
    consumer.close()
    return records
