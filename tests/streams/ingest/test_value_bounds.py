"""Physically absurd values: declared as bounds in the schemas, refused as ``value_out_of_range``.

A number of the right type outside its schema's minimum/maximum (inclusive or
exclusive) is a dead letter with its own reason, not the generic ``schema``; a
timestamp at epoch zero stays ``timestamp_out_of_range``; the bound itself is
accepted; an envelope's other readings are kept.
"""

import numpy as np
import orjson
import pytest

import schemas
from streams.domains import DOMAINS
from streams.ingest import RawMessage, decode

NOW = 1_800_000_000.0
WHEN = "2026-11-27T08:00:00Z"

VALID = {
    "water": {"id": "m", "type": "WaterConsumptionObserved", "dateObserved": WHEN, "waterConsumption": 182.437,
              "maxFlowLastHour": 0.42, "nominalFlow": 2.5},
    "traffic": {"id": "td", "type": "TrafficFlowObserved", "dateObserved": WHEN, "refRoadSegment": "rs",
                "intensity": 92, "occupancy": 0.138, "averageVehicleSpeed": 46.3, "laneId": 1},
    "waste": {"id": "bin", "type": "WasteContainer", "dateObserved": WHEN, "fillingLevel": 0.437,
              "temperature": 11.8, "nextCollectionEpoch": 1795845900},
    "lighting": {"id": "l", "type": "Streetlight", "dateObserved": WHEN, "powerState": "on",
                 "powerConsumption": 58.9, "illuminanceLevel": 1.0, "powerRating": 60,
                 "refStreetlightControlCabinet": "c"},
    "lighting-cabinet": {"id": "c", "type": "StreetlightControlCabinet", "dateObserved": WHEN,
                         "energyConsumed": 18234.52, "totalActivePower": 1.07},
}

ABSURD = [
    ("water", "waterConsumption", 1e308),        # the index of no meter
    ("water", "waterConsumption", -0.001),
    ("water", "waterConsumption", 10_000_000.001),
    ("water", "nominalFlow", 0),                  # exclusiveMinimum: a meter that passes no water
    ("water", "nominalFlow", -2.5),
    ("water", "maxFlowLastHour", -1.0),
    ("water", "maxFlowLastHour", 1e9),
    ("water", "alarmTamper", 7),
    ("traffic", "intensity", -1),                 # a negative count
    ("traffic", "intensity", 1e12),
    ("traffic", "averageVehicleSpeed", 1200.0),
    ("traffic", "occupancy", 1.5),
    ("traffic", "averageHeadwayTime", 1e7),
    ("traffic", "laneId", 0),
    ("waste", "fillingLevel", 7.0),               # 700 % full
    ("waste", "fillingLevel", -0.2),
    ("waste", "temperature", 5000.0),
    ("waste", "nextCollectionEpoch", 0),
    ("lighting", "powerConsumption", 1e308),
    ("lighting", "powerConsumption", 50_000.0),   # 50 kW from one lamp
    ("lighting", "powerRating", 0),               # exclusiveMinimum: power / rating undefined
    ("lighting", "illuminanceLevel", 1.01),
    ("lighting-cabinet", "energyConsumed", -1.0),
    ("lighting-cabinet", "energyConsumed", 1e12),
    ("lighting-cabinet", "totalActivePower", 1e6),
]

AT_THE_BOUND = [
    ("water", "waterConsumption", 10_000_000), ("water", "waterConsumption", 0), ("water", "nominalFlow", 1e-9),
    ("water", "nominalFlow", 10_000), ("traffic", "intensity", 0), ("traffic", "averageHeadwayTime", 86400),
    ("waste", "fillingLevel", 1), ("waste", "temperature", 400), ("lighting", "powerConsumption", 10_000),
    ("lighting", "powerRating", 0.5), ("lighting-cabinet", "totalActivePower", 1000),
]


def domain_of(case: str):
    return DOMAINS[case.split("-")[0]]


def message(document, offset=0) -> RawMessage:
    return RawMessage(orjson.dumps(document), "readings", 0, offset, b"k")


@pytest.mark.parametrize("case, field, value", ABSURD, ids=[f"{c}.{f}={v}" for c, f, v in ABSURD])
def test_an_absurd_value_is_its_own_reason(case, field, value):
    batch = decode([message({**VALID[case], field: value})], domain_of(case), now=NOW)
    assert len(batch) == 0
    assert [d.reason for d in batch.dead_letters] == ["value_out_of_range"]
    assert field in batch.dead_letters[0].detail   # the detail names the field


@pytest.mark.parametrize("case, field, value", AT_THE_BOUND, ids=[f"{c}.{f}={v}" for c, f, v in AT_THE_BOUND])
def test_the_bound_itself_is_accepted(case, field, value):
    batch = decode([message({**VALID[case], field: value})], domain_of(case), now=NOW)
    assert batch.dead_letters == [] and len(batch) == 1


@pytest.mark.parametrize("case", sorted(VALID))
def test_an_absurd_reading_in_an_envelope_costs_only_itself(case):
    absurd = [(f, v) for c, f, v in ABSURD if c == case]
    readings = [{**VALID[case], "id": "before"}]
    readings += [{**VALID[case], "id": f"bad-{i}", field: value} for i, (field, value) in enumerate(absurd)]
    readings += [{**VALID[case], "id": "after"}]
    envelope = {"type": "ReadingBatch", "gatewayId": "gw", "readings": readings}
    batch = decode([message(envelope)], domain_of(case), now=NOW)
    assert batch.subject_ids == ["before", "after"]
    assert sorted((d.reading_index, d.reason) for d in batch.dead_letters) == [
        (i + 1, "value_out_of_range") for i in range(len(absurd))]


@pytest.mark.parametrize("case", sorted(VALID))
def test_epoch_zero_stays_a_timestamp_reason(case):
    batch = decode([message({**VALID[case], "dateObserved": "1970-01-01T00:00:00Z"})], domain_of(case), now=NOW)
    assert [d.reason for d in batch.dead_letters] == ["timestamp_out_of_range"]


@pytest.mark.parametrize("case", sorted(VALID))
def test_a_wrong_type_is_still_schema(case):
    field = next(f for c, f, _ in ABSURD if c == case)
    batch = decode([message({**VALID[case], field: "12"})], domain_of(case), now=NOW)
    assert [d.reason for d in batch.dead_letters] == ["schema"]


def _numeric_properties():
    for name in ("water-reading", "traffic-reading", "waste-reading", "lighting-reading"):
        for definition_name, definition in schemas.load(name)["definitions"].items():
            for prop, spec in definition.get("properties", {}).items():
                if spec.get("type") in ("number", "integer"):
                    yield f"{name}:{definition_name}.{prop}", spec


@pytest.mark.parametrize("where, spec", list(_numeric_properties()), ids=[w for w, _ in _numeric_properties()])
def test_every_numeric_property_declares_both_bounds_and_why(where, spec):
    assert {"minimum", "exclusiveMinimum"} & set(spec), f"{where} has no lower bound"
    assert {"maximum", "exclusiveMaximum"} & set(spec), f"{where} has no upper bound"
    assert spec.get("$comment"), f"{where} does not say why its bounds are what they are"


def test_every_reading_schema_is_covered():
    assert {w.split(":")[0] for w, _ in _numeric_properties()} == {d.schema for d in DOMAINS.values()}


# --- location: its shape is the schema's, its range the value checks' ----------------------------------------

def point(longitude, latitude, *more) -> dict:
    return {"type": "Point", "coordinates": [longitude, latitude, *more]}


OFF_THE_GLOBE = [(180.000001, 47.32), (-180.5, 47.32), (5.04, 90.0000001), (5.04, -91), (47.32, 5.04e3),
                 (1e308, 0), (0, -1e308), (2**63, 0)]
ON_THE_EDGE = [(180, 90), (-180, -90), (180.0, 0.0), (0, -90.0), (-0.0, 0.0)]


@pytest.mark.parametrize("case", sorted(VALID))
@pytest.mark.parametrize("longitude, latitude", OFF_THE_GLOBE)
def test_a_location_off_the_globe_is_out_of_range(case, longitude, latitude):
    batch = decode([message({**VALID[case], "location": point(longitude, latitude)})], domain_of(case), now=NOW)
    assert len(batch) == 0
    assert [d.reason for d in batch.dead_letters] == ["value_out_of_range"]
    assert "location" in batch.dead_letters[0].detail and "latitude -90..90" in batch.dead_letters[0].detail


@pytest.mark.parametrize("case", sorted(VALID))
@pytest.mark.parametrize("longitude, latitude", ON_THE_EDGE)
def test_a_location_on_the_edge_is_kept(case, longitude, latitude):
    batch = decode([message({**VALID[case], "location": point(longitude, latitude, 12.0)})], domain_of(case),
                   now=NOW)
    assert batch.dead_letters == [] and len(batch) == 1
    assert (batch.longitude[0], batch.latitude[0]) == (longitude, latitude)


@pytest.mark.parametrize("literal", [b"NaN", b"-Infinity", b"1e999"])
def test_a_non_finite_coordinate_is_non_finite(literal):
    located = orjson.dumps({**VALID["water"], "location": point(5.04, 47.32)})
    value = located.replace(b"47.32", literal)
    envelope = b'{"type":"ReadingBatch","gatewayId":"gw","readings":[' + orjson.dumps(VALID["water"]) + b"," \
        + value + b"]}"
    for raw, kept in ((value, 0), (envelope, 1)):
        batch = decode([RawMessage(raw, "readings", 0, 0, b"k")], DOMAINS["water"], now=NOW)
        assert len(batch) == kept and [d.reason for d in batch.dead_letters] == ["non_finite"]


def test_a_location_off_the_globe_in_an_envelope_costs_only_its_reading():
    readings = [{**VALID["water"], "id": "before", "location": point(5.04, 47.32)},
                {**VALID["water"], "id": "off", "location": point(5.04, 95.0)},
                {**VALID["water"], "id": "after"}]
    batch = decode([message({"type": "ReadingBatch", "gatewayId": "gw", "readings": readings})], DOMAINS["water"],
                   now=NOW)
    assert batch.subject_ids == ["before", "after"]
    assert [(d.reading_index, d.reason) for d in batch.dead_letters] == [(1, "value_out_of_range")]
    assert batch.longitude[0] == 5.04 and batch.latitude[0] == 47.32 and np.isnan(batch.longitude[1])


def test_an_envelope_location_off_the_globe_is_the_envelopes_dead_letter():
    good = {"type": "ReadingBatch", "gatewayId": "gw-a", "location": point(5.03, 47.31), "readings": [VALID["water"]]}
    off = {**good, "gatewayId": "gw-b", "location": point(-181, 47.31)}
    batch = decode([message(good, 0), message(off, 1)], DOMAINS["water"], now=NOW)
    assert len(batch) == 1 and batch.gateway_locations == {"gw-a": (5.03, 47.31)}
    assert [(d.source.offset, d.reading_index, d.reason) for d in batch.dead_letters] == [(1, -1, "value_out_of_range")]
    assert batch.dead_letters[0].detail.startswith("batch envelope: location")
