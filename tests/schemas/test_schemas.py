"""Schemas: valid draft-07, examples validate, field names follow Smart Data Models."""

import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

import schemas
from tests.conftest import SDM_DIR

EXAMPLES = schemas.SCHEMA_DIR / "examples"


@pytest.mark.parametrize("name", ["water-reading", "alert"])
def test_schema_is_valid_draft07(name):
    schema = schemas.load(name)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    Draft7Validator.check_schema(schema)


@pytest.mark.parametrize("example, schema_name", [
    ("water-reading.single.json", "water-reading"),
    ("water-reading.envelope.json", "water-reading"),
    ("alert.json", "alert"),
])
def test_examples_validate(example, schema_name):
    document = json.loads((EXAMPLES / example).read_text())
    Draft7Validator(schemas.load(schema_name), format_checker=Draft7Validator.FORMAT_CHECKER).validate(document)


def test_every_example_file_is_checked():
    assert {p.name for p in EXAMPLES.glob("*.json")} == {
        "water-reading.single.json", "water-reading.envelope.json", "alert.json"}


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
    additions = {"gatewayId", "dateObserved"}   # what the model lacks (dateObserved as in other SDM models)
    assert set(ours) - additions <= sdm_names | {"id", "type"}
    assert {"waterConsumption", "alarmTamper", "alarmInProgress"} <= set(ours) & sdm_names
