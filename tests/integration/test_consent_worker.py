"""Consent through the real broker and a worker process: only enrolled households get welfare alerts,
a declared absence holds the alert until it ends, and the registers are followed while the worker runs."""

from __future__ import annotations

import math
import time

from streams.alerts import iso_time
from streams.broker import stop_process
from streams.consent import REGISTER_TOPICS, Absence, Enrolment, encode, record_key
from streams.demo import AlertReader, metric_sum, start_worker, wait_until_consumed
from streams.pseudonym import Pseudonymizer
from streams.registers import publish
from streams.simulate import WaterScenario, simulate_water
from streams.simulate.produce import produce
from tests.conftest import TEST_KEY

START = 1_790_000_000.0 - 1_790_000_000.0 % 3600
WELFARE = "water.no_use_24h"
PSEUDONYMS = Pseudonymizer(TEST_KEY.encode())


def test_welfare_alerts_follow_enrolment_and_absences(broker_settings, tmp_path):
    settings = broker_settings
    simulation = simulate_water(WaterScenario(households=200, days=3, seed=12, start=START, no_use=4,
                                              meter_silent=0, gateway_outage=0, malformed=0))
    no_use = sorted((i for i in simulation.incidents if i.kind == "no_use"), key=lambda i: i.start)
    assert len(no_use) == 4
    not_enrolled, absent, *on_time = no_use
    # the absent household's alert would come 24 h after its last use; its absence ends 6 h later
    until = math.ceil((absent.start + 30 * 3600) / 300) * 300
    assert absent.end is None or absent.end > until + 3600
    enrolled = [m for m in simulation.meter_ids if m != not_enrolled.subject]
    records = [(record_key("enrolment", PSEUDONYMS.meter(m)), encode(Enrolment(True))) for m in enrolled]
    publish(settings, REGISTER_TOPICS["enrolment"], records)
    publish(settings, REGISTER_TOPICS["absence"], [(record_key("absence", PSEUDONYMS.meter(absent.subject), START),
                                                   encode(Absence(START, until)))])
    worker = start_worker(settings, tmp_path / "worker.log")    # after the registers: read at start-up
    reader = AlertReader(settings)
    reader.start()
    try:
        produce(simulation, settings, enrol=False)
        samples = wait_until_consumed(worker, settings.metrics_port, simulation.valid_readings, 0, timeout_s=180)
        deadline = time.monotonic() + 20
        while len([a for a in reader.alerts if a["data"]["detector"] == WELFARE]) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        reader.stop()
        assert stop_process(worker, grace_s=10.0) is not None
    assert reader.error is None
    raised = {a["subject"]: a for a in reader.alerts if a["data"]["detector"] == WELFARE and a["data"]["state"] == "raised"}
    assert set(raised) == {PSEUDONYMS.meter(i.subject) for i in [absent, *on_time]}, \
        (tmp_path / "worker.log").read_text()[-3000:]
    assert raised[PSEUDONYMS.meter(absent.subject)]["time"] == iso_time(until)        # held until the absence ended
    for incident in on_time:
        assert raised[PSEUDONYMS.meter(incident.subject)]["time"] < iso_time(incident.start + 26 * 3600)
    assert metric_sum(samples, "glasscity_households_enrolled") == 199
    assert metric_sum(samples, "glasscity_consent_records_total", register="enrolment") == 199
    assert metric_sum(samples, "glasscity_consent_records_total", register="absence") == 1
    assert metric_sum(samples, "glasscity_consent_malformed_total") == 0
    log = (tmp_path / "worker.log").read_text()
    assert "consent registers read: 199 enrolled, 1 with absences, 0 with objections" in log
