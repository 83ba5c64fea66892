"""Tests of the synthetic water city (streams.simulate)."""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import jsonschema
import orjson
import pytest

from streams.simulate import profiles as profiles_mod
from streams.simulate.water import (
    MALFORMED_KINDS,
    WaterScenario,
    simulate_water,
)

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = orjson.loads((ROOT / "schemas" / "water-reading.schema.json").read_bytes())
MESSAGE_VALIDATOR = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
READING_VALIDATOR = jsonschema.Draft7Validator(
    {"$ref": "#/definitions/reading", "definitions": SCHEMA["definitions"]},
    format_checker=jsonschema.FormatChecker(),
)
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
METER_RE = re.compile(r"^urn:ngsi-ld:WaterMeter:GC-\d{6}$")
BAD_RE = re.compile(r"^urn:ngsi-ld:WaterMeter:BAD-\d+$")

START = 1_767_225_600  # 2026-01-01T00:00:00Z
SMALL = WaterScenario(households=60, days=2.0, households_per_gateway=10, seed=7, start=START,
                      no_use=2, meter_silent=2, gateway_outage=1, malformed=16,
                      single_reading_share=0.05)


def _epoch(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


def _reading_ok(r: dict, sim) -> bool:
    """Structure (schema) and value checks of one reading, as ingest performs them."""
    if not READING_VALIDATOR.is_valid(r):
        return False
    try:
        t = _epoch(r["dateObserved"])
    except ValueError:
        return False
    v = r["waterConsumption"]
    return math.isfinite(v) and sim.start - 86400 <= t <= sim.end + 86400


def _collect(sim):
    """Decode a whole run: valid readings, bad items, messages per hour."""
    valid = []  # (meter, t, litres, gateway, hour, form)
    bad = []  # (hour, key, reason, id or None)
    per_hour = []
    for h, (hour_start, items) in enumerate(sim.hours()):
        per_hour.append((hour_start, items))
        for key, value in items:
            district = key.decode()   # messages are keyed by the gateway's district
            try:
                msg = orjson.loads(value)
            except orjson.JSONDecodeError:
                m = re.search(rb"urn:ngsi-ld:WaterMeter:BAD-\d+", value)
                bad.append((h, district, "json", m.group().decode() if m else None))
                continue
            if not MESSAGE_VALIDATOR.is_valid(msg):
                bad.append((h, district, "schema", msg.get("id")))
                continue
            gw = msg["gatewayId"]
            assert district == sim.district_ids[sim._gw_district[sim.gateway_ids.index(gw)]]
            if msg["type"] == "ReadingBatch":
                assert ISO_Z.match(msg["dateSent"])
                readings, form = msg["readings"], "envelope"
            else:
                readings, form = [msg], "single"
            for r in readings:
                if not _reading_ok(r, sim):
                    bad.append((h, district, "reading", r.get("id")))
                    continue
                assert r["district"] == district
                valid.append((r["id"], _epoch(r["dateObserved"]),
                              round(r["waterConsumption"] * 1000), gw, h, form, r))
    return valid, bad, per_hour


@pytest.fixture(scope="module")
def run():
    sim = simulate_water(SMALL)
    valid, bad, per_hour = _collect(sim)
    by_meter = defaultdict(list)
    for v in valid:
        by_meter[v[0]].append(v)
    for lst in by_meter.values():
        lst.sort(key=lambda x: x[1])
    return sim, valid, bad, per_hour, by_meter


def _raw(sim):
    return [(h, list(items)) for h, items in sim.hours()]


def test_deterministic_bytes():
    a = _raw(simulate_water(SMALL))
    b = _raw(simulate_water(SMALL))
    assert a == b
    sim = simulate_water(SMALL)
    assert _raw(sim) == _raw(sim)  # hours() may be iterated again
    other = WaterScenario(**{**SMALL.__dict__, "seed": 8})
    c = _raw(simulate_water(other))
    assert [x[1] for x in c] != [x[1] for x in a]


def test_valid_messages_follow_schema_and_ids(run):
    sim, valid, bad, per_hour, _ = run
    assert valid
    for meter, t, litres, gw, h, form, r in valid:
        assert METER_RE.match(meter), meter
        assert sim.meter_gateway[meter] == gw
        assert ISO_Z.match(r["dateObserved"])
        assert r["type"] == "WaterConsumptionObserved"
        assert abs(r["waterConsumption"] * 1000 - litres) < 1e-6  # rounded to 0.001 m3
        assert sim.start + h * 3600 <= t < sim.start + h * 3600 + 60
    forms = {v[5] for v in valid}
    assert forms == {"envelope", "single"}
    n_single = sum(v[5] == "single" for v in valid)
    assert 0 < n_single < 0.15 * len(valid)
    assert sim.meter_ids[0] == "urn:ngsi-ld:WaterMeter:GC-000000"
    assert sim.gateway_ids[0] == "gw-0000"
    assert len(sim.gateway_ids) == 6
    assert sim.meter_gateway[sim.meter_ids[19]] == "gw-0001"


def test_hours_in_order_and_readings_counted(run):
    sim, valid, bad, per_hour, by_meter = run
    assert len(per_hour) == 48
    assert [h for h, _ in per_hour] == [float(START + 3600 * i) for i in range(48)]
    assert len(valid) == sim.valid_readings
    # one reading per meter and hour at most, at a fixed per-meter offset
    for meter, lst in by_meter.items():
        hours = [v[4] for v in lst]
        assert len(hours) == len(set(hours))
        assert len({int(v[1]) % 3600 for v in lst}) == 1
        first = lst[0][2]
        assert lst[0][4] == 0 and 10_000 <= first <= 500_000
        assert all(b[2] >= a[2] for a, b in zip(lst, lst[1:]))  # cumulative index


def test_ground_truth_known_up_front():
    sim = simulate_water(SMALL)
    gt = orjson.loads(orjson.dumps(sim.ground_truth()))
    assert gt["valid_readings"] == sim.valid_readings
    assert gt["meters"] == 60 and gt["gateways"] == 6
    assert [i["kind"] for i in gt["incidents"]].count("no_use") == 2
    assert [i["kind"] for i in gt["incidents"]].count("meter_silent") == 2
    assert [i["kind"] for i in gt["incidents"]].count("gateway_outage") == 1
    assert len(gt["malformed"]) == 16
    subjects = [i.subject for i in sim.incidents]
    assert len(subjects) == len(set(subjects))
    outage_gws = {i.subject for i in sim.incidents if i.kind == "gateway_outage"}
    for i in sim.incidents:
        assert i.start >= sim.start + 4 * 3600
        if i.kind != "gateway_outage":
            assert i.gateway not in outage_gws
        if i.end is not None:
            assert i.end <= sim.end - 3 * 3600


def test_no_use_meters_frozen_but_reporting(run):
    sim, valid, bad, per_hour, by_meter = run
    incs = [i for i in sim.incidents if i.kind == "no_use"]
    assert len(incs) == 2 and any(i.end is None for i in incs) and any(i.end for i in incs)
    for inc in incs:
        lst = by_meter[inc.subject]
        assert len(lst) == sim.n_hours  # keeps reporting every hour
        k = next(j for j, v in enumerate(lst) if v[1] == inc.start)
        assert lst[k][2] > lst[k - 1][2]  # the last increase before the freeze
        assert inc.start + 30 * 3600 <= sim.end
        end = inc.end if inc.end is not None else math.inf
        frozen = [v for v in lst if inc.start <= v[1] < end]
        assert frozen[-1][1] - inc.start >= 24 * 3600
        assert {v[2] for v in frozen} == {lst[k][2]}
        if inc.end is not None:
            assert inc.end >= inc.start + 27 * 3600
            after = next(v for v in lst if v[1] == inc.end)
            assert after[2] > lst[k][2]


def test_meter_silent_absent_in_gap(run):
    sim, valid, bad, per_hour, by_meter = run
    incs = [i for i in sim.incidents if i.kind == "meter_silent"]
    assert len(incs) == 2
    for inc in incs:
        lst = by_meter[inc.subject]
        times = [v[1] for v in lst]
        assert inc.start in times
        end = inc.end if inc.end is not None else math.inf
        assert not [t for t in times if inc.start < t < end]
        if inc.end is not None:
            assert inc.end in times
            assert inc.end - inc.start >= 7 * 3600  # >= 6 missing hours
            i0, i1 = times.index(inc.start), times.index(inc.end)
            assert i1 == i0 + 1 and lst[i1][2] > lst[i0][2]  # use went on silently
        else:
            assert sim.end - inc.start >= 7 * 3600
            assert times[-1] == inc.start


def test_gateway_outage_sends_nothing(run):
    sim, valid, bad, per_hour, by_meter = run
    (inc,) = [i for i in sim.incidents if i.kind == "gateway_outage"]
    gw = b'"gatewayId":"' + inc.subject.encode() + b'"'
    sent_hours = [h for h, (_, items) in enumerate(per_hour) if any(gw in v for _k, v in items)]
    missing = sorted(set(range(sim.n_hours)) - set(sent_hours))
    assert 4 <= len(missing) <= 8
    assert missing == list(range(missing[0], missing[-1] + 1))
    before = [v[1] for v in valid if v[3] == inc.subject and v[4] == missing[0] - 1]
    after = [v[1] for v in valid if v[3] == inc.subject and v[4] == missing[-1] + 1]
    assert max(before) == inc.start and min(after) == inc.end
    assert not [v for v in valid if v[3] == inc.subject and inc.start < v[1] < inc.end]


def _max_idle_hours(lst):
    worst, run_start = 0.0, None
    for a, b in zip(lst, lst[1:]):
        if b[2] == a[2]:
            run_start = a[1] if run_start is None else run_start
            worst = max(worst, b[1] - run_start)
        else:
            run_start = None
    return worst / 3600


def test_normal_households_never_idle_12h(run):
    sim, valid, bad, per_hour, by_meter = run
    no_use = {i.subject for i in sim.incidents if i.kind == "no_use"}
    for meter, lst in by_meter.items():
        if meter not in no_use:
            assert _max_idle_hours(lst) < 12, meter
    # and on a larger incident-free city over three days
    big = simulate_water(WaterScenario(households=400, days=3, seed=3, start=START, no_use=0,
                                       meter_silent=0, gateway_outage=0, malformed=0,
                                       single_reading_share=0.0))
    series = defaultdict(list)
    for _, items in big.hours():
        for _, value in items:
            for r in orjson.loads(value)["readings"]:
                series[r["id"]].append((None, _epoch(r["dateObserved"]),
                                        round(r["waterConsumption"] * 1000)))
    assert len(series) == 400
    worst = max(_max_idle_hours(lst) for lst in series.values())
    assert 5 <= worst < 12  # real nights are idle, never half a day


def test_malformed_items_each_fail_once(run):
    sim, valid, bad, per_hour, by_meter = run
    assert len(sim.malformed) == 16 == len(bad)
    assert [m["kind"] for m in sim.malformed] == [MALFORMED_KINDS[i % 8] for i in range(16)]
    assert sorted((b[0], b[1], b[3]) for b in bad) == sorted(
        (m["hour"], m["key"], m["id"]) for m in sim.malformed)
    for b in bad:
        assert b[3] is not None and BAD_RE.match(b[3])
    assert len({m["hour"] for m in sim.malformed}) >= 12  # spread across the run
    assert not [v for v in valid if "BAD" in v[0]]
    # the envelope holding a bad reading also holds real, valid siblings
    for m in sim.malformed:
        if m["kind"] == "bad_reading_in_envelope":
            envs = [orjson.loads(v) for k, v in per_hour[m["hour"]][1]
                    if k == m["key"].encode() and b'"ReadingBatch"' in v
                    and orjson.loads(v)["gatewayId"] == m["gateway"]]
            (env,) = [e for e in envs if any(r["id"] == m["id"] for r in e["readings"])]
            siblings = [r for r in env["readings"] if r["id"] != m["id"]]
            assert siblings and all(_reading_ok(r, sim) for r in siblings)


def test_scenario_too_short_raises():
    with pytest.raises(ValueError, match="too short"):
        simulate_water(WaterScenario(households=10, days=1.4, start=START, no_use=1))
    simulate_water(WaterScenario(households=10, days=1.5, start=START, no_use=1,
                                 households_per_gateway=5))  # 36 h is enough


def test_profiles_file_and_rebuild(tmp_path, monkeypatch):
    path = profiles_mod.DEFAULT_PROFILES_PATH
    assert path.stat().st_size < 400_000
    doc = orjson.loads(path.read_bytes())
    assert doc["attribution"] == "DAIAD project, swm_trialA, CC-BY-SA 4.0"
    prof = profiles_mod.load_profiles()
    assert len(prof) >= 50 and prof.mean.shape[1:] == (7, 24)
    assert (prof.p >= 0).all() and (prof.p <= 1).all() and (prof.mean >= 0).all()

    # rebuild from a tiny archive: bad intervals are dropped
    rows = ["user key;datetime;meter reading;diff"]
    idx = 1000
    for d in range(1, 15):  # two weeks, 01-14/03/2016 (a Tuesday first)
        for hh in range(24):
            if (d, hh) == (3, 5):
                idx -= 50  # negative diff: dropped
            elif (d, hh) == (4, 5):
                idx += 5000  # > 2000 L/h: dropped
            elif (d, hh) in ((5, 6), (5, 7), (5, 8)):
                continue  # a 4 h gap: the interval after it is dropped
            else:
                idx += 10 if hh == 8 else 0
            rows.append(f"k1;{d:02d}/03/2016 {hh:02d}:00:00;{idx};0")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("swm_trialA.csv", "\n".join(rows) + "\n")
    zpath = tmp_path / "tiny.zip"
    zpath.write_bytes(buf.getvalue())
    monkeypatch.setattr(profiles_mod, "MIN_HOURS", 100)
    monkeypatch.setattr(profiles_mod, "MIN_CELL", 1)
    out = tmp_path / "p.json"
    assert profiles_mod.main(["--input", str(zpath), "--output", str(out)]) == 0
    built = orjson.loads(out.read_bytes())
    (p,) = built["profiles"]
    assert built["attribution"] == profiles_mod.ATTRIBUTION
    # reading at 08:00 closes the 07:00-08:00 interval (midpoint 07:30)
    for wd in range(7):
        assert p["mean"][wd][7] == 10.0 and p["p"][wd][7] == 1.0
        assert sum(p["mean"][wd]) == 10.0
    with pytest.raises(SystemExit):
        profiles_mod.main([])


# --- flow incidents, districts and the reading's flow fields -------------------------------------------------------

DAY_START = START   # 2026-01-01T00:00:00Z: three complete 02:00-04:00 nights in three days
FLOW = WaterScenario(households=200, days=3.0, households_per_gateway=20, districts=5, seed=11, start=DAY_START,
                     no_use=2, meter_silent=2, gateway_outage=1, malformed=8, night_flow=2)


@pytest.fixture(scope="module")
def flow_run():
    sim = simulate_water(FLOW)
    valid, bad, per_hour = _collect(sim)
    by_meter = defaultdict(list)
    for v in valid:
        by_meter[v[0]].append(v)
    for lst in by_meter.values():
        lst.sort(key=lambda x: x[1])
    return sim, valid, bad, by_meter


def _kind(sim, kind):
    return [i for i in sim.incidents if i.kind == kind]


def test_flow_kinds_planted_by_default_in_three_day_runs_only():
    sim = simulate_water(FLOW)
    counts = {k: len(_kind(sim, k)) for k in ("continuous_flow", "burst", "backflow", "night_flow", "device_alarm")}
    assert counts == {"continuous_flow": 4, "burst": 4, "backflow": 4, "night_flow": 2, "device_alarm": 5}
    assert {i.kind for i in SMALL_SIM().incidents} == {"no_use", "meter_silent", "gateway_outage"}
    subjects = [i.subject for i in sim.incidents]
    assert len(subjects) == len(set(subjects))
    with pytest.raises(ValueError, match="too short"):
        simulate_water(WaterScenario(households=60, days=2.0, start=DAY_START, night_flow=1))
    with pytest.raises(ValueError, match="too short"):
        simulate_water(WaterScenario(households=60, days=1.1, start=DAY_START, continuous_flow=1, no_use=0))


def SMALL_SIM():
    return simulate_water(SMALL)


def test_districts_are_whole_gateways_and_readings_carry_flow_fields(flow_run):
    sim, valid, bad, by_meter = flow_run
    assert len(bad) == len(sim.malformed) == 8 and sim.n_districts == 5
    district_of_gateway = {}
    for meter, t, litres, gw, h, form, r in valid:
        assert district_of_gateway.setdefault(gw, r["district"]) == r["district"]
        assert r["nominalFlow"] in (2.5, 4.0) and 0.0 <= r["maxFlowLastHour"]
    assert len(set(district_of_gateway.values())) == 5 and len(district_of_gateway) == 10


def _series(lst):
    """(t, litres in the interval ending at t, peak m3/h, alarm) per reading after the first."""
    return [(b[1], b[2] - a[2], b[6]["maxFlowLastHour"], b[6].get("deviceAlarm")) for a, b in zip(lst, lst[1:])]


def test_normal_households_stay_clear_of_every_flow_rule(flow_run):
    sim, valid, bad, by_meter = flow_run
    special = {i.subject for i in sim.incidents}
    leaky = {sim.meter_ids[m] for m in sim._night_leak}
    for meter, lst in by_meter.items():
        if meter in special:
            continue
        series = _series(lst)
        assert all(0 <= litres for _t, litres, _p, _a in series), meter   # never backwards
        assert all(alarm is None for *_x, alarm in series)
        run = longest = 0
        for t, litres, peak, _alarm in series:
            run = run + 1 if litres > 0 else 0
            longest = max(longest, run)
            if meter not in leaky:
                assert litres <= 400 and peak < 0.9 + 1e-9   # below half of Q3 = 1.25 m3/h
        assert longest <= 20, meter   # a still hour at least every 21 h: the 24 h leak rule never fires


def test_flow_incidents_look_like_their_definitions(flow_run):
    sim, valid, bad, by_meter = flow_run
    for inc in _kind(sim, "continuous_flow"):
        series = _series(by_meter[inc.subject])
        end = inc.end if inc.end is not None else math.inf
        inside = [x for x in series if inc.start < x[0] < end]
        assert inside and all(litres >= 5 for _t, litres, _p, _a in inside)
        assert [x for x in series if x[0] == inc.start][0][1] == 0   # still just before the leak
        assert inc.end is None or [x for x in series if x[0] == inc.end][0][1] == 0
    for inc in _kind(sim, "burst"):
        q = by_meter[inc.subject][0][6]["nominalFlow"]
        series = _series(by_meter[inc.subject])
        first = next(x for x in series if x[0] > inc.start)
        assert first[2] >= 0.7 * q and first[1] >= 0.25 * q * 1000   # peak and 30 min at half Q3
        after = next(x for x in series if x[0] == inc.end)
        assert after[1] <= 400 and after[2] < 0.5 * q
    for inc in _kind(sim, "backflow"):
        series = _series(by_meter[inc.subject])
        falling = [x for x in series if inc.start < x[0] < inc.end]
        assert 2 <= len(falling) <= 4 and all(-30 <= litres <= -5 for _t, litres, _p, _a in falling)
        assert next(x for x in series if x[0] == inc.end)[1] >= 0
    codes = set()
    for inc in _kind(sim, "device_alarm"):
        series = _series(by_meter[inc.subject])
        end = inc.end if inc.end is not None else math.inf
        on = {x[3] for x in series if inc.start <= x[0] < end - 3600}
        assert len(on) == 1 and None not in on
        codes |= on
        assert all(x[3] is None for x in series if x[0] < inc.start or x[0] >= end - 3600)
    assert codes == {"leak", "burst", "dry", "reverse", "tamper"}


def test_night_flow_districts_rise_on_their_incident_night(flow_run):
    sim, valid, bad, by_meter = flow_run
    incidents = {i.subject: i for i in _kind(sim, "night_flow")}

    def night_minimum(district, night_start):
        means = []
        for hour in (1, 2):   # readings at 03:00 and 04:00 close the 02-03 and 03-04 intervals
            uses = [b[2] - a[2] for lst in by_meter.values() for a, b in zip(lst, lst[1:])
                    if b[6]["district"] == district
                    and night_start + hour * 3600 <= b[1] < night_start + (hour + 1) * 3600
                    and b[1] - a[1] < 5400]
            means.append(sum(uses) / len(uses))
        return min(means)

    for district in sim.district_ids:
        nights = [night_minimum(district, DAY_START + d * 86400 + 7200) for d in range(3)]
        if district in incidents:
            assert incidents[district].start == DAY_START + 2 * 86400 + 7200
            assert nights[2] >= 1.5 * max(nights[:2]) + 3   # litres per meter and hour
        else:
            assert nights[2] < 1.5 * max(nights[:2]) + 3


def _readings_by_meter(sim) -> dict:
    readings = defaultdict(list)
    for _when, hour in sim.hours():
        for _key, value in hour:
            message = orjson.loads(value)
            for r in message.get("readings", [message]):
                readings[r["id"]].append((r["dateObserved"], r["waterConsumption"]))
    return readings


def test_routine_changes_shift_only_their_households_from_a_utc_midnight_weeks_into_the_run():
    quiet = dict(households=12, households_per_gateway=6, days=31.0, seed=3, start=START, no_use=0, meter_silent=0,
                 gateway_outage=0, malformed=0, continuous_flow=0, burst=0, backflow=0, night_flow=0,
                 device_alarm=0)
    plain, shifted = simulate_water(WaterScenario(**quiet)), simulate_water(WaterScenario(**quiet, routine_change=4))
    assert plain.incidents == [] and WaterScenario().routine_change == 0      # none unless asked for
    changes = shifted.incidents
    assert [i.kind for i in changes] == ["routine_change"] * 4
    for i, incident in enumerate(changes):
        assert incident.start % 86400 == 0 and incident.start >= START + 21 * 86400
        assert incident.start <= shifted.end - 5 * 86400
        assert incident.end is None or incident.end == incident.start + 7 * 86400
    assert changes[0].end is not None and changes[2].end is not None    # every other one returns, when it fits
    before, after = _readings_by_meter(plain), _readings_by_meter(shifted)
    changed = {meter for meter in before if before[meter] != after[meter]}
    assert changed == {i.subject for i in changes}                    # the others' bytes are the same
    for incident in changes:                                          # and theirs only from the change on
        same = [b == a for b, a in zip(before[incident.subject], after[incident.subject])]
        first_different = same.index(False)
        assert _epoch(before[incident.subject][first_different][0]) > incident.start
    with pytest.raises(ValueError, match="routine_change incidents need"):
        simulate_water(WaterScenario(**{**quiet, "days": 20.0}, routine_change=1))
