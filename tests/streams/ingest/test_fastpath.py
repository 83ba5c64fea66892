"""The fast structural check never accepts what the full schema refuses, and does accept the common shape
(of every domain, bounds and enums included)."""

import math
from functools import cache

import fastjsonschema
import orjson
import pytest
from hypothesis import given, settings, strategies as st

import schemas
from streams.domains import DOMAINS
from streams.ingest.fastpath import fast_check

READING = schemas.load("water-reading")["definitions"]["reading"]
FULL = fastjsonschema.compile({"$schema": "http://json-schema.org/draft-07/schema#", **READING},
                              formats={"date-time": lambda v: True})
FAST = fast_check(READING)


def full_accepts(obj) -> bool:
    try:
        FULL(obj)
        return True
    except fastjsonschema.JsonSchemaValueException:
        return False


values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=45), st.just("WaterConsumptionObserved"), st.just("2026-11-27T08:00:00Z"),
                   st.just(""), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                                     max_size=1))
keys = st.sampled_from(["id", "type", "dateObserved", "waterConsumption", "gatewayId", "alarmTamper",
                        "alarmFlowPersistence", "other"])
base = {"id": "m", "type": "WaterConsumptionObserved", "dateObserved": "2026-11-27T08:00:00Z",
        "waterConsumption": 1.5}


@settings(max_examples=2000, deadline=None)
@given(st.dictionaries(keys, values, max_size=6), st.booleans())
def test_fast_accept_implies_schema_accept(changes, start_from_valid):
    obj = {**base, **changes} if start_from_valid else changes
    if FAST(obj):
        assert full_accepts(obj), obj


def test_fast_path_takes_the_common_shapes():
    assert FAST(base) and FAST({**base, "gatewayId": "gw-1"}) and FAST({**base, "waterConsumption": 0})
    assert not FAST({**base, "waterConsumption": True})      # bool is not a JSON number
    assert not FAST({**base, "waterConsumption": -0.1})
    assert not FAST({**base, "id": ""}) and not FAST({k: v for k, v in base.items() if k != "id"})
    assert not FAST([base]) and not FAST("x")
    # a property it does not understand is left to the full validator (alarmFlowPersistence is a string: fine)
    assert full_accepts({**base, "alarmTamper": 1})


# --- every domain's reading definitions, bounds included -------------------------------------------------

def _definition(schema_name: str, name: str) -> dict:
    return schemas.load(schema_name)["definitions"][name]


@cache
def _fast(schema_name: str, name: str):
    return fast_check(_definition(schema_name, name))


@cache
def _full(schema_name: str, name: str):
    schema = schemas.load(schema_name)
    return fastjsonschema.compile({"$schema": schema["$schema"], "definitions": schema["definitions"],
                                   "$ref": f"#/definitions/{name}"}, formats={"date-time": lambda v: True})


#: (schema, definition, a valid reading of it): each single-object reading definition of each domain.
DEFINITIONS = [
    ("water-reading", "reading", {**base, "nominalFlow": 2.5, "maxFlowLastHour": 0.4, "deviceAlarm": "leak",
                                  "district": "d-1"}),
    ("traffic-reading", "reading", {"id": "td", "type": "TrafficFlowObserved", "dateObserved": "2026-11-27T08:00:00Z",
                                    "refRoadSegment": "rs", "intensity": 12, "occupancy": 0.1,
                                    "averageVehicleSpeed": 48.0, "laneDirection": "forward", "congested": False}),
    ("waste-reading", "reading", {"id": "bin", "type": "WasteContainer", "dateObserved": "2026-11-27T08:00:00Z",
                                  "fillingLevel": 0.4, "temperature": 12.0, "status": "ok",
                                  "nextCollectionEpoch": 1795845900}),
    ("lighting-reading", "streetlight", {"id": "l", "type": "Streetlight", "dateObserved": "2026-11-27T08:00:00Z",
                                         "powerState": "on", "powerConsumption": 58.9, "illuminanceLevel": 1.0,
                                         "powerRating": 60, "refStreetlightControlCabinet": "c"}),
    ("lighting-reading", "cabinet", {"id": "c", "type": "StreetlightControlCabinet",
                                     "dateObserved": "2026-11-27T08:00:00Z", "energyConsumed": 18234.5,
                                     "totalActivePower": 1.07, "workingMode": "automatic"}),
]


def _edge_values(definition: dict) -> list:
    """Every bound of the definition and its nearest doubles either side, every enum member."""
    found = []
    for spec in definition["properties"].values():
        for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if keyword in spec:
                bound = spec[keyword]
                found += [bound, float(bound), math.nextafter(bound, -math.inf), math.nextafter(bound, math.inf)]
        found += spec.get("enum", [])
    return found


@pytest.mark.parametrize("schema_name, name, valid", DEFINITIONS, ids=[f"{s}:{n}" for s, n, _ in DEFINITIONS])
@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_fast_accept_implies_schema_accept_in_every_domain(schema_name, name, valid, data):
    definition = _definition(schema_name, name)
    fast, full = _fast(schema_name, name), _full(schema_name, name)
    edge = st.sampled_from(_edge_values(definition))
    field_values = st.one_of(edge, values, st.floats(-1e9, 1e9, allow_nan=False), st.just(1e308), st.just(-0.0))
    field_names = st.sampled_from(sorted(definition["properties"]) + ["other"])
    changes = data.draw(st.dictionaries(field_names, field_values, max_size=4))
    obj = {**valid, **changes}
    if fast(obj):
        try:
            full(obj)
        except fastjsonschema.JsonSchemaValueException as error:
            raise AssertionError(f"fast path accepted what the schema refuses ({error.message}): {obj}")


@pytest.mark.parametrize("schema_name, name, valid", DEFINITIONS, ids=[f"{s}:{n}" for s, n, _ in DEFINITIONS])
def test_fast_path_takes_a_full_valid_reading_of_every_domain(schema_name, name, valid):
    # enums, booleans and exclusive bounds are understood, so the common shape never costs the full validator
    assert fast_check(_definition(schema_name, name))(valid)


@pytest.mark.parametrize("schema_name, name, valid, field, refused, accepted", [
    ("water-reading", "reading", DEFINITIONS[0][2], "nominalFlow", 0, 5e-324),         # exclusiveMinimum 0
    ("lighting-reading", "streetlight", DEFINITIONS[3][2], "powerRating", 0.0, 0.1),   # exclusiveMinimum 0
    ("water-reading", "reading", DEFINITIONS[0][2], "waterConsumption", 1e308, 1e7),  # maximum
])
def test_exclusive_and_inclusive_bounds_are_exact(schema_name, name, valid, field, refused, accepted):
    fast = fast_check(_definition(schema_name, name))
    assert not fast({**valid, field: refused})
    assert fast({**valid, field: accepted})


def test_an_enum_is_matched_by_value_and_type():
    fast = fast_check(_definition("lighting-reading", "streetlight"))
    light = DEFINITIONS[3][2]
    assert fast({**light, "powerState": "low"})
    assert not fast({**light, "powerState": "dim"}) and not fast({**light, "powerState": ["on"]})
    assert not fast({**light, "powerState": 1})


@pytest.mark.parametrize("domain_name", ["water", "traffic", "waste", "lighting"])
def test_every_reading_the_simulators_send_takes_the_fast_path(domain_name):
    """Throughput guard: a bound the fast path does not understand would send every reading to the
    full validator (several times slower), silently."""
    domain = DOMAINS[domain_name]
    definitions = schemas.load(domain.schema)["definitions"]
    checks = {}
    for name in ("reading", "streetlight", "cabinet"):
        spec = definitions.get(name, {})
        kind = spec.get("properties", {}).get("type", {}).get("const")
        if kind:
            checks[kind] = (fast_check(spec), _full(domain.schema, name))
    simulation = domain.simulate(days=3.0, seed=5, start=1_790_000_000.0 - 1_790_000_000.0 % 3600)
    taken = slow = 0
    for _when, step in simulation.steps():
        for _key, value in step:
            try:
                document = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            readings = document.get("readings") if isinstance(document, dict) else None
            for reading in readings if isinstance(readings, list) else [document]:
                fast, full = checks.get(reading.get("type") if isinstance(reading, dict) else None, (None, None))
                if fast is None or not _accepted(full, reading):
                    continue   # a malformed item of the simulator
                if fast(reading):
                    taken += 1
                else:
                    slow += 1
    assert taken > 1000 and slow == 0


def _accepted(full, reading) -> bool:
    try:
        full(reading)
        return True
    except fastjsonschema.JsonSchemaValueException:
        return False
