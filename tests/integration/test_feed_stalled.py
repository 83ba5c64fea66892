"""A whole feed going quiet is one feed.stalled alert per domain, cleared when data resumes."""

import json
import time

from streams.broker import stop_process
from streams.demo import AlertReader, start_worker, wait_until_consumed
from streams.domains import DOMAINS
from streams.ingest import RawMessage, decode
from streams.simulate.produce import produce
from tests.integration.faults import Steps, wait_ready, water_city


def feed_raises(alerts) -> int:
    return sum(1 for a in alerts if a["data"]["detector"] == "feed.stalled" and a["data"]["state"] == "raised")


def test_a_quiet_feed_raises_feed_stalled_once_and_nothing_else(broker_settings, tmp_path):
    settings = broker_settings
    (tmp_path / "thresholds.json").write_text(json.dumps({"feed.stalled": {"stalled_after_s": 6.0}}))
    simulation = water_city(seed=41)
    steps = list(simulation.steps())
    reader = AlertReader(settings)
    reader.start()
    worker = start_worker(settings, tmp_path / "worker.log",
                          extra_env={"GLASSCITY_DOMAINS": "water,traffic",
                                     "GLASSCITY_THRESHOLDS": str(tmp_path / "thresholds.json")})
    try:
        wait_ready(worker, settings.metrics_port)
        produce(Steps(simulation, steps[:30]), settings)
        readings = sum(len(decode([RawMessage(v, "x", 0, 0) for _k, v in step], DOMAINS["water"],
                                  now=time.time())) for _w, step in steps[:30])
        wait_until_consumed(worker, settings.metrics_port, readings, 0, timeout_s=60)
        time.sleep(1.0)                       # the reader catches up with the alerts of those readings
        before_quiet = len(reader.alerts)
        # the head-end is down: nothing arrives at all, until both feeds are reported stalled
        deadline = time.monotonic() + 30
        while feed_raises(reader.alerts[before_quiet:]) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)                       # anything else the quiet brings would show up now
        during = reader.alerts[before_quiet:]
        produce(Steps(simulation, steps[30:32]), settings)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
                a["data"]["detector"] == "feed.stalled" and a["data"]["state"] == "cleared" for a in reader.alerts):
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        reader.stop()
        stop_process(worker)
    stalled = [(a["data"]["domain"], a["data"]["state"], a["subject"]) for a in reader.alerts
               if a["data"]["detector"] == "feed.stalled"]
    water_topic, traffic_topic = settings.topic("water.readings.v1"), settings.topic("traffic.readings.v1")
    assert sorted(stalled) == sorted([("traffic", "raised", traffic_topic), ("water", "raised", water_topic),
                                      ("water", "cleared", water_topic)])
    # while quiet, nothing but the feed alerts: event time stands still, no meter looks silent
    assert {a["data"]["detector"] for a in during} == {"feed.stalled"}
    assert len(during) == 2
