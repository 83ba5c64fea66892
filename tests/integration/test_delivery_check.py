"""Producers check every delivery against the real broker: a broker that goes away or
restarts mid-run is a ProduceError with the refused count, never a silent success.

Each failure test runs its own broker, so stopping it spares the session broker.
"""

import subprocess
import sys
import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from streams.broker import EmbeddedBroker, stop_process
from streams.config import settings_from
from streams.delivery import ProduceError, close_producer
from streams.simulate import WaterScenario, simulate_water
from streams.simulate.produce import make_producer, produce
from streams.topics import create_topics

START = 1_790_000_000.0 - 1_790_000_000.0 % 3600


def small_city():
    return simulate_water(WaterScenario(households=60, households_per_gateway=10, days=1.5, seed=5, start=START,
                                        no_use=1, meter_silent=1, gateway_outage=1, malformed=5))


def own_broker_settings(broker, prefix="d"):
    settings = settings_from(environ={}, bootstrap=broker.bootstrap, topic_prefix=prefix, partitions=2,
                             domains="water")
    create_topics(settings)
    return settings


def count_by_consuming(settings, short) -> int:
    """Records stored, counted by reading them (the broker's end offsets under-report)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    partitions = [TopicPartition(settings.topic(short), p) for p in range(settings.partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    stored = sum(1 for _record in consumer)
    consumer.close()
    return stored


def test_a_normal_run_returns_exactly_what_the_broker_stores(broker_settings):
    simulation = small_city()
    expected = sum(len(messages) for _when, messages in simulation.steps())
    confirmed = produce(simulation, broker_settings)
    assert confirmed == expected > 36 * 6   # at least one envelope per gateway and city-hour
    assert count_by_consuming(broker_settings, "water.readings.v1") == confirmed


def test_a_broker_restart_mid_run_is_a_produce_error_not_a_silent_success(tmp_path):
    broker = EmbeddedBroker(port=0, log_path=tmp_path / "broker.log").start()
    restarted = None
    try:
        settings = own_broker_settings(broker)
        first_step = []

        def restart_after_the_first_step(_when, confirmed):
            nonlocal restarted
            if first_step:
                return
            first_step.append(confirmed)
            broker.stop()
            # same port: the producer reconnects to a fresh broker that never heard of its producer id
            restarted = EmbeddedBroker(port=broker.port, log_path=tmp_path / "broker2.log").start()
            create_topics(settings)

        started = time.monotonic()
        with pytest.raises(ProduceError) as raised:
            produce(small_city(), settings, progress=restart_after_the_first_step)
        error = raised.value
        assert first_step and first_step[0] > 0
        assert error.refused > 0 and error.confirmed == first_step[0]
        assert error.attempted == error.confirmed + error.refused
        assert f"refused {error.refused} of {error.attempted} messages" in str(error)
        assert "UnknownProducerIdError" in error.first_error or "InitProducerIdResponse" in error.first_error
        assert time.monotonic() - started < 60
    finally:
        broker.stop()
        if restarted is not None:
            restarted.stop()


def test_a_broker_gone_before_a_flush_is_a_produce_error(tmp_path):
    broker = EmbeddedBroker(port=0, log_path=tmp_path / "broker.log").start()
    try:
        settings = own_broker_settings(broker)
        # short timeouts so the refusal comes in seconds, not after the 2-minute default
        producer = make_producer(settings.bootstrap, delivery_timeout_ms=3000, request_timeout_ms=1000,
                                 max_block_ms=3000, reconnect_backoff_max_ms=200)
        stopped = []

        def stop_after_the_first_step(_when, _confirmed):
            if not stopped:
                broker.stop()
                stopped.append(1)

        try:
            with pytest.raises(ProduceError) as raised:
                produce(small_city(), settings, progress=stop_after_the_first_step, producer=producer)
        finally:
            close_producer(producer, timeout_s=1)
        assert stopped and raised.value.refused > 0 and raised.value.confirmed > 0
        assert "KafkaTimeoutError" in raised.value.first_error and "ms has passed" in raised.value.first_error
    finally:
        broker.stop()


def test_glasscity_simulate_exits_1_with_one_line_when_its_broker_restarts(tmp_path):
    broker = EmbeddedBroker(port=0, log_path=tmp_path / "broker.log").start()
    restarted = None
    process = None
    try:
        settings = own_broker_settings(broker, prefix="cli")
        process = subprocess.Popen(
            [sys.executable, "-m", "streams", "simulate", "--households", "60", "--households-per-gateway", "10",
             "--days", "1.5", "--hour-seconds", "0.25", "--no-use", "1", "--meter-silent", "1",
             "--gateway-outage", "1", "--malformed", "5", "--domains", "water",
             "--ground-truth", str(tmp_path / "truth.json"), "--bootstrap", settings.bootstrap,
             "--topic-prefix", settings.topic_prefix],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.0)   # a few paced city-hours are out (36 city-hours take 9 s)
        assert process.poll() is None, process.communicate()
        broker.stop()
        restarted = EmbeddedBroker(port=broker.port, log_path=tmp_path / "broker2.log").start()
        create_topics(settings)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 1, (out, err)
        assert "produced" not in out
        assert err.startswith("glasscity simulate: the broker refused ") and len(err.strip().splitlines()) == 1, err
    finally:
        if process is not None and process.poll() is None:
            stop_process(process)
        broker.stop()
        if restarted is not None:
            restarted.stop()
