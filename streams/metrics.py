"""Prometheus metrics of the pipeline (prometheus-client, default registry), and the
worker's small HTTP server: ``/metrics``, ``/healthz``, ``/readyz``.

Conventions: ``glasscity_`` prefix, base units (seconds), ``_total`` counters
(prometheus-client appends the suffix to a Counter's name), bounded labels only —
domain, reason, detector, state, kernel, kind, stage, age, register, and partition (at most the
readings topic's partition count, ``--partitions``); never a meter, gateway or sensor id.

Every labelled series with a known set of label values is created at zero by
:func:`init_series` (:func:`known_label_sets` says which), so ``rate()``, ``increase()`` and
alerting rules see a series before its first event. Per-partition series are created when the
partition is assigned and removed when it is revoked (:func:`partitions_assigned`).

Endpoints (see :func:`serve`):

* ``/metrics`` — the default registry in the Prometheus text format.
* ``/healthz`` — 200 ``ok`` while the worker's event loop beats (:class:`streams.health.Liveness`),
  else 503. For liveness probes: restart the process when it fails.
* ``/readyz`` — 200 once every assigned partition's state is restored
  (:class:`streams.health.Readiness`), else 503; the JSON body says what is missing.
  For rolling restarts: start the next worker once this one is ready.
"""

from __future__ import annotations

import platform
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from streams.health import LIVENESS, READINESS, Liveness, Readiness

__all__ = ["READINGS", "MESSAGES", "INVALID", "ALERTS", "KERNEL_SECONDS", "WATERMARK_LAG", "SUBJECTS_TRACKED",
           "STATE_RESTORED_RECORDS", "STATE_RESTORE_SECONDS", "PARTITIONS_ASSIGNED", "REBALANCES",
           "PUBLISH_FAILURES", "PUBLISH_KINDS", "LATE_READINGS", "ALERTS_OPEN", "INTERVENTION_DELAY",
           "LIGHTING_ENERGY", "LIGHTING_ENERGY_KINDS", "CONSUMER_LAG", "PARTITION_WATERMARK_LAG",
           "PROCESSING_ERRORS", "PROCESSING_STAGES", "BATCH_SIZE", "PRODUCE_TO_ALERT", "BUILD_INFO",
           "CONSENT_RECORDS", "CONSENT_MALFORMED", "HOUSEHOLDS_ENROLLED", "ALERT_STATES", "installed_version",
           "known_label_sets", "init_series", "partitions_assigned", "consumer_lag", "serve"]

READINGS = Counter("glasscity_readings_consumed", "Valid readings consumed.", ["domain"])
MESSAGES = Counter("glasscity_messages_consumed", "Kafka messages consumed (single readings or envelopes).",
                   ["domain"])
INVALID = Counter("glasscity_invalid", "Invalid items routed to the dead-letter topic, by reason.",
                  ["domain", "reason"])
ALERTS = Counter("glasscity_alerts", "Alert events emitted, by detector and state (raised, cleared).",
                 ["domain", "detector", "state"])
KERNEL_SECONDS = Histogram("glasscity_kernel_batch_duration_seconds",
                           "Wall time of one kernel over a batch: all its calls for the batch's readings and sweeps (seconds).", ["kernel"],
                           buckets=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0))
WATERMARK_LAG = Gauge("glasscity_watermark_lag_seconds",
                      "Wall clock minus the newest partition event-time watermark (seconds).", ["domain"])
SUBJECTS_TRACKED = Gauge("glasscity_subjects_tracked", "Subjects (meters, detectors, bins, lamps) held in this "
                         "worker's state.", ["domain"])

# -- recovery and delivery ------------------------------------------------------------------
STATE_RESTORED_RECORDS = Counter("glasscity_state_restored_records",
                                 "State records read back while restoring assigned partitions.", ["domain"])
STATE_RESTORE_SECONDS = Histogram("glasscity_state_restore_duration_seconds",
                                  "Wall time to restore one assigned partition's state (seconds).", ["domain"],
                                  buckets=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0))
PARTITIONS_ASSIGNED = Gauge("glasscity_partitions_assigned",
                            "Partitions of the domain's readings topic assigned to this worker.", ["domain"])
# No domain label: one consumer serves every domain of a worker, so a rebalance is one event for all of them.
REBALANCES = Counter("glasscity_rebalances", "Consumer group rebalances this worker took part in.")
PUBLISH_KINDS = ("alert", "dead_letter", "late", "state")
PUBLISH_FAILURES = Counter("glasscity_publish_failures",
                           "Records the worker failed to publish, by kind (alert, dead_letter, state).",
                           ["domain", "kind"])
LATE_READINGS = Counter("glasscity_late_readings",
                        "Valid readings older than their partition's event-time watermark.", ["domain"])

# -- per partition and per batch (the partition label is bounded by the readings topic's partition count) --
CONSUMER_LAG = Gauge("glasscity_consumer_lag_messages",
                     "Records of an assigned readings partition not yet processed: the partition's end offset "
                     "minus the next offset to process (messages; 0 when the broker reports an end offset behind "
                     "the position). Partition label: 0 .. partitions-1 of the domain's readings topic.",
                     ["domain", "partition"])
PARTITION_WATERMARK_LAG = Gauge("glasscity_partition_watermark_lag_seconds",
                                "Wall clock minus an assigned partition's event-time watermark (seconds). Partition "
                                "label: 0 .. partitions-1 of the domain's readings topic.", ["domain", "partition"])
#: Where the worker catches an exception while processing (each stops the worker, exit 5, right after
#: counting it): ``batch`` = folding a batch of readings in, ``idle_sweep`` = moving an idle partition's
#: watermark on the timer, ``restore`` = rebuilding a partition's state from its changelog.
PROCESSING_STAGES = ("batch", "idle_sweep", "restore")
PROCESSING_ERRORS = Counter("glasscity_processing_errors",
                            "Exceptions caught while processing, by stage (batch, idle_sweep, restore).",
                            ["domain", "stage"])
BATCH_SIZE = Histogram("glasscity_batch_size_readings", "Valid readings per processed batch (readings).", ["domain"],
                       buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10_000, 50_000))
PRODUCE_TO_ALERT = Histogram("glasscity_produce_to_alert_seconds",
                             "Kafka record timestamp of the oldest record of the batch that raised or cleared an "
                             "alert, to the wall time the alert's publication was confirmed (seconds; one "
                             "observation per alert).", ["domain"],
                             buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0))
#: Alert states a detector's transition has (``streams.detectors.base.Transition.state``).
ALERT_STATES = ("raised", "cleared")


# -- consent registers (no domain: one register serves every domain) ----------------------------
CONSENT_RECORDS = Counter("glasscity_consent_records", "Consent-register records folded in, by register "
                          "(enrolment, absence, objection).", ["register"])
CONSENT_MALFORMED = Counter("glasscity_consent_malformed", "Consent-register records ignored as unreadable, by "
                            "register (each is logged with its key).", ["register"])
HOUSEHOLDS_ENROLLED = Gauge("glasscity_households_enrolled", "Households enrolled in the welfare check.")

# -- control-room KPIs, from the alert feed (streams.control): every worker serving the page reads the
# whole feed, so these describe the city, not the worker; dashboards take max over instances.
ALERTS_OPEN = Gauge("glasscity_alerts_open", "Alerts raised and not yet cleared, by domain and age band "
                    "(streams.control.book.AGE_BANDS).", ["domain", "age"])
INTERVENTION_DELAY = Histogram("glasscity_alert_intervention_delay_seconds",
                               "Event time from an alert's raise to its clear, per detector (seconds).", ["detector"],
                               buckets=(60.0, 300.0, 900.0, 3600.0, 3 * 3600.0, 6 * 3600.0, 12 * 3600.0, 86400.0,
                                        2 * 86400.0, 7 * 86400.0))
# Street-lighting energy: what the lamps drew (their reported power, integrated over the night) and what the
# same lamps would have drawn at full power from dusk to dawn (astronomical schedule). The saving is
# 1 - used / full_power_night; both counters only ever grow, so the ratio of their rates is the saving now.
LIGHTING_ENERGY_KINDS = ("used", "full_power_night")
LIGHTING_ENERGY = Counter("glasscity_lighting_energy_joules", "Street-lighting energy by kind: used (reported "
                          "power over time) and full_power_night (the same lamps at rated power all night) (joules).",
                          ["kind"])


def init_series(domains) -> None:
    """Create every labelled series of :func:`known_label_sets` at zero, so rate() and alerting rules
    see them before the first event (a series that appears only on its first increment hides that
    increment)."""
    for metric, label_sets in known_label_sets(domains).items():
        for labels in label_sets:
            metric.labels(*labels)


def _detector_names(domain) -> list[str]:
    """Names of the detectors that may alert in ``domain``: its own (active or dormant) and the feed watch."""
    from streams.detectors.feed.stalled import declaration_for

    return [cls.declaration.name for cls in domain.detectors] + [declaration_for(domain.name).name]


def _kernel_names(domain) -> list[str]:
    """The ``kernel`` label values of ``domain`` (as :class:`streams.pipeline.DomainPipeline` times them)."""
    names = [cls.declaration.name for cls in domain.detectors]
    if domain.tracker is not None:
        names.append(f"{domain.name}.tracker")
    if domain.kpi is not None:
        names.append(f"{domain.name}.kpi")
    return names


def known_label_sets(domains) -> dict:
    """Metric -> the label-value tuples (in the metric's label order) known before any event, for a worker
    serving ``domains`` (names). Per-partition metrics are not here: their partitions are known on
    assignment (:func:`partitions_assigned`)."""
    from streams.consent import REGISTER_TOPICS
    from streams.control.book import AGE_BANDS
    from streams.domains import DOMAINS
    from streams.ingest.dead_letter import DEAD_LETTER_REASONS

    served = [DOMAINS[name] for name in domains]
    names = [d.name for d in served]
    per_domain = [(name,) for name in names]
    sets = {metric: per_domain for metric in (READINGS, MESSAGES, WATERMARK_LAG, SUBJECTS_TRACKED,
                                              STATE_RESTORED_RECORDS, STATE_RESTORE_SECONDS, PARTITIONS_ASSIGNED,
                                              LATE_READINGS, BATCH_SIZE, PRODUCE_TO_ALERT)}
    sets[INVALID] = [(name, reason) for name in names for reason in DEAD_LETTER_REASONS]
    sets[ALERTS] = [(d.name, detector, state) for d in served for detector in _detector_names(d)
                    for state in ALERT_STATES]
    sets[KERNEL_SECONDS] = [(kernel,) for d in served for kernel in _kernel_names(d)]
    sets[PUBLISH_FAILURES] = [(name, kind) for name in names for kind in PUBLISH_KINDS]
    sets[PROCESSING_ERRORS] = [(name, stage) for name in names for stage in PROCESSING_STAGES]
    sets[CONSENT_RECORDS] = sets[CONSENT_MALFORMED] = [(register,) for register in REGISTER_TOPICS]
    sets[ALERTS_OPEN] = [(name, band) for name in names for _bound, band in AGE_BANDS]
    sets[INTERVENTION_DELAY] = [(detector,) for detector in dict.fromkeys(
        name for d in served for name in _detector_names(d))]
    sets[LIGHTING_ENERGY] = [(kind,) for kind in LIGHTING_ENERGY_KINDS] if "lighting" in names else []
    return sets


_REPORTED_PARTITIONS: dict[str, set[int]] = {}    # domain -> partitions with per-partition series


def partitions_assigned(domain: str, partitions) -> None:
    """The per-partition series of ``domain`` follow its assignment: created (at zero) for the
    ``partitions`` now assigned, removed for those assigned before and not any more (a revoked
    partition's lags are its new owner's to report)."""
    partitions = {int(p) for p in partitions}
    for partition in _REPORTED_PARTITIONS.get(domain, set()) - partitions:
        for metric in (CONSUMER_LAG, PARTITION_WATERMARK_LAG):
            try:
                metric.remove(domain, str(partition))
            except KeyError:     # never created (the metric was cleared meanwhile)
                pass
    for partition in partitions:
        CONSUMER_LAG.labels(domain, str(partition))
        PARTITION_WATERMARK_LAG.labels(domain, str(partition))
    _REPORTED_PARTITIONS[domain] = partitions
    PARTITIONS_ASSIGNED.labels(domain).set(len(partitions))


def consumer_lag(domain: str, partition: int, end_offset: int | None, position: int) -> None:
    """Set a partition's consumer lag from the broker's end offset (the next offset it will assign) and
    the position (the next offset to process); nothing when the end offset is unknown. A broker that
    reports an end offset behind the position (Tansu does) gives 0, not a negative lag."""
    if end_offset is not None and end_offset >= 0:
        CONSUMER_LAG.labels(domain, str(partition)).set(max(0, end_offset - position))


def installed_version(distribution: str) -> str:
    """The installed version of a Python distribution, or ``unknown`` (e.g. a never-installed source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


# Always 1: its labels say what runs (join on it to compare releases across workers).
BUILD_INFO = Gauge("glasscity_build_info", "The glasscity release, Python and Numba versions this process runs "
                   "(value always 1).", ["version", "python", "numba"])
BUILD_INFO.labels(installed_version("glasscity"), platform.python_version(), installed_version("numba")).set(1)


def _handler(readiness: Readiness, liveness: Liveness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "glasscity"

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, send_body: bool) -> None:
            path = urlsplit(self.path).path
            if path == "/metrics":
                status, content_type, body = 200, CONTENT_TYPE_LATEST, generate_latest()
            elif path == "/healthz":
                silent = liveness.silent_for_s()
                if liveness.alive():
                    status, body = 200, b"ok\n"
                elif silent is None:
                    status, body = 503, b"event loop not started\n"
                else:
                    status, body = 503, f"event loop silent for {silent:.0f} s\n".encode()
                content_type = "text/plain; charset=utf-8"
            elif path == "/readyz":
                state = readiness.status()
                status, content_type = (200 if state["ready"] else 503), "application/json"
                body = orjson.dumps(state) + b"\n"
            else:
                status, content_type = 404, "text/plain; charset=utf-8"
                body = b"not found: try /metrics, /healthz, /readyz\n"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def log_message(self, format, *args) -> None:
            pass   # a scrape every few seconds is not news; the worker's log stays for events

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True   # a slow or stuck client never holds the process back at exit


class _Server6(_Server):
    address_family = socket.AF_INET6


def serve(host: str, port: int, readiness: Readiness = READINESS, liveness: Liveness = LIVENESS):
    """Serve /metrics, /healthz and /readyz from a daemon thread; returns (server, actual port).

    ``port`` 0 picks a free port. Raises OSError when the address cannot be bound.
    Stop it with ``server.shutdown(); server.server_close()`` (the worker just exits).
    """
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    server_class = _Server6 if family == socket.AF_INET6 else _Server
    server = server_class((host, port), _handler(readiness, liveness))
    threading.Thread(target=server.serve_forever, name="glasscity-http", daemon=True).start()
    return server, server.server_address[1]
