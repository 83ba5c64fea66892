"""`glasscity alerts tail|open` as a user runs them, on the real broker: filters, formats, welfare
role, unreadable records, live follow ended by SIGTERM, open alerts with ages."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from streams.alerts import alert_event
from streams.detectors import REGISTRY
from streams.detectors.base import Transition
from tests.support.records import produce_records

T0 = 1_780_000_000.0
TOKEN = "welfare-role-token-for-tests-0123"


def _event(detector: str, subject: str, state: str = "raised", at: float = T0 + 60) -> dict:
    return alert_event(Transition(detector, subject, state, T0, at), REGISTRY[detector].declaration)


def _run(settings, *args, token: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "GLASSCITY_BOOTSTRAP": settings.bootstrap, "GLASSCITY_TOPIC_PREFIX": settings.topic_prefix,
           "GLASSCITY_WELFARE_TOKEN": token}
    return subprocess.run([sys.executable, "-m", "streams", "alerts", *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def city(broker_settings):
    events = [_event("water.burst", "wm-a"), _event("water.burst", "wm-a", "cleared", T0 + 3660),
              _event("traffic.stuck", "det-1"), _event("waste.overflow", "bin-7")]
    welfare = _event("water.no_use_24h", "wm-elderly")
    produce_records(broker_settings, [("alerts.v1", orjson.dumps(e)) for e in events]
             + [("alerts.v1", b"\xff not an alert"), ("alerts.welfare.v1", orjson.dumps(welfare))])
    return broker_settings, events, welfare


def test_tail_history_in_every_format_with_filters(city):
    settings, events, welfare = city
    done = _run(settings, "tail", "--from-beginning", "--until-end", "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    assert [orjson.loads(line)["id"] for line in done.stdout.splitlines()] == [e["id"] for e in events]
    assert "unreadable record" in done.stderr and "@4" in done.stderr and "Traceback" not in done.stderr
    water = _run(settings, "tail", "--from-beginning", "--until-end", "--format", "csv", "--domain", "water",
                 "--state", "raised")
    rows = list(csv.DictReader(io.StringIO(water.stdout)))
    assert [(r["detector"], r["state"], r["subject"]) for r in rows] == [("water.burst", "raised", "wm-a")]
    table = _run(settings, "tail", "--from-beginning", "--until-end", "--detector", "traffic.*,waste.*")
    assert "det-1" in table.stdout and "bin-7" in table.stdout and "wm-a" not in table.stdout
    assert welfare["subject"] not in done.stdout + table.stdout


def test_welfare_needs_the_role_token(city):
    settings, _events, welfare = city
    refused = _run(settings, "tail", "--from-beginning", "--until-end", "--welfare", "--token", "guess", token=TOKEN)
    assert refused.returncode == 2 and "not the welfare role's" in refused.stderr and TOKEN not in refused.stderr
    unconfigured = _run(settings, "tail", "--from-beginning", "--until-end", "--welfare", "--token", TOKEN)
    assert unconfigured.returncode == 2 and "no welfare role is configured" in unconfigured.stderr
    shown = _run(settings, "tail", "--from-beginning", "--until-end", "--welfare", "--token", TOKEN, "--format",
                 "jsonl", token=TOKEN)
    assert welfare["id"] in {orjson.loads(line)["id"] for line in shown.stdout.splitlines()}


def test_open_lists_raised_and_not_cleared_with_ages(city):
    settings, events, _welfare = city
    listed = _run(settings, "open", "--format", "jsonl")
    assert listed.returncode == 0, listed.stderr
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(r["subject"] for r in rows) == ["bin-7", "det-1"]       # wm-a's burst was cleared
    assert all(r["age_s"] == pytest.approx(3600.0) for r in rows)         # against the feed's clock: T0+3660
    counts = _run(settings, "open", "--by-domain", "--format", "jsonl")
    by_domain = {r["domain"]: r for r in map(orjson.loads, counts.stdout.splitlines())}
    assert by_domain["traffic"]["1-6h"] == 1 and by_domain["waste"]["1-6h"] == 1
    assert sum(v for r in by_domain.values() for k, v in r.items() if k != "domain") == 2


def test_live_tail_sees_new_alerts_and_ends_cleanly_on_sigterm(broker_settings):
    env = {**os.environ, "GLASSCITY_BOOTSTRAP": broker_settings.bootstrap,
           "GLASSCITY_TOPIC_PREFIX": broker_settings.topic_prefix}
    proc = subprocess.Popen([sys.executable, "-m", "streams", "alerts", "tail", "--format", "jsonl"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(6.0)              # started and at the end of the topics
        fresh = _event("lighting.day_burner", "lamp-3")
        produce_records(broker_settings, [("alerts.v1", orjson.dumps(fresh))])
        time.sleep(3.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert [orjson.loads(line)["id"] for line in out.splitlines()] == [fresh["id"]]
    assert "Traceback" not in err and "1 shown" in err


@pytest.mark.parametrize("args, message", [
    (["tail", "--since", "yesterday"], "--since 'yesterday'"),
    (["tail", "--format", "xml"], "invalid choice"),
    (["open", "--domain", "sewer"], "unknown value sewer"),
])
def test_mistakes_are_one_clear_line(broker_settings, args, message):
    done = _run(broker_settings, *args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_an_unreachable_broker_is_one_line():
    from streams.broker import free_port
    from streams.config import settings_from

    settings = settings_from(environ={}, bootstrap=f"127.0.0.1:{free_port()}")
    done = _run(settings, "open")
    assert done.returncode == 1 and "cannot read the alert topics" in done.stderr
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr
