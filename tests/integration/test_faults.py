"""Fault injection on the real broker with real worker processes: crashes, a rebalance,
a restart with new thresholds, duplicated and disordered input.

The yardstick is always the uninterrupted run: the same pipeline in-process over the same
simulated city with Kafka's own partitioning. Every alert event (id, detector, subject,
state, episode start, time) must be there, nothing else may be; re-emissions of the same
id are allowed (at-least-once delivery), a second id for the same episode never.
"""

from __future__ import annotations

import json
import random
import signal
import time

import pytest

from streams.broker import stop_process
from streams.demo import AlertReader, start_worker
from streams.detectors import REGISTRY
from streams.detectors.thresholds import load_thresholds
from streams.domains import DOMAINS
from streams.simulate import WaterScenario, simulate_water
from streams.simulate.produce import produce
from tests.integration.faults import (START, Killer, episodes, new_episode_per_silence, one_id_per_episode_and_state,
                                      reference_alerts, wait_for_alerts, wait_ready)

WATER_ONLY = {"GLASSCITY_DOMAINS": "water"}


def water_city(**overrides):
    scenario = dict(households=300, days=3, seed=21, start=START, no_use=5, meter_silent=2, gateway_outage=1,
                    malformed=10)
    scenario.update(overrides)
    return simulate_water(WaterScenario(**scenario))


class _Steps:
    """A slice of a simulation's steps, producible like a simulation."""

    def __init__(self, simulation, steps):
        self.domain, self.start, self._steps = simulation.domain, simulation.start, steps

    def steps(self):
        return iter(self._steps)


def log_tail(path, n=3000):
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


@pytest.mark.slow
def test_five_kill_9_during_a_paced_run_lose_nothing(broker_settings, tmp_path):
    settings = broker_settings
    simulation = water_city()
    expected = episodes(reference_alerts(DOMAINS["water"], simulation, settings))
    assert sum(1 for e in expected if e[1] == "water.no_use_24h" and e[3] == "raised") == 5
    reader = AlertReader(settings)
    reader.start()
    killer = Killer(settings, tmp_path / "worker.log", times=5, seed=3, env=WATER_ONLY)
    try:
        wait_ready(killer.worker, settings.metrics_port)
        killer.start()
        produce(simulation, settings, hour_seconds=0.25)    # 72 city-hours in 18 s while the worker dies
        killer.join(120)
        assert killer.error is None, killer.error
        got = wait_for_alerts(reader, expected, timeout_s=90)
    finally:
        reader.stop()
        killer.stop()
    assert killer.kills == 5
    assert reader.error is None
    assert got == expected, (sorted(expected - got)[:5], sorted(got - expected)[:5],
                             log_tail(tmp_path / "worker.log"))
    assert one_id_per_episode_and_state(reader.alerts)
    assert new_episode_per_silence(reader.alerts) == 0


@pytest.mark.slow
def test_two_workers_one_killed_the_survivor_takes_over_with_state(broker_settings, tmp_path):
    settings = broker_settings
    simulation = water_city(seed=22)
    expected = episodes(reference_alerts(DOMAINS["water"], simulation, settings))
    steps = list(simulation.steps())
    half = len(steps) // 2
    reader = AlertReader(settings)
    reader.start()
    first = start_worker(settings, tmp_path / "first.log", extra_env=WATER_ONLY)
    second_port_settings = settings.__class__(**{**{f: getattr(settings, f) for f in settings.__dataclass_fields__},
                                                 "metrics_port": _free_port()})
    second = start_worker(second_port_settings, tmp_path / "second.log", extra_env=WATER_ONLY)
    try:
        wait_ready(first, settings.metrics_port)
        wait_ready(second, second_port_settings.metrics_port)
        _wait_for_split_assignment([settings.metrics_port, second_port_settings.metrics_port])
        produce(_Steps(simulation, steps[:half]), settings, hour_seconds=0.1)
        time.sleep(1.5)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        produce(_Steps(simulation, steps[half:]), settings, hour_seconds=0.1)
        got = wait_for_alerts(reader, expected, timeout_s=90)
    finally:
        reader.stop()
        stop_process(first)
        stop_process(second)
    assert got == expected, (sorted(expected - got)[:5], sorted(got - expected)[:5], log_tail(tmp_path / "second.log"))
    assert one_id_per_episode_and_state(reader.alerts)
    survivor_log = (tmp_path / "second.log").read_text(errors="replace")
    assert "restored water state" in survivor_log


def _free_port():
    from streams.broker import free_port

    return free_port()


def _wait_for_split_assignment(ports, timeout_s=60.0):
    """Both workers hold partitions (the group has rebalanced over both)."""
    from streams.demo import read_metrics

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        counts = []
        for port in ports:
            try:
                counts.append(sum(v for (n, _l), v in read_metrics(port).items()
                                  if n == "glasscity_partitions_assigned"))
            except OSError:
                counts.append(0)
        if all(c > 0 for c in counts) and sum(counts) == 4:
            return
        time.sleep(0.2)
    raise AssertionError("the two workers never shared the partitions")


@pytest.mark.slow
def test_restart_with_new_thresholds_keeps_state(broker_settings, tmp_path):
    """Half the city under the default thresholds, a restart with a 12 h welfare rule, the rest:
    the alerts are the in-process run that changes thresholds at the same point, state kept."""
    from streams.demo import wait_until_consumed
    from streams.ingest import RawMessage, decode
    from streams.pipeline import DomainPipeline
    from streams.pseudonym import Pseudonymizer
    from tests.conftest import TEST_KEY
    from tests.integration.faults import kafka_partition

    settings = broker_settings
    simulation = water_city(seed=23)
    steps = list(simulation.steps())
    half = len(steps) // 2
    override = {"water.no_use_24h": {"no_use_after_s": 43200.0}, "water.meter_silent": {"silent_after_s": 14400.0}}
    (tmp_path / "thresholds.json").write_text(json.dumps(override))
    new_thresholds = load_thresholds(str(tmp_path / "thresholds.json"), REGISTRY)

    water = DOMAINS["water"]
    before = DomainPipeline(water, settings, Pseudonymizer(TEST_KEY.encode()), clock=lambda: simulation.end + 3600)
    after = DomainPipeline(water, settings, Pseudonymizer(TEST_KEY.encode()), new_thresholds,
                           clock=lambda: simulation.end + 3600)
    offsets = [0] * settings.partitions
    reference, records = [], []
    for i, (_when, step) in enumerate(steps):
        if i == half:
            for p in range(settings.partitions):
                after.restore(p, [(k, v) for q, k, v in records if q == p])
        pipeline = before if i < half else after
        batch = []
        for key, value in step:
            p = kafka_partition(key, settings.partitions)
            batch.append(RawMessage(value, "x", p, offsets[p], key))
            offsets[p] += 1
        reference += [a.event for a in pipeline.process(batch).alerts]
        if i < half:
            records += before.changelog()   # what the worker writes per batch
    expected = episodes(reference)
    uninterrupted = episodes(reference_alerts(water, simulation, settings))
    assert expected != uninterrupted, "the new thresholds must make a difference for this test to mean anything"

    reader = AlertReader(settings)
    reader.start()
    worker = start_worker(settings, tmp_path / "worker.log", extra_env=WATER_ONLY)
    try:
        wait_ready(worker, settings.metrics_port)
        produce(_Steps(simulation, steps[:half]), settings)
        first_half = sum(len(decode([RawMessage(v, "x", 0, 0) for _k, v in step], water,
                                                         now=simulation.end + 3600)) for _w, step in steps[:half])
        wait_until_consumed(worker, settings.metrics_port, first_half, 0, timeout_s=60)
        assert stop_process(worker, grace_s=15.0) == 0
        worker = start_worker(settings, tmp_path / "worker.log",
                              extra_env={**WATER_ONLY, "GLASSCITY_THRESHOLDS": str(tmp_path / "thresholds.json")})
        wait_ready(worker, settings.metrics_port)
        produce(_Steps(simulation, steps[half:]), settings)
        got = wait_for_alerts(reader, expected, timeout_s=90)
    finally:
        reader.stop()
        stop_process(worker)
    assert got == expected, (sorted(expected - got)[:5], sorted(got - expected)[:5], log_tail(tmp_path / "worker.log"))


@pytest.mark.slow
def test_duplicated_and_disordered_input_gives_the_clean_alert_ids(broker_settings, tmp_path):
    """Every message sent twice, and a fifth of each city-hour's messages held back to the next."""
    settings = broker_settings
    simulation = water_city(seed=24)
    expected = episodes(reference_alerts(DOMAINS["water"], simulation, settings))
    rng = random.Random(5)
    messy, carry = [], []
    for when, step in simulation.steps():
        keep, later = [], []
        for message in step:
            (later if rng.random() < 0.2 else keep).append(message)
        sent = carry + keep
        rng.shuffle(sent)
        messy.append((when, [m for m in sent for _copy in (0, 1)]))
        carry = later
    messy.append((messy[-1][0] + 1, carry))
    reader = AlertReader(settings)
    reader.start()
    worker = start_worker(settings, tmp_path / "worker.log", extra_env=WATER_ONLY)
    try:
        wait_ready(worker, settings.metrics_port)
        produce(_Steps(simulation, messy), settings)
        got = wait_for_alerts(reader, expected, timeout_s=90)
    finally:
        reader.stop()
        stop_process(worker)
    assert {e[0] for e in got} == {e[0] for e in expected}
    assert got == expected, (sorted(expected - got)[:5], sorted(got - expected)[:5])
