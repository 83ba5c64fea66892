"""Tests of the synthetic waste city (streams.simulate.waste)."""

import json
from datetime import datetime

import jsonschema
import orjson
import pytest

import schemas
from streams.domains import DOMAINS
from streams.simulate.waste import INCIDENT_KINDS, MALFORMED_KINDS, WasteScenario, simulate_waste
from tests.conftest import sdm_properties

START = 1_767_225_600  # 2026-01-01T00:00:00Z
SCHEMA = schemas.load("waste-reading")
READING = jsonschema.Draft7Validator({"$ref": "#/definitions/reading", "definitions": SCHEMA["definitions"]},
                                     format_checker=jsonschema.FormatChecker())
MESSAGE = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def sim():
    return DOMAINS["waste"].simulate(days=3.0, seed=42, start=START)


def parses(moment: str) -> bool:
    try:
        return datetime.fromisoformat(moment).year >= 2000
    except ValueError:
        return False


def collect(sim):
    valid, bad = [], 0
    for _when, step in sim.steps():
        for key, value in step:
            assert key.startswith(b"district-")
            try:
                message = orjson.loads(value)
            except orjson.JSONDecodeError:
                bad += 1
                continue
            readings = message["readings"] if message.get("type") == "ReadingBatch" else [message]
            if message.get("type") == "ReadingBatch":
                assert MESSAGE.is_valid(message)
            for reading in readings:
                if READING.is_valid(reading) and parses(reading["dateObserved"]):
                    valid.append(reading)
                else:
                    bad += 1
    return valid, bad


@pytest.fixture(scope="module")
def collected(sim):
    """collect(sim), once for the tests that only read it."""
    return collect(sim)


def test_default_scenario_has_every_incident_kind_several_times_and_is_small(sim):
    kinds = [i.kind for i in sim.incidents]
    assert set(kinds) == set(INCIDENT_KINDS) and all(kinds.count(k) >= 4 for k in INCIDENT_KINDS)
    assert len({(i.kind, i.subject) for i in sim.incidents}) == len(sim.incidents)
    assert any(i.end is None for i in sim.incidents) and any(i.end is not None for i in sim.incidents)
    for incident in sim.incidents:
        assert sim.start <= incident.start < sim.end
        assert incident.end is None or incident.start < incident.end < sim.end
    assert 10_000 < sim.valid_readings <= 100_000
    assert len(sim.malformed) == 10 and {m["kind"] for m in sim.malformed} == set(MALFORMED_KINDS)
    json.dumps(sim.ground_truth())


def test_messages_follow_the_schema_and_count_as_planned(sim, collected):
    valid, bad = collected
    assert len(valid) == sim.valid_readings
    assert bad == len(sim.malformed)
    levels = [r["fillingLevel"] for r in valid]
    assert 0.0 < min(levels) and max(levels) < 1.0
    assert all("nextCollectionEpoch" in r and "temperature" in r for r in valid)


def test_same_scenario_same_bytes_and_seeds_differ():
    a = simulate_waste(WasteScenario(bins=40, days=2.5, districts=2, seed=1, start=START, overflow=1,
                                     full_before_collection=1, fire=1, collection_late=1, sensor_fault=1))
    b = simulate_waste(WasteScenario(bins=40, days=2.5, districts=2, seed=1, start=START, overflow=1,
                                     full_before_collection=1, fire=1, collection_late=1, sensor_fault=1))
    c = simulate_waste(WasteScenario(bins=40, days=2.5, districts=2, seed=2, start=START, overflow=1,
                                     full_before_collection=1, fire=1, collection_late=1, sensor_fault=1))
    assert list(a.steps()) == list(b.steps()) != list(c.steps())


def test_normal_bins_stay_clear_of_every_threshold(sim):
    incident_bins = {i.subject for i in sim.incidents}
    for b in sim.bins:
        if sim.bin_ids[b.index] in incident_bins:
            continue
        seen = b.reports
        assert b.level[seen].max() < 0.6 and b.temperature[seen].max() < 30.0


def test_bad_scenarios_are_refused():
    with pytest.raises(ValueError):
        simulate_waste(WasteScenario(days=1.0, start=START))
    with pytest.raises(ValueError):
        simulate_waste(WasteScenario(bins=10, start=START))


def test_waste_fields_follow_smart_data_models():
    ours = set(SCHEMA["definitions"]["reading"]["properties"])
    names = set(sdm_properties("WasteContainer"))
    assert ours - {"dateObserved", "gatewayId", "nextCollectionEpoch"} <= names | {"id", "type"}
    assert {"fillingLevel", "temperature", "status", "dateLastEmptying"} <= ours & names


def test_silent_bins_send_nothing_between_start_and_end(sim, collected):
    valid, _bad = collected
    times: dict[str, list[float]] = {}
    for reading in valid:
        times.setdefault(reading["id"], []).append(datetime.fromisoformat(reading["dateObserved"]).timestamp())
    silences = [i for i in sim.incidents if i.kind == "silent"]
    assert len(silences) == 5 and [i.end is None for i in silences] == [False, True, False, True, False]
    cadence = {sim.bin_ids[b.index]: b.cadence for b in sim.bins}
    assert {cadence[i.subject] for i in silences} == {1, 2}    # hourly and two-hourly bins
    for incident in silences:
        seen = sorted(times[incident.subject])
        assert incident.start in seen
        after = [t for t in seen if t > incident.start]
        assert (after and after[0] == incident.end) if incident.end is not None else len(after) == 0
        if incident.end is not None:    # 6-10 reports missed
            assert 7 <= (incident.end - incident.start) / (cadence[incident.subject] * 3600) <= 11
    without = DOMAINS["waste"].simulate(days=3.0, seed=42, start=START, silent=0)
    assert [i for i in sim.incidents if i.kind != "silent"] == without.incidents
