"""Run one worker process: warm kernels, serve /metrics, run the Faust app."""

from __future__ import annotations

import logging
import sys
import time

from streams.config import Settings, SettingsError

__all__ = ["run_worker"]

log = logging.getLogger("glasscity.worker")


def _unreachable(bootstrap: str, timeout_s: float) -> str | None:
    """The bootstrap list if none of its servers accepts a TCP connection, else None."""
    from streams.broker import BrokerError, wait_for_port

    deadline = time.monotonic() + timeout_s
    while True:
        for server in bootstrap.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                wait_for_port(host or "127.0.0.1", int(port), timeout_s=0.5)
                return None
            except (BrokerError, ValueError):
                pass
        if time.monotonic() > deadline:
            return bootstrap


def run_worker(settings: Settings) -> int:
    import kernels
    from faust.worker import Worker

    from streams import metrics
    from streams.app import create_app
    from streams.detectors import REGISTRY
    from streams.detectors.thresholds import load_thresholds
    from streams.domains import select_domains
    from streams.pipeline import DomainPipeline
    from streams.pseudonym import Pseudonymizer

    try:
        key = settings.require_pseudonym_key()
        domains = select_domains(settings.domains)
        thresholds = load_thresholds(settings.thresholds_file, REGISTRY)
    except SettingsError as error:
        print(f"glasscity worker: {error}", file=sys.stderr)
        return 2
    unreachable = _unreachable(settings.bootstrap, timeout_s=10.0)
    if unreachable:
        print(f"glasscity worker: no Kafka broker answers at {unreachable} (tried for 10 s); start one with "
              f"`glasscity broker` or set --bootstrap / GLASSCITY_BOOTSTRAP", file=sys.stderr)
        return 1
    kernels.warm_up()
    pseudonymizer = Pseudonymizer(key)
    pipelines = [DomainPipeline(domain, settings, pseudonymizer, thresholds) for domain in domains]
    app = create_app(settings, pipelines)
    try:
        _server, port = metrics.serve(settings.metrics_host, settings.metrics_port)
    except OSError as error:
        print(f"glasscity worker: cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: "
              f"{error}", file=sys.stderr)
        return 1
    topics = ", ".join(settings.topic(d.topic("readings")) for d in domains)
    print(f"glasscity worker: metrics on http://{settings.metrics_host}:{port}/metrics; consuming "
          f"{topics} from {settings.bootstrap}", flush=True)
    worker = Worker(app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
    return 0
