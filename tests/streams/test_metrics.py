"""The worker's HTTP endpoints on a real socket: /metrics, /healthz, /readyz."""

import socket
import urllib.error
import urllib.request

import orjson
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from streams import metrics
from streams.health import Liveness, Readiness


@pytest.fixture
def endpoint():
    """A server on a free port with its own readiness and liveness; yields (base url, readiness, clock)."""
    now = [1000.0]
    readiness, liveness = Readiness(), Liveness(stale_after_s=30.0, clock=lambda: now[0])
    server, port = metrics.serve("127.0.0.1", 0, readiness=readiness, liveness=liveness)
    try:
        yield f"http://127.0.0.1:{port}", readiness, liveness, now
    finally:
        server.shutdown()
        server.server_close()


def get(url, method="GET"):
    """(status, content type, body) — also for 4xx/5xx answers."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_metrics_serves_the_default_registry_in_prometheus_format(endpoint):
    base, *_ = endpoint
    metrics.init_series(["water"])
    metrics.LATE_READINGS.labels("water").inc(3)
    status, content_type, body = get(base + "/metrics")
    assert status == 200 and content_type == CONTENT_TYPE_LATEST
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(body.decode()) for s in family.samples}
    assert samples[("glasscity_late_readings_total", (("domain", "water"),))] >= 3
    # initialised at zero before any event, with bounded labels only
    for kind in metrics.PUBLISH_KINDS:
        assert (("glasscity_publish_failures_total", (("domain", "water"), ("kind", kind)))) in samples
    for name in ("glasscity_state_restored_records_total", "glasscity_partitions_assigned",
                 "glasscity_state_restore_duration_seconds_count"):
        assert (name, (("domain", "water"),)) in samples, name
    assert ("glasscity_rebalances_total", ()) in samples


def test_healthz_is_ok_while_the_loop_beats_and_503_when_it_goes_silent(endpoint):
    base, _, liveness, now = endpoint
    status, _, body = get(base + "/healthz")
    assert (status, body) == (503, b"event loop not started\n")
    liveness.beat()
    assert get(base + "/healthz")[::2] == (200, b"ok\n")
    now[0] += 45.0
    assert get(base + "/healthz")[::2] == (503, b"event loop silent for 45 s\n")


def test_readyz_says_what_is_missing_until_partitions_are_restored(endpoint):
    base, readiness, *_ = endpoint
    status, content_type, body = get(base + "/readyz")
    assert (status, content_type) == (503, "application/json")
    assert orjson.loads(body) == {"ready": False, "missing": ["no partition assignment yet"], "domains": {}}
    readiness.assigned("water", {0, 1})
    readiness.restored("water", 0)
    status, _, body = get(base + "/readyz")
    assert status == 503 and orjson.loads(body)["missing"] == ["water: state of partition(s) 1 not restored yet"]
    readiness.restored("water", 1)
    status, _, body = get(base + "/readyz")
    assert status == 200 and orjson.loads(body)["ready"] is True


def test_head_unknown_paths_and_query_strings(endpoint):
    base, _, liveness, _ = endpoint
    liveness.beat()
    assert get(base + "/healthz", method="HEAD")[::2] == (200, b"")
    assert get(base + "/nothing-here")[0] == 404
    assert get(base + "/metrics?name[]=glasscity_rebalances_total")[0] == 200


def test_a_stuck_client_does_not_block_the_others(endpoint):
    base, _, liveness, _ = endpoint
    liveness.beat()
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as stuck:
        stuck.sendall(b"GET /metrics HTTP/1.1\r\n")   # and never finishes its request
        assert get(base + "/healthz")[0] == 200


def test_a_taken_port_is_an_os_error():
    server, port = metrics.serve("127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            metrics.serve("127.0.0.1", port)
    finally:
        server.shutdown()
        server.server_close()
