"""The fast structural check never accepts what the full schema refuses, and does accept the common shape."""

import fastjsonschema
from hypothesis import given, settings, strategies as st

import schemas
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
