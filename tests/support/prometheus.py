"""A real Prometheus server for tests.

    from tests.support.prometheus import PrometheusServer

    with PrometheusServer(["127.0.0.1:9464"]) as prom:
        prom.wait_for('glasscity_readings_consumed_total{domain="water"}',
                      lambda result: result and float(result[0]["value"][1]) >= 100)

The server is Debian's ``prometheus`` (installed on first use when running as root, see
:func:`ensure_prometheus`). It listens on a free loopback port, keeps its TSDB, config
and log in a temporary directory, scrapes the given ``host:port`` targets at
``/metrics`` every ``scrape_interval_s`` seconds (job ``glasscity``), and is stopped on
exit: SIGTERM, then SIGKILL after 10 s. On Linux it also dies with the test process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable

from tests.support.apt import MissingProgramError, ensure_binary

__all__ = ["ensure_prometheus", "PrometheusServer", "PrometheusError", "MissingProgramError"]

PROMETHEUS_BIN = "/usr/bin/prometheus"
STOP_GRACE_S = 10.0


class PrometheusError(RuntimeError):
    """The server did not start, or a query failed."""


def ensure_prometheus() -> str:
    """Path of the ``prometheus`` binary, installing Debian's package (as root) if missing."""
    return ensure_binary("prometheus", "prometheus", path=PROMETHEUS_BIN)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _duration(seconds: float) -> str:
    ms = max(1, int(round(seconds * 1000)))
    return f"{ms}ms"


def _die_with_parent() -> None:  # runs in the child between fork and exec (Linux only)
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


class PrometheusServer:
    """Context manager running a real Prometheus that scrapes ``targets`` (``host:port``)."""

    def __init__(self, targets: list[str], scrape_interval_s: float = 1.0, *,
                 metrics_path: str = "/metrics", job: str = "glasscity", ready_timeout_s: float = 60.0):
        if isinstance(targets, str):
            raise TypeError("targets is a list of 'host:port' strings")
        if scrape_interval_s <= 0:
            raise ValueError("scrape_interval_s must be > 0")
        self.targets = list(targets)
        self.scrape_interval_s = float(scrape_interval_s)
        self.metrics_path = metrics_path
        self.job = job
        self.ready_timeout_s = ready_timeout_s
        self.binary: str | None = None
        self.port: int | None = None
        self.url: str | None = None
        self.tmpdir: str | None = None
        self.proc: subprocess.Popen | None = None
        self._log = None

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> "PrometheusServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.binary = ensure_prometheus()
        self.tmpdir = tempfile.mkdtemp(prefix="prometheus-test-")
        config = os.path.join(self.tmpdir, "prometheus.yml")
        interval = _duration(self.scrape_interval_s)
        # JSON is valid YAML: no YAML library needed.
        with open(config, "w") as f:
            json.dump({
                "global": {"scrape_interval": interval, "scrape_timeout": interval,
                           "evaluation_interval": interval},
                "scrape_configs": [{
                    "job_name": self.job,
                    "metrics_path": self.metrics_path,
                    "static_configs": [{"targets": self.targets}],
                }],
            }, f, indent=2)
        try:
            last_error = None
            for _attempt in range(3):  # the free port may be taken between probe and bind
                try:
                    self._launch(config)
                    return
                except PrometheusError as e:
                    last_error = e
                    self._kill()
                    if "address already in use" not in str(e).lower():
                        break
            raise last_error
        except BaseException:
            self.stop()
            raise

    def _launch(self, config: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        tsdb = os.path.join(self.tmpdir, f"data-{self.port}")
        self._log_path = os.path.join(self.tmpdir, f"prometheus-{self.port}.log")
        self._log = open(self._log_path, "wb")
        cmd = [
            self.binary,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--storage.tsdb.path={tsdb}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=info",
            # Prometheus has no telemetry or update check; remote write, the admin API and
            # the lifecycle endpoints stay off (their defaults), so nothing leaves loopback.
        ]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=self.tmpdir, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            if self.proc.poll() is not None:
                raise PrometheusError(f"prometheus exited with code {self.proc.returncode} before it was "
                                      f"ready:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise PrometheusError(f"prometheus not ready after {self.ready_timeout_s:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_GRACE_S)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL after 10 s) and remove its directory."""
        try:
            self._kill()
        finally:
            if self.tmpdir is not None:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = None

    def log_tail(self, max_chars: int = 4000) -> str:
        try:
            with open(self._log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-max_chars:]
        except (OSError, AttributeError):
            return "<no log>"

    # -- HTTP API -------------------------------------------------------------------------
    def _api(self, path: str, params: dict[str, str], timeout_s: float = 10.0) -> Any:
        if self.url is None or self.proc is None:
            raise PrometheusError("server is not running")
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:  # 400/422 carry a JSON error body
            try:
                body = json.load(e)
            except ValueError:
                raise PrometheusError(f"GET {path} failed: HTTP {e.code}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"GET {path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str) -> list:
        """Instant query; returns ``data.result`` (for a vector: ``[{"metric": {...}, "value": [t, "v"]}]``)."""
        return self._api("/api/v1/query", {"query": promql})["result"]

    def value(self, promql: str) -> float | None:
        """The first sample's value as a float, or None when the result is empty."""
        result = self.query(promql)
        if not result:
            return None
        if isinstance(result[0], dict):
            return float(result[0]["value"][1])
        return float(result[1])  # scalar: [t, "v"]

    def targets_health(self) -> list[dict]:
        """Active targets as reported by /api/v1/targets (scrapeUrl, health, lastError, ...)."""
        return self._api("/api/v1/targets", {"state": "active"})["activeTargets"]

    def wait_for(self, promql: str, predicate: Callable[[list], bool], timeout_s: float = 30.0,
                 poll_s: float = 0.25) -> list:
        """Poll ``query(promql)`` until ``predicate(result)`` is true; return that result.

        Raises :class:`TimeoutError` with the last result (and the targets' health) if the
        predicate does not hold within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        last: Any = None
        last_error: Exception | None = None
        while True:
            try:
                last = self.query(promql)
                last_error = None
                if predicate(last):
                    return last
            except PrometheusError as e:
                last_error = e
            if time.monotonic() > deadline:
                try:
                    health = [(t.get("scrapeUrl"), t.get("health"), t.get("lastError"))
                              for t in self.targets_health()]
                except PrometheusError as e:
                    health = f"<unavailable: {e}>"
                raise TimeoutError(f"{promql!r}: predicate still false after {timeout_s} s; last result "
                                   f"{last!r}; last error {last_error!r}; targets {health}")
            time.sleep(poll_s)
