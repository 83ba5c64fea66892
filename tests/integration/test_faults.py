"""Fault injection on the real broker with real worker processes: crashes, a rebalance, a broker
stall, a restart with new thresholds, duplicated and disordered input.

The yardstick is always the uninterrupted run: the same pipeline in-process over the same
simulated city with Kafka's own partitioning. Every alert event (id, detector, subject,
state, episode start, time) must be there and nothing else; re-emissions of the same id
are allowed (at-least-once delivery), a second id for the same episode and state never.
The runs themselves live in tests/integration/faults.py (the reliability benchmark runs
the same ones).
"""

from __future__ import annotations

import pytest

from tests.integration.faults import (log_tail, new_episode_per_silence, run_broker_stall, run_duplicates_and_disorder,
                                      run_kill_9, run_new_thresholds, run_rebalance)


def check(run, log_path=None):
    assert run.got == run.expected, (sorted(run.expected - run.got)[:5], sorted(run.got - run.expected)[:5],
                                     log_tail(log_path) if log_path else "")
    assert run.incidents_expected > 0 and run.incidents_alerted == run.incidents_expected
    assert run.row()["one_id_per_episode_and_state"]


@pytest.mark.slow
def test_five_kill_9_during_a_paced_run_lose_nothing(broker_settings, tmp_path):
    run = run_kill_9(broker_settings, tmp_path, kills=5)
    assert run.injected == 5
    welfare = {e for e in run.expected if e[1] == "water.no_use_24h" and e[3] == "raised"}
    assert len(welfare) == 5 and welfare <= run.got      # each at its uninterrupted city time
    check(run, tmp_path / "worker.log")
    assert new_episode_per_silence(run.alerts) == 0


@pytest.mark.slow
def test_two_workers_one_killed_the_survivor_takes_over_with_state(broker_settings, tmp_path):
    run = run_rebalance(broker_settings, tmp_path)
    check(run, tmp_path / "second.log")
    assert run.notes["survivor_restored_state"]


@pytest.mark.slow
def test_a_30_s_broker_stall_is_survived_without_a_restart(tmp_path):
    run = run_broker_stall(tmp_path, stall_s=30.0)
    check(run, tmp_path / "worker.log")
    assert run.notes["worker_never_restarted"]


@pytest.mark.slow
def test_restart_with_new_thresholds_keeps_state(broker_settings, tmp_path):
    run = run_new_thresholds(broker_settings, tmp_path)
    assert run.notes["thresholds_changed_alerts"], "the new thresholds must change something to prove anything"
    assert run.notes["first_exit_code"] == 0
    check(run, tmp_path / "worker.log")


@pytest.mark.slow
def test_duplicated_and_disordered_input_gives_the_clean_alert_ids(broker_settings, tmp_path):
    run = run_duplicates_and_disorder(broker_settings, tmp_path)
    assert {e[0] for e in run.got} == {e[0] for e in run.expected}
    check(run, tmp_path / "worker.log")
