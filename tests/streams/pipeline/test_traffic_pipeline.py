"""The traffic domain in-process (no broker): the default scenario through DomainPipeline."""

import random

import pytest

from streams.detectors import REGISTRY
from streams.domains import DOMAINS
from streams.evaluation import expected_alerts, summarise
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from streams.pseudonym import Pseudonymizer
from tests.conftest import TEST_KEY

TRAFFIC = DOMAINS["traffic"]
START = 1_790_000_000.0 - 1_790_000_000.0 % 3600
PARTITIONS = 4


@pytest.fixture(scope="module")
def simulation():
    return TRAFFIC.simulate(days=3.0, seed=42, start=START)


def feed(simulation):
    offsets = [0] * PARTITIONS
    messages = []
    for _when, step in simulation.steps():
        for key, value in step:
            p = int(key.rsplit(b"-", 1)[-1]) % PARTITIONS   # key = road segment: a segment's detectors together
            messages.append(RawMessage(value, "glasscity.traffic.readings.v1", p, offsets[p], key))
            offsets[p] += 1
    return messages


def run(settings, simulation, batches):
    pipeline = DomainPipeline(TRAFFIC, settings, Pseudonymizer(TEST_KEY.encode()),
                              clock=lambda: simulation.end + 3600)
    alerts, dead = [], []
    for batch in batches:
        result = pipeline.process(batch)
        alerts += result.alerts
        dead += result.dead_letters
    return alerts, dead


def test_default_scenario_precision_and_recall_per_detector(settings, simulation):
    messages = feed(simulation)
    alerts, dead = run(settings, simulation, [messages[i:i + 300] for i in range(0, len(messages), 300)])
    assert len(dead) == len(simulation.malformed)
    detectors = {name: cls() for name, cls in REGISTRY.items()}
    summaries = summarise([a.event for a in alerts], [(TRAFFIC, simulation.incidents)], detectors, REGISTRY,
                          Pseudonymizer(TEST_KEY.encode()))
    assert {s.detector for s in summaries} == {c.declaration.name for c in TRAFFIC.detectors}
    for s in summaries:
        assert s.injected >= 4 and s.precision >= 0.95 and s.recall >= 0.98, s
        assert s.cleared == s.expected_cleared, s
    got = [(a.event["data"]["detector"], a.event["subject"], a.event["data"]["state"]) for a in alerts]
    assert len(got) == len(set(got)), "an episode was raised or cleared twice"
    assert set(got) == expected_alerts(TRAFFIC, simulation.incidents, REGISTRY, Pseudonymizer(TEST_KEY.encode()))


def test_results_do_not_depend_on_batching(settings, simulation):
    messages = feed(simulation)
    rng = random.Random(3)
    reference = None
    for sizes in ([len(messages)], [rng.randint(1, 400) for _ in range(len(messages))]):
        batches, i = [], 0
        for size in sizes:
            if i < len(messages):
                batches.append(messages[i:i + size])
            i += size
        alerts, _dead = run(settings, simulation, batches)
        events = sorted((a.event["id"], a.event["time"], a.topic) for a in alerts)
        if reference is None:
            reference = events
        assert events == reference and all(topic == "alerts.v1" for _i, _t, topic in events)
