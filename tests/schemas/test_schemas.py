"""Schemas: valid draft-07, examples validate, field names follow Smart Data Models."""

import json

import pytest
from jsonschema import Draft7Validator

import schemas
from tests.conftest import SDM_DIR

EXAMPLES = schemas.SCHEMA_DIR / "examples"


@pytest.mark.parametrize("name", ["water-reading", "traffic-reading", "lighting-reading", "waste-reading", "alert"])
def test_schema_is_valid_draft07(name):
    schema = schemas.load(name)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    Draft7Validator.check_schema(schema)


@pytest.mark.parametrize("example, schema_name", [
    ("water-reading.single.json", "water-reading"),
    ("water-reading.envelope.json", "water-reading"),
    ("traffic-reading.single.json", "traffic-reading"),
    ("traffic-reading.envelope.json", "traffic-reading"),
    ("lighting-reading.single.json", "lighting-reading"),
    ("lighting-reading.envelope.json", "lighting-reading"),
    ("lighting-reading.cabinet.json", "lighting-reading"),
    ("waste-reading.single.json", "waste-reading"),
    ("waste-reading.envelope.json", "waste-reading"),
    ("alert.json", "alert"),
])
def test_examples_validate(example, schema_name):
    document = json.loads((EXAMPLES / example).read_text())
    Draft7Validator(schemas.load(schema_name), format_checker=Draft7Validator.FORMAT_CHECKER).validate(document)


def test_every_example_file_is_checked():
    assert {p.name for p in EXAMPLES.glob("*.json")} == {
        "water-reading.single.json", "water-reading.envelope.json", "alert.json",
        "lighting-reading.single.json", "lighting-reading.envelope.json", "lighting-reading.cabinet.json",
        "waste-reading.single.json", "waste-reading.envelope.json",
        "traffic-reading.single.json", "traffic-reading.envelope.json"}


@pytest.mark.parametrize("bad", [
    {"id": "m", "type": "WaterConsumptionObserved", "dateObserved": "2026-01-01T00:00:00Z"},
    {"id": "m", "type": "WaterConsumptionObserved", "dateObserved": "2026-01-01T00:00:00Z", "waterConsumption": -1},
    {"id": "m", "type": "Other", "dateObserved": "2026-01-01T00:00:00Z", "waterConsumption": 1},
    {"type": "ReadingBatch", "gatewayId": "g", "readings": []},
    {"type": "ReadingBatch", "readings": [{}]},
])
def test_schema_refuses_bad_documents(bad):
    assert not Draft7Validator(schemas.load("water-reading")).is_valid(bad)


def test_water_fields_follow_smart_data_models():
    ours = schemas.load("water-reading")["definitions"]["reading"]["properties"]
    sdm = json.loads((SDM_DIR / "WaterConsumptionObserved" / "schema.json").read_text())
    sdm_names = set()
    for part in sdm.get("allOf", [sdm]):
        sdm_names |= set(part.get("properties", {}))
    # what the model lacks (dateObserved as in other SDM models)
    additions = {"gatewayId", "dateObserved", "maxFlowLastHour", "nominalFlow", "district", "deviceAlarm"}
    assert set(ours) - additions <= sdm_names | {"id", "type"}
    assert {"waterConsumption", "alarmTamper", "alarmInProgress"} <= set(ours) & sdm_names


def test_lighting_fields_follow_smart_data_models():
    definitions = schemas.load("lighting-reading")["definitions"]
    additions = {"gatewayId", "dateObserved"}   # what the models lack (dateObserved as in other SDM models)
    for definition, model, required in (("streetlight", "Streetlight", {"powerState", "powerConsumption",
                                                                         "illuminanceLevel", "powerRating",
                                                                         "refStreetlightControlCabinet"}),
                                        ("cabinet", "StreetlightControlCabinet", {"energyConsumed",
                                                                                   "totalActivePower"})):
        ours = set(definitions[definition]["properties"])
        sdm = json.loads((SDM_DIR / model / "schema.json").read_text())
        sdm_names = set()
        for part in sdm.get("allOf", [sdm]):
            sdm_names |= set(part.get("properties", {}))
        assert ours - additions <= sdm_names | {"id", "type"}, model
        assert required <= ours & sdm_names, model


@pytest.mark.parametrize("bad", [
    {"id": "l", "type": "Streetlight", "dateObserved": "2026-01-01T00:00:00Z", "powerState": "dim",
     "refStreetlightControlCabinet": "c"},
    {"id": "l", "type": "Streetlight", "dateObserved": "2026-01-01T00:00:00Z", "powerState": "on",
     "refStreetlightControlCabinet": "c", "illuminanceLevel": 1.5},
    {"id": "l", "type": "Streetlight", "dateObserved": "2026-01-01T00:00:00Z", "powerState": "on"},
    {"id": "c", "type": "StreetlightControlCabinet", "dateObserved": "2026-01-01T00:00:00Z"},
    {"id": "c", "type": "Lamp", "dateObserved": "2026-01-01T00:00:00Z", "energyConsumed": 1},
])
def test_lighting_schema_refuses_bad_readings(bad):
    assert not Draft7Validator(schemas.load("lighting-reading")).is_valid(bad)
