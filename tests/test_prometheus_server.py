"""The PrometheusServer test helper against a real Prometheus scraping a real exporter."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from tests.support.prometheus import PrometheusServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def exporter():
    registry = CollectorRegistry()
    counter = Counter("glasscity_selftest", "Self-test counter of the Prometheus test helper.",
                      registry=registry)
    port = _free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}", counter
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_prometheus_scrapes_and_answers_queries(exporter):
    target, counter = exporter
    counter.inc(7)
    with PrometheusServer([target], scrape_interval_s=0.5) as prom:
        result = prom.wait_for("glasscity_selftest_total", lambda r: bool(r), timeout_s=30)
        assert len(result) == 1
        sample = result[0]
        assert sample["metric"]["__name__"] == "glasscity_selftest_total"
        assert sample["metric"]["job"] == "glasscity"
        assert sample["metric"]["instance"] == target
        assert float(sample["value"][1]) == 7.0
        assert prom.value('up{job="glasscity"}') == 1.0
        proc = prom.proc
    assert proc.poll() is not None, "prometheus must be stopped when the context exits"
