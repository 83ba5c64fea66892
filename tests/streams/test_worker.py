"""The worker's bounds, without Faust: the shutdown watchdog and the broker watch."""

import logging
import socket
import threading
import time

import pytest

from streams.worker import (EXIT_BROKER_UNREACHABLE, EXIT_CODES, EXIT_SHUTDOWN_CUT_SHORT, BrokerWatch,
                            ShutdownWatchdog, _servers, broker_answers)


def test_exit_codes_are_distinct_and_documented():
    assert EXIT_BROKER_UNREACHABLE == 3 and EXIT_SHUTDOWN_CUT_SHORT == 4
    assert sorted(EXIT_CODES) == [0, 1, 2, 3, 4]


def test_watchdog_fires_once_after_the_timeout_from_the_first_arm():
    fired = []
    watchdog = ShutdownWatchdog(0.3, on_expiry=lambda: fired.append(time.monotonic()),
                                on_second_signal=lambda name: pytest.fail("no second signal was sent"))
    assert not watchdog.armed
    started = time.monotonic()
    assert watchdog.signal_received("SIGTERM") is True
    time.sleep(0.1)
    watchdog.arm()   # the shutdown path arms it again: the first deadline holds
    time.sleep(0.5)
    assert len(fired) == 1 and 0.25 <= fired[0] - started < 0.45


def test_a_second_signal_ends_at_once():
    seen = []
    watchdog = ShutdownWatchdog(60.0, on_expiry=lambda: seen.append("expired"),
                                on_second_signal=lambda name: seen.append(name))
    try:
        assert watchdog.signal_received("SIGTERM") is True
        assert watchdog.signal_received("SIGINT") is False
        assert seen == ["SIGINT"]
    finally:
        watchdog.cancel()


def test_arming_without_a_signal_leaves_the_first_signal_graceful():
    seen = []
    watchdog = ShutdownWatchdog(60.0, on_expiry=lambda: seen.append("expired"),
                                on_second_signal=lambda name: seen.append(name))
    try:
        watchdog.arm()                    # e.g. Faust stopping after a crash
        assert watchdog.signal_received("SIGTERM") is True and seen == []
    finally:
        watchdog.cancel()


def test_servers_are_parsed_from_the_bootstrap_list():
    assert _servers("a:1, b:2,[::1]:3,nonsense") == [("a", 1), ("b", 2), ("::1", 3)]


@pytest.fixture
def listening():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server


def test_broker_answers_is_a_tcp_connect(listening):
    port = listening.getsockname()[1]
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_port = unused.getsockname()[1]   # bound, not listening: connections are refused
        assert broker_answers(f"127.0.0.1:{dead_port},127.0.0.1:{port}")
        assert not broker_answers(f"127.0.0.1:{dead_port}")


def test_broker_watch_gives_up_only_after_the_broker_stayed_away(listening, caplog):
    port = listening.getsockname()[1]
    up = threading.Event()
    up.set()
    gave_up = []
    done = threading.Event()
    watch = BrokerWatch(f"127.0.0.1:{port}", give_up_after_s=0.6, probe_every_s=0.05,
                        probe=lambda bootstrap: up.is_set() and broker_answers(bootstrap),
                        on_give_up=lambda silent: (gave_up.append(silent), done.set()))
    with caplog.at_level(logging.WARNING, logger="glasscity.worker"):
        watch.start()
        try:
            time.sleep(0.3)
            up.clear()           # away for less than the limit ...
            time.sleep(0.3)
            up.set()             # ... and back: nothing happens
            time.sleep(0.3)
            assert gave_up == []
            up.clear()
            assert done.wait(3.0)
        finally:
            watch.stop()
            watch.join(2.0)
    assert not watch.is_alive()
    assert len(gave_up) == 1 and 0.6 <= gave_up[0] < 1.0
    messages = [r.getMessage() for r in caplog.records if r.name == "glasscity.worker"]
    assert sum("no Kafka broker answers" in m for m in messages) == 2   # once per outage, not per probe
    assert sum("answers again" in m for m in messages) == 1
