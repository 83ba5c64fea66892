"""Single-reading messages through the fetch hand-off (streams.fetches): one reading per Kafka message, so
every batch is built from many records of whole fetches. The yardstick is the uninterrupted in-process
pipeline over the same city with Kafka's partitioning (tests/integration/faults.py)."""

from __future__ import annotations

import pytest

from streams.broker import stop_process
from streams.demo import AlertReader, metric_sum, start_worker, wait_until_consumed
from streams.domains import DOMAINS
from streams.simulate.produce import produce
from tests.integration.faults import (WATER_ONLY, Killer, episodes, log_tail, one_id_per_episode_and_state,
                                      reference_alerts, wait_for_alerts, wait_ready, water_city)


def single_reading_city(seed: int):
    return water_city(seed=seed, households=200, single_reading_share=1.0)


def test_single_reading_messages_give_exactly_the_in_process_alerts(broker_settings, tmp_path):
    settings = broker_settings
    simulation = single_reading_city(seed=31)
    expected = episodes(reference_alerts(DOMAINS["water"], simulation, settings))
    assert sum(1 for e in expected if e[3] == "raised") > 0
    reader = AlertReader(settings)
    reader.start()
    worker = start_worker(settings, tmp_path / "worker.log", extra_env=WATER_ONLY)
    try:
        sent = produce(simulation, settings)
        assert sent >= simulation.valid_readings     # one message per reading (plus the malformed items)
        samples = wait_until_consumed(worker, settings.metrics_port, simulation.valid_readings,
                                      len(simulation.malformed), timeout_s=240)
        got = wait_for_alerts(reader, expected, timeout_s=60)
    finally:
        reader.stop()
        code = stop_process(worker, grace_s=10.0)
    assert code is not None
    assert reader.error is None
    assert got == expected, (sorted(expected - got)[:5], sorted(got - expected)[:5], log_tail(tmp_path / "worker.log"))
    assert one_id_per_episode_and_state(reader.alerts)
    # every reading counted once: nothing lost, nothing processed twice in one uninterrupted run
    assert metric_sum(samples, "glasscity_readings_consumed_total") == simulation.valid_readings
    assert metric_sum(samples, "glasscity_invalid_total") == len(simulation.malformed)


@pytest.mark.slow
def test_kill_9_during_a_paced_single_message_run_loses_nothing(broker_settings, tmp_path):
    settings = broker_settings
    simulation = single_reading_city(seed=32)
    expected = episodes(reference_alerts(DOMAINS["water"], simulation, settings))
    reader = AlertReader(settings)
    reader.start()
    killer = Killer(settings, tmp_path / "worker.log", times=2, seed=32, env=WATER_ONLY)
    try:
        wait_ready(killer.worker, settings.metrics_port)
        killer.start()
        produce(simulation, settings, hour_seconds=0.25)
        killer.join(180)
        if killer.error:
            raise killer.error
        got = wait_for_alerts(reader, expected, timeout_s=90)
    finally:
        reader.stop()
        killer.stop()
    assert killer.kills == 2
    assert got == expected, (sorted(expected - got)[:5], sorted(got - expected)[:5], log_tail(tmp_path / "worker.log"))
    assert one_id_per_episode_and_state(reader.alerts)
