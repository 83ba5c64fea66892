"""Water end to end through the real broker, a worker process and a real Prometheus server."""

import time

import pytest

from streams.broker import stop_process
from streams.demo import AlertReader, metric_sum, read_metrics, start_worker, wait_until_consumed
from streams.detectors import REGISTRY
from streams.domains import DOMAINS
from streams.evaluation import expected_alerts
from streams.pseudonym import Pseudonymizer
from streams.simulate import WaterScenario, simulate_water
from streams.simulate.produce import produce
from tests.conftest import TEST_KEY
from tests.integration.faults import read_topic
from tests.support.prometheus import PrometheusServer

START = 1_790_000_000.0 - 1_790_000_000.0 % 3600


@pytest.fixture
def worker(broker_settings, tmp_path):
    process = start_worker(broker_settings, tmp_path / "worker.log")
    yield process
    code = stop_process(process, grace_s=10.0)
    assert code is not None, "the worker outlived its test"


def test_two_city_days_exact_alerts_dead_letters_and_metrics(broker_settings, worker, tmp_path):
    settings = broker_settings
    simulation = simulate_water(WaterScenario(households=500, days=2, seed=11, start=START, no_use=5,
                                              meter_silent=3, gateway_outage=1, malformed=20))
    expected = expected_alerts(DOMAINS["water"], simulation.incidents, REGISTRY, Pseudonymizer(TEST_KEY.encode()))
    reader = AlertReader(settings)
    reader.start()
    try:
        sent = produce(simulation, settings)
        samples = wait_until_consumed(worker, settings.metrics_port, simulation.valid_readings,
                                      len(simulation.malformed), timeout_s=180)
        deadline = time.monotonic() + 30
        while len(reader.alerts) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)   # anything beyond the expected count would show up now
    finally:
        reader.stop()
    assert reader.error is None

    # exactly the expected alerts: no more, no fewer, none twice
    got = [(a["data"]["detector"], a["subject"], a["data"]["state"]) for a in reader.alerts]
    assert sorted(got) == sorted(expected), (tmp_path / "worker.log").read_text()[-3000:]
    welfare_topic = settings.topic("alerts.welfare.v1")
    for alert in reader.alerts:
        is_welfare = alert["data"]["detector"] == "water.no_use_24h"
        assert (reader.topics_of[alert["id"]] == welfare_topic) == is_welfare

    # one dead letter per malformed item, with its provenance and reason
    dead = read_topic(settings, "water.dlq.v1")
    assert len(dead) == len(simulation.malformed) == 20
    for record in dead:
        headers = dict(record.headers)
        assert headers["source_topic"] == settings.topic("water.readings.v1").encode()
        assert int(headers["source_offset"]) >= 0 and headers["reason"] and headers["detail"]

    # every valid reading counted in the worker's metrics
    assert metric_sum(samples, "glasscity_readings_consumed_total", domain="water") == simulation.valid_readings
    assert metric_sum(samples, "glasscity_messages_consumed_total", domain="water") == sent
    assert metric_sum(samples, "glasscity_invalid_total", domain="water") == 20
    final = read_metrics(settings.metrics_port)
    for detector, subject, state in expected:
        assert metric_sum(final, "glasscity_alerts_total", detector=detector, state=state) >= 1
    assert metric_sum(final, "glasscity_alerts_total") == len(expected)
    assert metric_sum(final, "glasscity_kernel_batch_duration_seconds_count", kernel="water.tracker") > 0

    # and a real Prometheus server scraping the worker sees the same count
    with PrometheusServer([f"127.0.0.1:{settings.metrics_port}"], scrape_interval_s=0.5) as prometheus:
        result = prometheus.wait_for('sum(glasscity_readings_consumed_total{domain="water"})',
                                     lambda r: bool(r) and float(r[0]["value"][1]) == simulation.valid_readings,
                                     timeout_s=60)
        assert float(result[0]["value"][1]) == simulation.valid_readings
        lag = prometheus.value('glasscity_watermark_lag_seconds{domain="water"}')
        assert lag is not None and lag > 0   # the simulated city ends in the past
