"""Tests of the synthetic traffic city (streams.simulate.traffic)."""

import json
from datetime import datetime

import fastjsonschema
import jsonschema
import orjson
import pytest

import schemas
from streams.domains import DOMAINS
from streams.simulate.traffic import (INCIDENT_KINDS, INTERVAL_S, MALFORMED_KINDS, TrafficScenario, detector_id,
                                      simulate_traffic)

START = 1_790_000_000 - 1_790_000_000 % 3600
SCHEMA = schemas.load("traffic-reading")
READING = jsonschema.Draft7Validator({"$ref": "#/definitions/reading", "definitions": SCHEMA["definitions"]},
                                     format_checker=jsonschema.FormatChecker())
MESSAGE = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
# The same schema compiled (100k readings through jsonschema would take seconds); the reference
# validator above still checks every single reading, every malformed item and a sample of envelopes.
FAST_MESSAGE = fastjsonschema.compile({k: v for k, v in SCHEMA.items() if k != "$id"})   # its $id is no URL to fetch
FAST_READING = fastjsonschema.compile({"$schema": SCHEMA["$schema"], "$ref": "#/definitions/reading",
                                       "definitions": SCHEMA["definitions"]})
SMALL = dict(segments=8, detectors_per_segment=3, days=2.0, incident=2, stuck=2, silent=2, anomaly=2, malformed=10,
             start=START)


@pytest.fixture(scope="module")
def sim():
    return DOMAINS["traffic"].simulate(days=3.0, seed=42, start=START)


@pytest.fixture(scope="module")
def collected(sim):
    return collect(sim)


def fast_valid(validate, message) -> bool:
    try:
        validate(message)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def epoch(moment: str) -> float | None:
    try:
        when = datetime.fromisoformat(moment)
    except ValueError:
        return None
    return when.timestamp() if when.year >= 2000 else None


def collect(sim):
    """Valid readings (schema-valid, sane time) and the count of bad items, message by message."""
    valid, bad = [], 0
    for n, (_when, step) in enumerate(sim.steps()):
        for key, value in step:
            assert key.startswith(b"urn:ngsi-ld:RoadSegment:RS-")
            try:
                message = orjson.loads(value)
            except orjson.JSONDecodeError:
                bad += 1
                continue
            if not isinstance(message, dict):
                bad += 1
                continue
            envelope = message.get("type") == "ReadingBatch"
            if envelope:
                assert fast_valid(FAST_MESSAGE, message) and (n % 50 or MESSAGE.is_valid(message))
            for reading in message["readings"] if envelope else [message]:
                checked = fast_valid(FAST_READING, reading) if envelope and n % 50 else READING.is_valid(reading)
                if checked and epoch(reading["dateObserved"]) is not None:
                    valid.append(reading)
                else:
                    bad += 1
    return valid, bad


def test_default_scenario_has_every_incident_kind_several_times_and_is_small(sim):
    kinds = [i.kind for i in sim.incidents]
    assert set(kinds) == set(INCIDENT_KINDS) and all(kinds.count(k) >= 4 for k in INCIDENT_KINDS)
    assert len({i.segment for i in sim.incidents}) == len(sim.incidents)      # one incident per segment
    assert any(i.end is None for i in sim.incidents) and any(i.end is not None for i in sim.incidents)
    for incident in sim.incidents:
        assert sim.start <= incident.start < sim.end
        assert incident.end is None or incident.start < incident.end <= sim.end
    assert {"flat", "impossible"} == {i.detail for i in sim.incidents if i.kind == "stuck"}
    assert {"slowdown", "flow_drop"} == {i.detail for i in sim.incidents if i.kind == "anomaly"}
    assert 50_000 < sim.valid_readings <= 110_000
    assert len(sim.malformed) == 10 and {m["kind"] for m in sim.malformed} == set(MALFORMED_KINDS)
    json.dumps(sim.ground_truth())


def test_messages_follow_the_schema_and_count_as_planned(sim, collected):
    valid, bad = collected
    assert len(valid) == sim.valid_readings
    assert bad == len(sim.malformed)
    assert all(0.0 <= r["occupancy"] <= 1.0 and r["intensity"] >= 0 for r in valid)
    assert len({r["id"] for r in valid}) == sim.n_detectors


def test_incidents_show_in_the_readings_as_labelled(sim, collected):
    valid, _bad = collected
    by_detector = {}
    for r in valid:
        by_detector.setdefault(r["id"], []).append((epoch(r["dateObserved"]), r))
    for incident in sim.incidents:
        series = sorted(by_detector[incident.subject], key=lambda x: x[0])
        end = sim.end + 1 if incident.end is None else incident.end
        inside = [r for t, r in series if incident.start <= t < end]
        if incident.kind == "silent":
            assert inside == [series[[t for t, _ in series].index(incident.start)][1]]   # only its last reading
            if incident.end is not None:
                assert any(t == incident.end for t, _ in series)
        elif incident.kind == "incident":
            assert inside and all(r["occupancy"] >= 0.45 for r in inside)           # the queue over it
            before = [r for t, r in series if incident.start - 3600 <= t < incident.start]
            assert max(r["occupancy"] for r in before) < 0.3
        elif incident.kind == "stuck" and incident.detail == "flat":
            values = {(r["intensity"], r["occupancy"], r.get("averageVehicleSpeed")) for r in inside}
            assert len(values) == 1 and len(inside) >= 6
        elif incident.kind == "stuck":
            assert all(r["intensity"] == 0 and r["averageVehicleSpeed"] > 0 for r in inside[1:])
        else:
            assert len(inside) >= 12
    quiet = [r for rs in by_detector.values() for _t, r in rs
             if not any(i.subject == r["id"] or i.segment == r["refRoadSegment"] for i in sim.incidents)]
    assert max(r["occupancy"] for r in quiet) < 0.3    # bounded noise: free flow never looks like a queue


def test_same_scenario_same_bytes_and_seeds_differ():
    a = simulate_traffic(TrafficScenario(seed=1, **SMALL))
    b = simulate_traffic(TrafficScenario(seed=1, **SMALL))
    c = simulate_traffic(TrafficScenario(seed=2, **SMALL))
    assert list(a.steps()) == list(b.steps())
    assert a.ground_truth() == b.ground_truth() and a.ground_truth() != c.ground_truth()
    assert [w for w, _ in a.steps()] == [START + INTERVAL_S * (k + 1) for k in range(a.n_steps)]


def test_impossible_scenarios_are_refused():
    with pytest.raises(ValueError):
        simulate_traffic(TrafficScenario(segments=3, detectors_per_segment=3, days=1, start=START))
    with pytest.raises(ValueError):
        simulate_traffic(TrafficScenario(**{**SMALL, "detectors_per_segment": 1}))
    with pytest.raises(ValueError):
        simulate_traffic(TrafficScenario(**{**SMALL, "days": 0.5}))
    assert detector_id(7) == "urn:ngsi-ld:TrafficFlowObserved:TD-0007"
