"""A real worker process against a real broker: health endpoints, bounded shutdown, broker loss.

Tests that kill the broker start their own; the session broker is shared and must live.
"""

import json
import signal
import time
import urllib.error
import urllib.request
import uuid

import pytest

from streams.broker import EmbeddedBroker, free_port, stop_process
from streams.config import settings_from
from streams.demo import start_worker
from streams.topics import create_topics
from streams.worker import EXIT_BROKER_UNREACHABLE, EXIT_OK, EXIT_SHUTDOWN_CUT_SHORT
from tests.conftest import TEST_KEY

JOIN_TIMEOUT_S = 40.0
# The log may say what happened, not repeat it: without the repeat filter a dead broker gave ~70 lines/s.
MAX_LINES_AFTER_BROKER_DIED = 50
WATCHDOG_LINE = "glasscity worker: shutdown did not finish within"


def settings_for(bootstrap):
    unique = uuid.uuid4().hex[:10]
    settings = settings_from(environ={}, bootstrap=bootstrap, topic_prefix=f"t{unique}", app_id=f"test-{unique}",
                             partitions=4, rebalance_timeout_s=4.0, pseudonym_key=TEST_KEY,
                             metrics_host="127.0.0.1", metrics_port=free_port(), log_level="info")
    create_topics(settings)
    return settings


@pytest.fixture
def own_broker(tmp_path):
    """A broker this test may kill."""
    broker = EmbeddedBroker(port=0, log_path=tmp_path / "broker.log")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def workers():
    """Starts workers; whatever happens, none outlives the test."""
    started = []

    def start(settings, log_path, **env):
        process = start_worker(settings, log_path, extra_env={k: str(v) for k, v in env.items()})
        started.append(process)
        return process

    yield start
    for process in started:
        stop_process(process, grace_s=2.0)


def get(port, path):
    """(status, body) of the worker's endpoint; raises OSError while nothing listens."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for_http(process, port, timeout_s=JOIN_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the worker exited with {process.returncode} during start-up"
        try:
            return get(port, "/healthz")
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the worker's HTTP endpoints did not answer within {timeout_s:.0f} s")


def wait_until_joined(process, log_path, timeout_s=JOIN_TIMEOUT_S):
    """Until Faust reports the group joined and its partitions resumed ("Worker ready")."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the worker exited with {process.returncode}: {tail(log_path)}"
        if "Worker ready" in log_path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"the worker did not join within {timeout_s:.0f} s: {tail(log_path)}")


def tail(log_path, chars=3000):
    return log_path.read_text(errors="replace")[-chars:]


def line_count(log_path):
    return len(log_path.read_text(errors="replace").splitlines())


def kill_broker(broker):
    broker.process.kill()   # a crash, not a polite stop
    broker.process.wait(5)


def wait_exit(process, timeout_s):
    """(return code, seconds it took); the worker is killed if it overstays."""
    started = time.monotonic()
    try:
        code = process.wait(timeout_s)
    except Exception:
        process.kill()
        process.wait(5)
        raise AssertionError(f"the worker was still running {timeout_s:.0f} s later") from None
    return code, time.monotonic() - started


def test_healthz_at_once_and_readyz_once_partitions_are_restored(broker_settings, workers, tmp_path):
    # /readyz reaches 200 only when streams.app reports assignments and restores to health.READINESS.
    log_path = tmp_path / "worker.log"
    process = workers(broker_settings, log_path)
    port = broker_settings.metrics_port
    assert wait_for_http(process, port) == (200, b"ok\n")
    status, body = get(port, "/readyz")
    assert status == 503, body   # the group join takes about 2 s after the endpoints come up
    missing = json.loads(body)["missing"]
    assert missing and all("no partition assignment yet" in m for m in missing), missing
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while time.monotonic() < deadline and status != 200:
        time.sleep(0.2)
        status, body = get(port, "/readyz")
    assert status == 200, f"/readyz still {status} {body!r}; log: {tail(log_path)}"
    state = json.loads(body)
    assert state["ready"] is True and state["missing"] == []
    # the only worker of its group owns every partition of every domain, all restored
    assert set(state["domains"]) == {"water", "traffic", "waste", "lighting"}
    for domain, partitions in state["domains"].items():
        assert partitions == {"assigned": [0, 1, 2, 3], "restoring": []}, domain
    assert get(port, "/healthz") == (200, b"ok\n")


def test_sigterm_with_a_healthy_broker_exits_cleanly_within_the_bound(broker_settings, workers, tmp_path):
    log_path = tmp_path / "worker.log"
    shutdown_timeout_s = 10.0
    process = workers(broker_settings, log_path, GLASSCITY_SHUTDOWN_TIMEOUT=shutdown_timeout_s)
    wait_until_joined(process, log_path)
    process.send_signal(signal.SIGTERM)
    code, took_s = wait_exit(process, shutdown_timeout_s + 2.0)
    assert code == EXIT_OK, tail(log_path)
    assert WATCHDOG_LINE not in log_path.read_text()
    print(f"clean shutdown took {took_s:.2f} s")


def test_sigterm_after_the_broker_died_is_bounded_and_the_log_stays_short(own_broker, workers, tmp_path):
    log_path = tmp_path / "worker.log"
    shutdown_timeout_s = 6.0
    process = workers(settings_for(own_broker.bootstrap), log_path, GLASSCITY_SHUTDOWN_TIMEOUT=shutdown_timeout_s)
    wait_until_joined(process, log_path)
    before = line_count(log_path)
    kill_broker(own_broker)
    time.sleep(3.0)   # the reconnect storm is under way
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    code, took_s = wait_exit(process, shutdown_timeout_s + 2.0)
    # Faust's flush and commit wait for a broker that never returns: the watchdog ends it.
    assert code == EXIT_SHUTDOWN_CUT_SHORT, tail(log_path)
    text = log_path.read_text(errors="replace")
    assert text.count(WATCHDOG_LINE) == 1
    after = line_count(log_path) - before
    assert after < MAX_LINES_AFTER_BROKER_DIED, "\n".join(text.splitlines()[before:])
    print(f"exit {code} {took_s:.2f} s after SIGTERM; {after} log lines since the broker died")


def test_a_broker_gone_for_good_ends_the_worker_with_code_3_and_one_line(own_broker, workers, tmp_path):
    log_path = tmp_path / "worker.log"
    give_up_s = 8.0
    process = workers(settings_for(own_broker.bootstrap), log_path, GLASSCITY_BROKER_UNREACHABLE_EXIT=give_up_s)
    wait_until_joined(process, log_path)
    before = line_count(log_path)
    kill_broker(own_broker)
    died = time.monotonic()
    code, _ = wait_exit(process, give_up_s + 10.0)
    took_s = time.monotonic() - died
    assert code == EXIT_BROKER_UNREACHABLE, tail(log_path)
    assert give_up_s <= took_s < give_up_s + 3.0
    text = log_path.read_text(errors="replace")
    expected = (f"glasscity worker: no Kafka broker answered at {own_broker.bootstrap} for {give_up_s:g} s; "
                f"exiting with code {EXIT_BROKER_UNREACHABLE}")
    assert text.splitlines().count(expected) == 1, tail(log_path)
    after = line_count(log_path) - before
    assert after < MAX_LINES_AFTER_BROKER_DIED, "\n".join(text.splitlines()[before:])
    print(f"exit {code} {took_s:.2f} s after the broker died; {after} log lines since")


def test_a_second_signal_ends_the_shutdown_at_once(broker_settings, workers, tmp_path):
    log_path = tmp_path / "worker.log"
    process = workers(broker_settings, log_path, GLASSCITY_SHUTDOWN_TIMEOUT=30)
    wait_until_joined(process, log_path)
    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)   # apart, or the kernel merges the two pending signals into one
    process.send_signal(signal.SIGINT)
    code, _ = wait_exit(process, 2.0)
    assert code == EXIT_SHUTDOWN_CUT_SHORT, tail(log_path)
    assert "glasscity worker: second SIGINT; exiting with code 4" in log_path.read_text()
