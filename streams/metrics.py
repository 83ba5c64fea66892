"""Prometheus metrics of the pipeline (prometheus-client, default registry).

Conventions: ``glasscity_`` prefix, base units (seconds), ``_total`` counters,
bounded labels only — domain, reason, detector, state, kernel; never a meter,
gateway or sensor id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

__all__ = ["READINGS", "MESSAGES", "INVALID", "ALERTS", "KERNEL_SECONDS", "WATERMARK_LAG", "SUBJECTS_TRACKED",
           "serve"]

READINGS = Counter("glasscity_readings_consumed", "Valid readings consumed.", ["domain"])
MESSAGES = Counter("glasscity_messages_consumed", "Kafka messages consumed (single readings or envelopes).",
                   ["domain"])
INVALID = Counter("glasscity_invalid", "Invalid items routed to the dead-letter topic, by reason.",
                  ["domain", "reason"])
ALERTS = Counter("glasscity_alerts", "Alert events emitted, by detector and state (raised, cleared).",
                 ["domain", "detector", "state"])
KERNEL_SECONDS = Histogram("glasscity_kernel_batch_duration_seconds",
                           "Wall time of one kernel call over a batch (seconds).", ["kernel"],
                           buckets=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0))
WATERMARK_LAG = Gauge("glasscity_watermark_lag_seconds",
                      "Wall clock minus the newest partition event-time watermark (seconds).", ["domain"])
SUBJECTS_TRACKED = Gauge("glasscity_subjects_tracked", "Subjects (meters, detectors, bins, lamps) held in this "
                         "worker's state.", ["domain"])


def serve(host: str, port: int):
    """Serve /metrics in a background thread; returns (server, actual port)."""
    server, thread = start_http_server(port, addr=host)
    return server, server.server_address[1]
