"""`glasscity doctor` against the real broker, a broker without topics, and a web server posing as one."""

import http.server
import os
import secrets
import subprocess
import sys
import threading

import pytest

from streams.broker import free_port
from streams.metrics import serve


def doctor(*args, key: str | None = None, timeout: float = 60):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLASSCITY_")}
    if key is not None:
        env["GLASSCITY_PSEUDONYM_KEY"] = key
    result = subprocess.run([sys.executable, "-m", "streams", "doctor", "--timeout", "2", *args],
                            capture_output=True, text=True, timeout=timeout, env=env)
    lines = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition(" ")
        lines.setdefault(rest.strip().split(":")[0], []).append((status, line))
    return result, lines


def statuses(lines, check):
    return [status for status, _line in lines[check]]


@pytest.fixture
def real_key():
    return secrets.token_hex(24)


def test_all_ok_against_the_real_broker_with_its_topics(broker_settings, real_key):
    result, lines = doctor("--bootstrap", broker_settings.bootstrap, "--topic-prefix", broker_settings.topic_prefix,
                           "--metrics-port", str(free_port()), "--metrics-host", "127.0.0.1",
                           "--page-port", str(free_port()), "--page-host", "127.0.0.1", key=real_key)
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("settings", "broker tcp", "broker kafka", "topics", "pseudonym key", "metrics port", "page port"):
        assert statuses(lines, check) == ["ok"], (check, result.stdout)
    assert "is a Kafka broker (ApiVersions" in result.stdout
    assert real_key not in result.stdout + result.stderr
    assert list(lines) == ["settings", "broker tcp", "broker kafka", "topics", "pseudonym key", "metrics port",
                           "page port"]


def test_missing_topics_and_a_wrong_partition_count_fail_with_the_fix(broker, real_key):
    from streams.config import settings_from
    from streams.topics import create_topics

    prefix = "doctor" + secrets.token_hex(4)
    result, lines = doctor("--bootstrap", broker.bootstrap, "--topic-prefix", prefix, "--metrics-port", "0",
                           key=real_key)
    assert result.returncode == 1
    assert statuses(lines, "topics") == ["FAIL"]
    assert "22 of 22 missing" in result.stdout and "glasscity topics create" in result.stdout

    # topics made with 2 partitions, checked against the default 4: the doctor names the difference
    create_topics(settings_from(environ={}, bootstrap=broker.bootstrap, topic_prefix=prefix, partitions=2,
                                domains="water"))
    result, lines = doctor("--bootstrap", broker.bootstrap, "--topic-prefix", prefix, "--metrics-port", "0",
                           "--domains", "water", key=real_key)
    assert result.returncode == 1
    assert f"{prefix}.water.readings.v1 has 2 (expected 4)" in result.stdout
    assert "missing" not in result.stdout     # they all exist now
    # the doctor only reads: the check above created nothing
    result, lines = doctor("--bootstrap", broker.bootstrap, "--topic-prefix", prefix, "--metrics-port", "0",
                           "--domains", "water", "--partitions", "2", key=real_key)
    assert result.returncode == 0, result.stdout


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args):
        pass


@pytest.fixture
def web_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_web_server_is_not_a_kafka_broker_and_its_port_not_ours(web_server, real_key):
    result, lines = doctor("--bootstrap", f"127.0.0.1:{web_server}", "--metrics-host", "127.0.0.1",
                           "--metrics-port", str(web_server), "--page-host", "127.0.0.1", "--page-port", str(web_server),
                           key=real_key)
    assert result.returncode == 1
    assert statuses(lines, "broker tcp") == ["ok"]
    assert statuses(lines, "broker kafka") == ["FAIL"]
    assert "is not a Kafka broker" in result.stdout
    assert statuses(lines, "metrics port") == ["FAIL"] and "does not serve glasscity /metrics" in result.stdout
    assert statuses(lines, "page port") == ["warn"] and "would run without its control-room page" in result.stdout
    assert "Traceback" not in result.stderr


def test_nothing_listening_placeholder_key_and_a_port_serving_glasscity_metrics(real_key):
    closed = free_port()
    server, metrics_port = serve("127.0.0.1", 0)    # this process serves glasscity_* metrics now
    try:
        result, lines = doctor("--bootstrap", f"127.0.0.1:{closed}", "--metrics-host", "127.0.0.1",
                               "--metrics-port", str(metrics_port), key="changeme-changeme-changeme")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1
    assert statuses(lines, "broker tcp") == ["FAIL"] and f"glasscity broker --port {closed}" in result.stdout
    assert statuses(lines, "pseudonym key") == ["FAIL"] and "placeholder" in result.stdout
    assert "changeme-changeme-changeme" not in result.stdout
    assert statuses(lines, "metrics port") == ["ok"] and "already serves glasscity /metrics" in result.stdout


def test_no_key_and_invalid_settings():
    result, lines = doctor("--bootstrap", "127.0.0.1:1", "--metrics-port", "0")
    assert statuses(lines, "pseudonym key") == ["FAIL"] and "not set" in result.stdout
    result, lines = doctor("--batch-within", "-1")
    assert result.returncode == 1 and statuses(lines, "settings") == ["FAIL"]
    assert "--batch-within / GLASSCITY_BATCH_WITHIN: must be > 0" in result.stdout
