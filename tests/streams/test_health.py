"""Readiness and liveness: what /readyz and /healthz report."""

import threading

from streams.health import Liveness, Readiness


def test_not_ready_before_any_assignment():
    readiness = Readiness()
    assert not readiness.ready()
    assert readiness.status()["missing"] == ["no partition assignment yet"]


def test_ready_once_every_assigned_partition_is_restored():
    readiness = Readiness()
    readiness.assigned("water", {0, 1})
    assert not readiness.ready()
    readiness.restored("water", 0)
    status = readiness.status()
    assert not status["ready"]
    assert status["missing"] == ["water: state of partition(s) 1 not restored yet"]
    assert status["domains"]["water"] == {"assigned": [0, 1], "restoring": [1]}
    readiness.restored("water", 1)
    assert readiness.ready()
    assert readiness.status() == {"ready": True, "missing": [],
                                  "domains": {"water": {"assigned": [0, 1], "restoring": []}}}


def test_every_expected_domain_needs_an_assignment():
    readiness = Readiness()
    readiness.expect(["water", "traffic"])
    readiness.assigned("water", {0})
    readiness.restored("water", 0)
    assert not readiness.ready()
    assert readiness.status()["missing"] == ["traffic: no partition assignment yet"]
    readiness.assigned("traffic", set())   # more workers than partitions: nothing to restore
    assert readiness.ready()


def test_a_new_assignment_keeps_restored_partitions_and_waits_for_new_ones():
    readiness = Readiness()
    readiness.assigned("water", {0, 1})
    readiness.restored("water", 0)
    readiness.restored("water", 1)
    readiness.assigned("water", {1, 2})
    assert readiness.status()["domains"]["water"] == {"assigned": [1, 2], "restoring": [2]}
    assert not readiness.ready()
    readiness.restored("water", 2)
    assert readiness.ready()


def test_revocation_means_not_ready_until_reassigned():
    readiness = Readiness()
    readiness.assigned("water", {0, 1})
    readiness.restored("water", 0)
    readiness.restored("water", 1)
    readiness.revoked("water", {0, 1})
    assert not readiness.ready()
    assert readiness.status()["missing"] == ["water: rebalancing (partitions revoked, not yet reassigned)"]
    readiness.assigned("water", {0, 1})   # eager rebalance: revoked partitions come back un-restored
    assert not readiness.ready()
    readiness.restored("water", 0)
    readiness.restored("water", 1)
    assert readiness.ready()


def test_a_restore_finishing_after_its_partition_left_does_not_count():
    readiness = Readiness()
    readiness.assigned("water", {0, 1})
    readiness.revoked("water", {1})
    readiness.assigned("water", {0})
    readiness.restored("water", 1)   # late: partition 1 belongs to another worker now
    readiness.restored("lighting", 0)   # never assigned here
    assert readiness.status()["domains"] == {"water": {"assigned": [0], "restoring": [0]}}
    readiness.assigned("water", {0, 1})
    assert readiness.status()["domains"]["water"]["restoring"] == [0, 1]


def test_concurrent_readers_and_writers_see_consistent_states():
    readiness = Readiness()
    readiness.assigned("water", set(range(64)))
    errors = []

    def writer():
        for p in range(64):
            readiness.restored("water", p)

    def reader():
        for _ in range(2000):
            status = readiness.status()
            water = status["domains"]["water"]
            if status["ready"] != (water["restoring"] == []):
                errors.append(status)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and readiness.ready()


def test_liveness_follows_the_heartbeat():
    now = [100.0]
    liveness = Liveness(stale_after_s=30.0, clock=lambda: now[0])
    assert not liveness.alive() and liveness.silent_for_s() is None
    liveness.beat()
    now[0] += 29.0
    assert liveness.alive() and liveness.silent_for_s() == 29.0
    now[0] += 2.0
    assert not liveness.alive()
    liveness.beat()
    assert liveness.alive()
