"""Schemas: valid draft-07, examples validate, field names follow Smart Data Models."""

import json

import pytest
from jsonschema import Draft7Validator

import schemas
from tests.conftest import sdm_properties

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
    sdm_names = set(sdm_properties("WaterConsumptionObserved"))
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
        sdm_names = set(sdm_properties(model))
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


# --- location: a GeoJSON Point, the Smart Data Models' key-values form ---------------------------------------

READING_SCHEMAS = ["water-reading", "traffic-reading", "lighting-reading", "waste-reading"]
SDM_MODELS = ["WaterConsumptionObserved", "Streetlight", "StreetlightControlCabinet", "WasteContainer"]


def _location_validator(name: str) -> Draft7Validator:
    schema = schemas.load(name)
    return Draft7Validator({"$schema": schema["$schema"], "definitions": schema["definitions"],
                            "$ref": "#/definitions/location"})


def _sdm_location_validator(model: str) -> Draft7Validator:
    # draft 2020-12 in the models; the GeoJSON geometries use nothing draft-07 reads otherwise
    return Draft7Validator(sdm_properties(model)["location"])


def test_every_reading_and_envelope_may_carry_the_one_location_definition():
    definitions = [schemas.load(name)["definitions"] for name in READING_SCHEMAS]
    assert all(d["location"] == definitions[0]["location"] for d in definitions)   # one definition, four copies
    for name, d in zip(READING_SCHEMAS, definitions):
        kinds = [ref["$ref"].rsplit("/", 1)[1] for ref in d["reading"].get("oneOf", ())] or ["reading"]
        for kind in [*kinds, "envelope"]:
            assert d[kind]["properties"]["location"] == {"$ref": "#/definitions/location"}, (name, kind)
            assert "location" not in d[kind].get("required", ()), (name, kind)


POINTS = [[5.04, 47.32], [-4.128871, 50.95822], [180, 90], [-180, -90], [0, 0], [5.04, 47.32, 245.5],
          [-0.0, 1e-9]]
NOT_POINTS = [{"type": "Point"}, {"coordinates": [5.04, 47.32]}, {"type": "Point", "coordinates": [5.04]},
              {"type": "Point", "coordinates": [1, 2, 3, 4]}, {"type": "Point", "coordinates": ["5.04", "47.32"]},
              {"type": "Point", "coordinates": [True, 47.32]}, {"type": "Point", "coordinates": {"lon": 5}},
              {"type": "LineString", "coordinates": [[5.04, 47.32], [5.05, 47.33]]},
              {"type": "point", "coordinates": [5.04, 47.32]}, [5.04, 47.32], "47.32,5.04", None]


@pytest.mark.parametrize("name", READING_SCHEMAS)
def test_location_takes_points_and_refuses_other_shapes(name):
    validator = _location_validator(name)
    for coordinates in POINTS:
        assert validator.is_valid({"type": "Point", "coordinates": coordinates}), coordinates
    for bad in NOT_POINTS:
        assert not validator.is_valid(bad), bad


@pytest.mark.parametrize("model", SDM_MODELS)
def test_our_points_are_the_smart_data_models_location(model):
    ours = _location_validator("water-reading")
    sdm = _sdm_location_validator(model)
    candidates = [{"type": "Point", "coordinates": c} for c in POINTS] + NOT_POINTS[:-3] + [
        {"type": "Point", "coordinates": [5.04, 47.32], "bbox": [5.0, 47.3, 5.1, 47.4]}]
    accepted = [c for c in candidates if ours.is_valid(c)]
    assert len(accepted) == len(POINTS) + 1
    for location in accepted:       # whatever we accept, every model accepts as its location
        assert sdm.is_valid(location), (model, location)


def test_ranges_are_the_pipelines_value_checks_not_the_schemas():
    # longitude/latitude bounds are checked vectorised at decode (value_out_of_range), as documented
    definition = schemas.load("water-reading")["definitions"]["location"]
    assert "-180..180" in definition["description"] and "-90..90" in definition["description"]
    assert _location_validator("water-reading").is_valid({"type": "Point", "coordinates": [200.0, 95.0]})
