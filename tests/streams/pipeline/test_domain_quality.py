"""Every domain's default scenario in-process (no broker), through the one DomainPipeline.

Shared by all domains: the quality bar (per detector precision >= 0.95, recall >= 0.98 — in
fact exact: every incident raised once, every episode that ends cleared, no false alert) and
results that do not depend on how messages are batched.
"""

import random
import zlib

import pytest

from streams.detectors import REGISTRY
from streams.domains import DOMAINS
from streams.evaluation import expected_alerts, summarise
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from streams.pseudonym import Pseudonymizer
from tests.conftest import TEST_KEY

START = 1_790_000_000.0 - 1_790_000_000.0 % 3600
PARTITIONS = 4
PSEUDONYMS = Pseudonymizer(TEST_KEY.encode())


@pytest.fixture(scope="module", params=sorted(DOMAINS))
def city(request):
    domain = DOMAINS[request.param]
    simulation = domain.simulate(days=3.0, seed=42, start=START)
    offsets = [0] * PARTITIONS
    messages = []
    for _when, step in simulation.steps():
        for key, value in step:
            p = zlib.crc32(key) % PARTITIONS   # by key: a gateway's, segment's or cabinet's readings together
            messages.append(RawMessage(value, domain.topic("readings"), p, offsets[p], key))
            offsets[p] += 1
    return domain, simulation, messages


def run(settings, domain, simulation, batches):
    pipeline = DomainPipeline(domain, settings, PSEUDONYMS, clock=lambda: simulation.end + 3600)
    alerts, dead = [], []
    for batch in batches:
        result = pipeline.process(batch)
        alerts += result.alerts
        dead += result.dead_letters
    return alerts, dead


def batches_of(messages, sizes):
    batches, i = [], 0
    for size in sizes:
        if i >= len(messages):
            break
        batches.append(messages[i:i + size])
        i += size
    return batches + ([messages[i:]] if i < len(messages) else [])


def test_default_scenario_meets_the_quality_bar_for_every_detector(settings, city):
    domain, simulation, messages = city
    alerts, dead = run(settings, domain, simulation, batches_of(messages, [300] * len(messages)))
    assert len(dead) == len(simulation.malformed) > 0
    detectors = {cls.declaration.name: cls() for cls in domain.detectors if cls.declaration.status == "active"}
    summaries = summarise([a.event for a in alerts], [(domain, simulation.incidents)], detectors, REGISTRY,
                          PSEUDONYMS)
    assert {s.detector for s in summaries} == set(detectors)
    for s in summaries:
        assert s.injected >= 1 and s.precision >= 0.95 and s.recall >= 0.98, s
        assert (s.detected, s.false_alerts, s.cleared) == (s.injected, 0, s.expected_cleared), s
    got = [(a.event["data"]["detector"], a.event["subject"], a.event["data"]["state"]) for a in alerts]
    assert len(got) == len(set(got)), "an episode was raised or cleared twice"
    assert set(got) == expected_alerts(domain, simulation.incidents, REGISTRY, PSEUDONYMS)
    for alert in alerts:   # each alert on the topic its detector declares (welfare alerts apart)
        assert alert.topic == REGISTRY[alert.event["data"]["detector"]].declaration.alert_topic


def test_results_do_not_depend_on_batching(settings, city):
    domain, simulation, messages = city
    rng = random.Random(3)
    reference = None
    for sizes in ([len(messages)], [rng.randint(1, 300) for _ in range(len(messages))]):
        alerts, _dead = run(settings, domain, simulation, batches_of(messages, sizes))
        events = sorted((a.event["id"], a.event["time"], a.topic) for a in alerts)
        if reference is None:
            reference = events
        assert events and events == reference
