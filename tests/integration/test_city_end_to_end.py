"""All four domains at once through the real broker and one worker process.

The worker's alerts must equal, event for event, what the same pipeline produces
in-process on the same simulated city with Kafka's own partitioning — and meet the
quality bar against the ground truth. Every valid reading and every dead letter is
counted per domain.
"""

import time

from streams.demo import AlertReader, metric_sum, start_worker, wait_until_consumed
from streams.detectors import REGISTRY
from streams.domains import DOMAINS
from streams.evaluation import summarise
from streams.pseudonym import Pseudonymizer
from streams.simulate.produce import produce
from streams.broker import stop_process
from tests.conftest import TEST_KEY
from tests.integration.faults import reference_alerts

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
    finally:
        reader.stop()
        stop_process(worker)
    assert reader.error is None
    assert as_tuples(reader.alerts) == as_tuples(expected), (tmp_path / "worker.log").read_text()[-2000:]

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
