"""streams.export: entities from simulated readings of every domain and from real alert events, validated
against the Smart Data Models' own JSON Schemas (offline, tests/streams/export/sdm.py)."""

from __future__ import annotations

import itertools
from functools import cache

import orjson
import pytest

from streams.pipeline.positions import snap_to_cell

from streams.alerts import alert_event
from streams.detectors import REGISTRY
from streams.detectors.base import Transition
from streams.domains import DOMAINS
from streams.export.entities import CORE_CONTEXT, MODEL_CONTEXTS, alert_entity, normalized, observation_entity
from streams.export.sources import ExportReport, message_entities
from streams.pipeline import DomainPipeline
from tests.streams.detectors.corpus import PSEUDONYMS, SETTINGS, raw_messages, simulation
from tests.streams.export import sdm

#: Steps of each domain's simulated city turned into entities (every kind of reading shows up in them).
STEPS = 6
DIJON = [5.0415, 47.3220]


@cache
def simulated(domain: str) -> tuple[bytes, ...]:
    """The first steps' messages of the domain's small simulated city (the detector corpus)."""
    sim = simulation(DOMAINS[domain])
    return tuple(value for _when, step in itertools.islice(sim.steps(), STEPS) for _key, value in step)


def with_location(value: bytes) -> bytes:
    """The message with the same GeoJSON Point on every reading (the simulated city places each sensor)."""
    document = orjson.loads(value)
    for reading in document["readings"] if document["type"] == "ReadingBatch" else [document]:
        reading["location"] = {"type": "Point", "coordinates": DIJON}
    return orjson.dumps(document)


def without_location(value: bytes) -> bytes:
    document = orjson.loads(value)
    for reading in document["readings"] if document["type"] == "ReadingBatch" else [document]:
        reading.pop("location", None)
    document.pop("location", None)
    return orjson.dumps(document)


def entities_of(messages, report=None) -> list[dict]:
    report = report if report is not None else ExportReport()
    return list(message_entities(((f"message {i}", m) for i, m in enumerate(messages)), lambda: PSEUDONYMS, report))


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_simulated_readings_with_a_location_are_valid_smart_data_models_entities(domain):
    report = ExportReport()
    entities = entities_of([with_location(m) for m in simulated(domain)], report)
    expected_type = DOMAINS[domain].reading_type
    assert len(entities) > 20 and report.refused == []
    assert {e["type"] for e in entities} == {expected_type}
    for entity in entities:
        assert sdm.errors(entity) == [], entity
        if domain == "water":       # a household's position leaves only as its 250 m cell's centre
            lon, lat = snap_to_cell([DIJON[0]], [DIJON[1]])
            assert entity["location"] == {"type": "Point", "coordinates": [float(lon[0]), float(lat[0])]}
            assert entity["location"]["coordinates"] != DIJON
        else:
            assert entity["location"] == {"type": "Point", "coordinates": DIJON}
        assert entity["@context"] == [MODEL_CONTEXTS[expected_type], CORE_CONTEXT]
        assert entity["id"].startswith(f"urn:ngsi-ld:{expected_type}:")
    # lighting's cabinet readings have no model mapping here: counted, not exported
    assert report.readings == len(entities) + sum(report.skipped.values())
    assert set(report.skipped) <= {"StreetlightControlCabinet"}


def test_without_a_location_only_the_models_that_require_one_miss_it():
    for domain in DOMAINS:
        entities = entities_of([without_location(m) for m in simulated(domain)])
        assert entities and all("location" not in e for e in entities)
        problems = {problem for e in entities for problem in sdm.errors(e)}
        if domain in ("water", "traffic"):
            assert problems == set(), domain
        else:   # WasteContainer and Streetlight require a location: the only thing missing
            assert problems == {"(entity): 'location' is a required property"}, domain


def test_water_entities_name_the_household_by_its_pseudonym_never_its_meter_id():
    messages = simulated("water")
    raw_ids = {r["id"] for m in messages for r in orjson.loads(m).get("readings", [orjson.loads(m)])}
    entities = entities_of(messages)
    text = orjson.dumps(entities).decode()
    assert raw_ids and not any(raw in text for raw in raw_ids)
    assert {e["id"] for e in entities} == {f"urn:ngsi-ld:WaterConsumptionObserved:{PSEUDONYMS.meter(raw)}"
                                         for raw in raw_ids}


def test_reading_values_follow_the_models_units_and_names():
    water = observation_entity("water", {"id": "m", "type": "WaterConsumptionObserved",
                                         "dateObserved": "2026-01-01T00:00:00+01:00", "waterConsumption": 191.999,
                                         "alarmFlowPersistence": "free text", "nominalFlow": 2.5}, "wm-1")
    assert water["waterConsumption"] == 191 and "alarmFlowPersistence" not in water   # whole m3; enum only
    assert sdm.errors(water) == []
    bin_ = observation_entity("waste", {"id": "urn:ngsi-ld:WasteContainer:B1", "type": "WasteContainer",
                                        "dateObserved": "2026-01-01T00:00:00Z", "fillingLevel": 0.5,
                                        "nextCollectionEpoch": 1767229200, "status": "burning"}, "urn:ngsi-ld:WasteContainer:B1")
    assert bin_["id"] == "urn:ngsi-ld:WasteContainer:B1"        # already a URN: kept, not prefixed again
    assert bin_["nextActuationDeadline"] == "2026-01-01T01:00:00Z" and bin_["status"] == "burning"
    cabinet = {"id": "c", "type": "StreetlightControlCabinet", "dateObserved": "2026-01-01T00:00:00Z",
               "energyConsumed": 1.0}
    assert observation_entity("lighting", cabinet, "c") is None
    not_a_point = observation_entity("traffic", {"id": "d", "type": "TrafficFlowObserved", "location": {
        "type": "Point", "coordinates": ["5", 47]}}, "d")
    assert "location" not in not_a_point
    with pytest.raises(ValueError, match="no Smart Data Model for domain 'air'"):
        observation_entity("air", {}, "x")


@cache
def pipeline_alerts(domain: str) -> tuple[dict, ...]:
    """Alert events the real pipeline raises and clears on the domain's corpus."""
    sim = simulation(DOMAINS[domain])
    pipeline = DomainPipeline(DOMAINS[domain], SETTINGS, PSEUDONYMS, clock=lambda: sim.end + 3600)
    return tuple(alert.event for alert in pipeline.process(raw_messages(sim)).alerts)


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_real_alert_events_become_valid_sdm_alerts(domain):
    events = pipeline_alerts(domain)
    assert len(events) >= 5
    by_id: dict[str, list[dict]] = {}
    for event in events:
        entity = alert_entity(event)
        assert sdm.errors(entity) == [], (event, entity)
        assert entity["id"] == f"urn:ngsi-ld:Alert:{event['data']['episodeId']}"
        assert entity["dateIssued"] == event["time"] and entity["validFrom"] == event["data"]["episodeStart"]
        assert entity["data"]["detector"] == event["data"]["detector"]
        assert ("validTo" in entity) == (event["data"]["state"] == "cleared")
        by_id.setdefault(entity["id"], []).append(entity)
    if domain == "water":   # household alerts point at the meter's observation entity, by pseudonym
        meters = [e for e in events if e["data"]["subjectKind"] == "water_meter"]
        assert meters and all(alert_entity(e)["alertSource"] == f"urn:ngsi-ld:WaterConsumptionObserved:{e['subject']}"
                              for e in meters)
    # an episode's raised and cleared events upsert the same entity
    assert any(len(versions) == 2 for versions in by_id.values())


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_detectors_alerts_map_to_the_models_category_and_severity(name):
    declaration = REGISTRY[name].declaration
    subject = "wm-" + "0" * 32 if declaration.subject_kind == "water_meter" else "S-1"
    for state in ("raised", "cleared"):
        event = alert_event(Transition(name, subject, state, 1767225600.0, 1767229200.0, {"k": 1}), declaration)
        entity = alert_entity(event)
        assert sdm.errors(entity) == [], entity


def test_the_format_checker_is_live():
    """date-time and uri formats are asserted, so a valid entity above is valid in its formats too."""
    event = pipeline_alerts("waste")[0]
    broken = alert_entity(event) | {"dateIssued": "yesterday at noon"}
    assert any("is not a 'date-time'" in p for p in sdm.errors(broken))


def test_welfare_alerts_are_never_exported():
    welfare = [e for e in pipeline_alerts("water") if e["data"]["detector"] == "water.no_use_24h"]
    general = [e for e in pipeline_alerts("water") if e["data"]["detector"] == "water.burst"]
    assert welfare and general
    report = ExportReport()
    entities = entities_of([orjson.dumps(e) for e in welfare + general], report)
    assert report.restricted == len(welfare) and report.alerts == len(welfare) + len(general)
    assert {e["data"]["detector"] for e in entities} == {"water.burst"}


def test_normalized_form_wraps_every_attribute():
    entity = entities_of([with_location(m) for m in simulated("traffic")])[0]
    form = normalized(entity)
    assert form["id"] == entity["id"] and form["type"] == entity["type"] and form["@context"] == entity["@context"]
    assert form["refRoadSegment"] == {"type": "Relationship", "object": entity["refRoadSegment"]}
    assert form["location"] == {"type": "GeoProperty", "value": entity["location"]}
    assert form["intensity"] == {"type": "Property", "value": entity["intensity"], "observedAt": entity["dateObserved"]}
    assert form["dateObserved"] == {"type": "Property", "value": entity["dateObserved"]}
    assert set(form) == set(entity)
    local = normalized({"id": "x", "type": "WasteContainer", "dateObserved": "2026-01-01T01:00:00+01:00",
                        "fillingLevel": 0.5})
    assert local["fillingLevel"]["observedAt"] == "2026-01-01T00:00:00Z"   # NGSI-LD times are UTC


def test_refused_readings_are_reported_not_exported():
    good = simulated("waste")[0]
    report = ExportReport()
    entities = entities_of([good, b"{not json", b'{"type": "Unknown"}',
                            b'{"id": "b", "type": "WasteContainer", "dateObserved": "2026-01-01T00:00:00Z", '
                            b'"fillingLevel": 7}'], report)
    assert len(entities) == report.entities == len(orjson.loads(good).get("readings", [1]))
    reasons = sorted((where, reason) for where, reason, _detail in report.refused)
    assert reasons == [("message 1", "unknown"), ("message 2", "unknown"), ("message 3", "value_out_of_range")]
