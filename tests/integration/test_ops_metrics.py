"""A running worker's /metrics after a few readings: consumer lag and watermark lag per assigned
partition, the batch-size histogram, build info (real broker, real worker process)."""

import time

import orjson
import pytest

from streams.broker import stop_process
from streams.delivery import close_producer, make_producer
from streams.demo import metric_sum, read_metrics, start_worker, wait_until_consumed

PER_PARTITION = 5


@pytest.fixture
def water_worker(broker_settings, tmp_path):
    process = start_worker(broker_settings, tmp_path / "worker.log", extra_env={"GLASSCITY_DOMAINS": "water"})
    yield process
    assert stop_process(process, grace_s=5.0) is not None, "the worker outlived its test"


def _reading(meter: int, at: float) -> bytes:
    return orjson.dumps({"id": f"urn:ngsi-ld:WaterMeter:OPS-{meter:04d}", "type": "WaterConsumptionObserved",
                         "dateObserved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
                         "waterConsumption": 10.0 + meter, "gatewayId": "gw-001"})


def test_lag_per_partition_batch_sizes_and_build_info(broker_settings, water_worker, tmp_path):
    settings = broker_settings
    topic = settings.topic("water.readings.v1")
    producer = make_producer(settings.bootstrap, "ops-metrics-test")
    try:
        now = time.time()
        sent = [producer.send(topic, value=_reading(p * 100 + i, now - 60 * (PER_PARTITION - i)),
                              key=f"m{p * 100 + i}".encode(), partition=p)
                for p in range(settings.partitions) for i in range(PER_PARTITION)]
        for future in sent:
            future.get(timeout=30)        # confirmed by the broker
    finally:
        close_producer(producer)
    readings = settings.partitions * PER_PARTITION
    samples = wait_until_consumed(water_worker, settings.metrics_port, readings, 0, timeout_s=40)
    assert metric_sum(samples, "glasscity_readings_consumed_total", domain="water") == readings

    def series(name):
        return {dict(labels).get("partition"): value for (n, labels), value in samples.items()
                if n == name and ("domain", "water") in labels}

    partitions = {str(p) for p in range(settings.partitions)}
    # every assigned partition has its lag series; all consumed, nothing is behind
    assert metric_sum(samples, "glasscity_partitions_assigned", domain="water") == settings.partitions
    assert set(series("glasscity_consumer_lag_messages")) == partitions
    assert all(v == 0 for v in series("glasscity_consumer_lag_messages").values()), samples
    # each partition's watermark: the newest reading (1 min old) minus the allowed lateness (10 min)
    watermark_lags = series("glasscity_partition_watermark_lag_seconds")
    assert set(watermark_lags) == partitions
    lateness = settings.allowed_lateness_s
    assert all(lateness + 50 < v < lateness + 120 for v in watermark_lags.values()), watermark_lags
    # the batches: at least one, and they hold every reading
    assert metric_sum(samples, "glasscity_batch_size_readings_count", domain="water") >= 1
    assert metric_sum(samples, "glasscity_batch_size_readings_sum", domain="water") == readings
    build = [labels for (n, labels), v in samples.items() if n == "glasscity_build_info" and v == 1.0]
    assert len(build) == 1 and dict(build[0])["version"] not in ("", "unknown")
    # counters of errors are there at 0 for every stage
    for stage in ("batch", "idle_sweep", "restore"):
        assert ("glasscity_processing_errors_total", (("domain", "water"), ("stage", stage))) in samples
    assert metric_sum(samples, "glasscity_processing_errors_total") == 0
