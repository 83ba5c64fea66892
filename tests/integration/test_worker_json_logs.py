"""A worker started with --log-format json logs one JSON object per line and never its key."""

import json
import signal
import subprocess
import sys
import time

from streams.broker import stop_process
from streams.demo import start_worker, wait_for_worker_metrics


def test_worker_logs_are_json_lines_without_the_key(broker_settings, tmp_path):
    log = tmp_path / "worker.log"
    worker = start_worker(broker_settings, log, extra_env={"GLASSCITY_LOG_FORMAT": "json",
                                                           "GLASSCITY_LOG_LEVEL": "info"})
    try:
        wait_for_worker_metrics(worker, broker_settings.metrics_port, timeout_s=90)
        time.sleep(2.0)
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    finally:
        stop_process(worker)
    text = log.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    others = [line for line in text.splitlines() if line.strip() and not line.startswith("{")]
    # what is not a log record is the worker's own start-up line on stdout (print, not logging)
    assert all(line.startswith("glasscity worker: metrics on") for line in others), others
    assert len(records) >= 3
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    loggers = {r["logger"] for r in records}
    assert "faust.worker" in loggers and any(name.startswith("streams.") for name in loggers), loggers
    assert broker_settings.pseudonym_key not in text
