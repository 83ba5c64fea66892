"""The absence detectors through the real pipeline with learnt cadences: each subject is judged by its
own rhythm (a 6-hourly meter, an hourly cabinet, a two-hourly bin, a 15-minute radar), a new one by the
floor, and the cadence state survives the changelog."""

from datetime import datetime, timezone

import numpy as np
import orjson
import pytest

from kernels.config import CADENCE_MIN_INTERVALS
from streams.detectors import REGISTRY
from streams.detectors._cadence import CADENCE, CADENCE_INTERVALS
from streams.domains import DOMAINS
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from tests.streams.detectors.corpus import PSEUDONYMS, SETTINGS, START

H = 3600.0


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def water(meter, t, index=1.0, gateway=None):
    reading = {"id": meter, "type": "WaterConsumptionObserved", "dateObserved": iso(t), "waterConsumption": index}
    if gateway:
        reading["gatewayId"] = gateway
    return reading


def traffic(detector, t):
    return {"id": detector, "type": "TrafficFlowObserved", "dateObserved": iso(t), "refRoadSegment": "seg-1",
            "intensity": 10, "occupancy": 0.05, "averageVehicleSpeed": 50.0, "positionAlongSegment": 0.0}


def lamp(lamp_id, t):
    return {"id": lamp_id, "type": "Streetlight", "dateObserved": iso(t), "powerState": "off",
            "powerConsumption": 0.5, "refStreetlightControlCabinet": "cab-1"}


def cabinet(cabinet_id, t):
    return {"id": cabinet_id, "type": "StreetlightControlCabinet", "dateObserved": iso(t), "energyConsumed": 100.0}


def bin_reading(bin_id, t):
    return {"id": bin_id, "type": "WasteContainer", "dateObserved": iso(t), "fillingLevel": 0.3}


def run(domain_name, readings, thresholds=None):
    """Every alert of the domain on the readings, one message per reading in time order, with a clock
    reading every 5 min so the watermark moves on through silences."""
    domain = DOMAINS[domain_name]
    pipeline = DomainPipeline(domain, SETTINGS, PSEUDONYMS, thresholds, clock=lambda: START + 400 * 86400)
    alerts = []
    for offset, reading in enumerate(sorted(readings, key=lambda r: r["dateObserved"])):
        message = RawMessage(orjson.dumps(reading), domain.topic("readings"), 0, offset, reading["id"].encode())
        result = pipeline.process([message])
        assert result.dead_letters == []
        alerts += [a.event for a in result.alerts]
    return pipeline, alerts


def raised(alerts, detector, subject=None):
    return [(a["subject"], datetime.fromisoformat(a["time"]).timestamp()) for a in alerts
            if a["data"]["detector"] == detector and a["data"]["state"] == "raised"
            and (subject is None or a["subject"] == subject)]


def clock(end, every=300.0):
    """Keep-alive readings of an unrelated, steady subject so the partition's watermark follows event time."""
    return np.arange(START, end, every).tolist()


def test_a_six_hourly_meter_is_silent_after_three_missed_reports_and_a_new_one_after_the_floor():
    hourly = [water("hourly", START + k * H) for k in range(0, 96)]                    # 4 days, then quiet
    six = [water("six", START + k * 6 * H) for k in range(0, 13)]                      # 3 days, then 30 h quiet
    six.append(water("six", START + 72 * H + 30 * H))
    _p, alerts = run("water", hourly + six + [water("keep", t) for t in clock(START + 110 * H, 1800.0)])
    key = PSEUDONYMS.pseudonym("wm", "six")
    got = raised(alerts, "water.meter_silent", key)
    # its first intervals are judged by the 3 h floor (a new meter), then by 3 x 6 h
    learning = [t for _s, t in got if t < START + CADENCE_MIN_INTERVALS * 6 * H]
    assert len(learning) == CADENCE_MIN_INTERVALS
    later = [t for _s, t in got if t >= START + CADENCE_MIN_INTERVALS * 6 * H]
    assert len(later) == 1 and START + 72 * H + 18 * H <= later[0] <= START + 72 * H + 18 * H + 900
    hourly_key = PSEUDONYMS.pseudonym("wm", "hourly")
    [(_s, t)] = raised(alerts, "water.meter_silent", hourly_key)
    assert START + 95 * H + 3 * H <= t <= START + 95 * H + 3 * H + 900


def test_no_use_counts_a_learnt_six_hourly_meter_as_reporting_between_its_reports():
    """The welfare check is not held back until the next report: raised 24 h after the last use although
    the meter's last reading is then hours old."""
    readings = [water("six", START + k * 6 * H, index=1.0 + 0.01 * k) for k in range(0, 9)]      # uses until 48 h
    readings += [water("six", START + 48 * H + k * 6 * H, index=1.08) for k in range(1, 8)]      # then none
    _p, alerts = run("water", readings + [water("keep", t, index=t / 1e6) for t in clock(START + 100 * H, 1800.0)])
    [(_s, t)] = raised(alerts, "water.no_use_24h", PSEUDONYMS.pseudonym("wm", "six"))
    assert START + 72 * H <= t <= START + 72 * H + 900     # 48 h + 24 h, between two reports (72 h is one)


def test_a_gateway_outage_is_judged_by_its_own_delivery_cadence():
    meters = [f"m{i}" for i in range(3)]
    readings = [water(m, START + k * 6 * H + i, gateway="gw-slow") for k in range(12) for i, m in enumerate(meters)]
    readings += [water(m, START + 66 * H + 20 * H + i, gateway="gw-slow") for i, m in enumerate(meters)]
    readings += [water("keep", t, gateway="gw-fast") for t in clock(START + 100 * H, 1800.0)]
    _p, alerts = run("water", readings)
    got = raised(alerts, "feed.gateway_outage", "gw-slow")
    learnt = [t for _s, t in got if t >= START + CADENCE_MIN_INTERVALS * 6 * H]
    assert len(learnt) == 1 and START + 66 * H + 12 * H <= learnt[0] <= START + 66 * H + 12 * H + 900
    # its meters are held back during the outage: their 20 h silence is one feed alert, not three
    assert not [t for _s, t in raised(alerts, "water.meter_silent") if t >= START + 66 * H]


def test_traffic_detector_reporting_every_15_minutes_is_silent_after_an_hour():
    readings = [traffic("radar", START + k * 900.0) for k in range(0, 96)]
    readings += [traffic("radar", START + 95 * 900.0 + 2 * H + k * 900.0) for k in range(0, 40)]
    readings += [traffic("loop", t) for t in clock(START + 34 * H)]
    _p, alerts = run("traffic", readings)
    got = [t for _s, t in raised(alerts, "traffic.silent", "radar") if t > START + 6 * H]
    assert got == [pytest.approx(START + 95 * 900.0 + H, abs=600)]
    assert len(raised(alerts, "traffic.silent", "radar")) == 1   # 15 min is within the 20 min floor while new


def test_lighting_lamp_after_two_hours_cabinet_after_four():
    lamps = [lamp("lamp-1", START + k * 900.0) for k in range(0, 96)]                # 24 h, then quiet
    cabinets = [cabinet("cab-1", START + k * H) for k in list(range(0, 30)) + list(range(34, 41))]
    keep = [lamp("lamp-2", t) for t in np.arange(START, START + 40 * H, 900.0)]
    _p, alerts = run("lighting", lamps + cabinets + keep)
    [(_s, t)] = raised(alerts, "lighting.silent", "lamp-1")
    assert START + 95 * 900.0 + 2 * H <= t <= START + 95 * 900.0 + 2 * H + 900
    [(_s, t)] = raised(alerts, "lighting.silent", "cab-1")
    assert START + 29 * H + 4 * H <= t <= START + 29 * H + 4 * H + 900
    assert not raised(alerts, "lighting.silent", "lamp-2")


def test_waste_two_hourly_bin_after_six_hours_and_cleared_by_its_next_reading():
    bins = [bin_reading("bin-2h", START + k * 2 * H) for k in range(0, 20)]
    bins += [bin_reading("bin-2h", START + 38 * H + 9 * H + k * 2 * H) for k in range(0, 7)]
    keep = [bin_reading("bin-1h", t) for t in np.arange(START, START + 60 * H, H)]
    _p, alerts = run("waste", bins + keep)
    [(_s, t)] = raised(alerts, "waste.silent", "bin-2h")
    assert START + 38 * H + 6 * H <= t <= START + 38 * H + 6 * H + 900
    [cleared] = [a for a in alerts if a["data"]["detector"] == "waste.silent" and a["data"]["state"] == "cleared"]
    assert datetime.fromisoformat(cleared["time"]).timestamp() == START + 47 * H   # the reading's own time
    assert not raised(alerts, "waste.silent", "bin-1h")


@pytest.mark.parametrize("domain_name", ["water", "traffic", "lighting", "waste"])
def test_cadence_state_is_declared_and_survives_the_changelog(domain_name):
    domain = DOMAINS[domain_name]
    make = {"water": lambda s, t: water(s, t, gateway="gw-1"), "traffic": traffic, "lighting": lamp,
            "waste": bin_reading}[domain_name]
    readings = [make(f"s{i}", START + k * (i + 1) * H) for i in range(3) for k in range(8)]
    pipeline, _alerts = run(domain_name, readings)
    records = pipeline.changelog()
    fieldsets = [orjson.loads(v) for _partition, k, v in records if k.startswith(b"f:")]
    subjects = next(f for f in fieldsets if f["table"] == "s")
    assert {CADENCE, CADENCE_INTERVALS} <= {name for name, _dtype, _fill in subjects["fields"]}
    if domain_name == "water":
        gateways = next(f for f in fieldsets if f["table"] == "g:gateway")
        assert {CADENCE, CADENCE_INTERVALS} <= {name for name, _dtype, _fill in gateways["fields"]}
    restored = DomainPipeline(domain, SETTINGS, PSEUDONYMS, clock=lambda: START + 400 * 86400)
    restored.restore(0, [(k, v) for _p, k, v in records])
    before, after = pipeline.states[0], restored.states[0]
    for field in (CADENCE, CADENCE_INTERVALS, "last_seen"):
        assert np.array_equal(before.subject(field), after.subject(field), equal_nan=True), field
    learnt = before.subject(CADENCE)[before.subjects.slots_for(pipeline.subject_keys(["s0", "s1", "s2"]))]
    assert learnt.tolist() == [H, 2 * H, 3 * H]


def test_every_absence_detector_documents_its_missed_reports():
    for name in ("water.meter_silent", "feed.gateway_outage", "traffic.silent", "lighting.silent", "waste.silent"):
        fields = REGISTRY[name].Thresholds.__dataclass_fields__
        assert "silent_after_s" in fields and fields["missed_reports"].metadata["unit"] in ("reports", "deliveries")
    assert "reporting_missed_reports" in REGISTRY["water.no_use_24h"].Thresholds.__dataclass_fields__
