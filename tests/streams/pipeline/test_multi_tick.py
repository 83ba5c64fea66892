"""Sweeps over many ticks in one kernel call give what sweeping tick by tick gives, in every domain.

Each domain's simulated city (found by introspection: ``streams.domains.DOMAINS``) runs through
the pipeline twice — with :data:`streams.pipeline.domain.MAX_TICKS_PER_SWEEP` as shipped and set
to 1 (one tick per kernel call, the reference) — and the alerts must be identical: ids, states,
times, order. The messages have holes of many hours per partition (its watermark then jumps over
a long run of ticks with no reading in between: multi-tick really happens, and it is counted), come
in batches spanning hours, and pass a consent register that excludes and holds some households;
the gate's retention is shortened so masks change and the tracker is purged inside those runs.
"""

import zlib

import numpy as np
import pytest

import streams.pipeline.domain as domain_module
from streams.consent import ConsentRegister
from streams.domains import DOMAINS
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from streams.pseudonym import Pseudonymizer
from tests.conftest import TEST_KEY

START = 1_790_000_000.0 - 1_790_000_000.0 % 3600
H = 3600.0
PARTITIONS = 3
PSEUDONYMS = Pseudonymizer(TEST_KEY.encode())
SWEEP = DomainPipeline._sweep


def _bucket(key: str, n: int) -> int:
    return zlib.crc32(key.encode()) % n


class MixedRegister(ConsentRegister):
    """A quarter of the households excluded (not enrolled / objected); a third absent in a window."""

    def excluded(self, declaration, pseudonym):
        return self.restricts(declaration) and _bucket(pseudonym, 4) == 0

    def absent(self, pseudonym, t):
        return _bucket(pseudonym, 3) == 1 and START + 10 * H <= t < START + 20 * H


def city_messages(domain, days=3.0):
    """The simulated city's messages by partition, with a hole of 14 h (a different one per partition)."""
    simulation = domain.simulate(days=days, seed=11, start=START)
    offsets = [0] * PARTITIONS
    messages = []
    for when, step in simulation.steps():
        for key, value in step:
            p = zlib.crc32(key) % PARTITIONS
            hole = START + (6 + 7 * p) * H
            if hole <= when < hole + 14 * H:
                continue
            messages.append(RawMessage(value, domain.topic("readings"), p, offsets[p], key))
            offsets[p] += 1
    return simulation, messages


def run(settings, domain, simulation, messages, monkeypatch, most_ticks, register):
    monkeypatch.setattr(domain_module, "MAX_TICKS_PER_SWEEP", most_ticks)
    runs = []

    def counted(self, state, ticks, result):
        runs.append(len(ticks))
        return SWEEP(self, state, ticks, result)

    monkeypatch.setattr(DomainPipeline, "_sweep", counted)
    pipeline = DomainPipeline(domain, settings, PSEUDONYMS, clock=lambda: simulation.end + H, consent=register)
    # retention as if 200 times shorter (30 d -> 3.6 h, 90 d -> 10.8 h): masks and purges within the holes
    pipeline.gate.retention_s = pipeline.gate.retention_s / 200.0
    pipeline.gate.tracker_retention_s /= 200.0
    alerts = []
    for i in range(0, len(messages), 4000):        # a batch spans hours of the city
        alerts += pipeline.process(messages[i:i + 4000]).alerts
    return alerts, runs


@pytest.mark.parametrize("name", sorted(DOMAINS))
@pytest.mark.parametrize("consent", ["everyone", "mixed"])
def test_many_ticks_per_call_give_the_alerts_of_one_tick_per_call(settings, monkeypatch, name, consent):
    domain = DOMAINS[name]
    simulation, messages = city_messages(domain)
    register = (lambda: ConsentRegister.everyone()) if consent == "everyone" else (lambda: MixedRegister())
    many, many_runs = run(settings, domain, simulation, messages, monkeypatch, domain_module.MAX_TICKS_PER_SWEEP,
                          register())
    one, one_runs = run(settings, domain, simulation, messages, monkeypatch, 1, register())
    assert set(one_runs) == {1}
    assert max(many_runs) >= 24, "no long run of ticks: multi-tick did not happen"
    assert len(many_runs) < len(one_runs)
    assert sum(many_runs) == sum(one_runs)          # the same ticks swept
    assert [(a.topic, a.key, a.event) for a in many] == [(a.topic, a.key, a.event) for a in one]
    assert many, "the scenario raises nothing: a weak comparison"
    states = {a.event["data"]["state"] for a in many}
    assert "raised" in states


def test_every_absence_detector_is_multi_tick(settings):
    """Every detector with a sweep of its own runs over a whole run of ticks, except the ones listed."""
    per_tick = {"traffic.incident", "traffic.anomaly_score", "water.night_flow"}   # kept tick by tick
    for domain in DOMAINS.values():
        pipeline = DomainPipeline(domain, settings, PSEUDONYMS, activated={c.declaration.name for c in domain.detectors})
        for i, detector in enumerate(pipeline.detectors):
            if i in pipeline._sweeping:
                assert (i in pipeline._multi_tick) == (detector.declaration.name not in per_tick), \
                    detector.declaration.name


def test_a_held_alert_is_released_at_the_tick_its_absence_ends_within_a_run(settings, monkeypatch):
    """A welfare alert raised during a declared absence, inside one long run, is released at the first
    tick after the absence, as tick by tick."""
    domain = DOMAINS["water"]
    simulation, messages = city_messages(domain, days=3.0)
    runs_alerts = []
    for most in (domain_module.MAX_TICKS_PER_SWEEP, 1):
        alerts, _runs = run(settings, domain, simulation, messages, monkeypatch, most, MixedRegister())
        runs_alerts.append([(a.topic, a.key, a.event) for a in alerts])
    assert runs_alerts[0] == runs_alerts[1]
