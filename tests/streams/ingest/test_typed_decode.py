"""The typed decoder accepts and refuses exactly what the schema does, in every domain.

Three views of one decision, compared on a corpus of valid and invalid messages (the
simulators' traffic, every bound and enum of every definition, wrong types, missing and
extra fields, duplicate keys, odd numbers and times, envelopes with one bad reading):

- the published schema, validated by ``jsonschema`` (an independent implementation); ``format``
  is an annotation in draft-07, asserted by the pipeline for the event time ``dateObserved``
  only, as what :func:`streams.timeparse.reading_time` reads;
- the reference path alone (the typed decoder switched off);
- :func:`streams.ingest.decode` as it runs, typed decoder first.

The last two must give the same batch: the same readings, columns, groups, times and dead
letters (reason, detail, where).
"""

from __future__ import annotations

import json
import math

import jsonschema
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import schemas
from streams.domains import DOMAINS
from streams.ingest import RawMessage, decode
from streams.ingest.typed import typed_decoder

decode_module = __import__("sys").modules["streams.ingest.decode"]   # the module (the package exports the function)
from streams.timeparse import reading_time

NOW = 1_790_100_000.0
TIME = "2026-09-21T08:00:00Z"      # shortly before NOW


def _reference(messages, domain, now=NOW):
    original = decode_module.typed_decoder
    decode_module.typed_decoder = lambda _schema: None
    try:
        return decode(messages, domain, now=now)
    finally:
        decode_module.typed_decoder = original


def _same_batch(a, b) -> None:
    assert a.subject_ids == b.subject_ids
    np.testing.assert_array_equal(a.ts, b.ts)
    np.testing.assert_array_equal(a.longitude, b.longitude)
    np.testing.assert_array_equal(a.latitude, b.latitude)
    assert np.signbit(a.longitude).tolist() == np.signbit(b.longitude).tolist()   # -0.0 stays -0.0
    assert a.gateway_locations == b.gateway_locations
    assert a.columns.keys() == b.columns.keys()
    for name in a.columns:
        np.testing.assert_array_equal(a.columns[name], b.columns[name], err_msg=name)
    assert a.groups == b.groups
    assert [a.origin(i)[0].offset for i in range(len(a))] == [b.origin(i)[0].offset for i in range(len(b))]
    assert [a.origin(i)[1] for i in range(len(a))] == [b.origin(i)[1] for i in range(len(b))]
    assert [a.reading(i) for i in range(len(a))] == [b.reading(i) for i in range(len(b))]

    def letters(batch):
        return sorted((d.source.offset, d.reading_index, d.reason, d.detail, d.value) for d in batch.dead_letters)
    assert letters(a) == letters(b)


# --- the schema's own decision, by an independent validator -------------------------------------------------

def _schema_validator(domain, definition: str):
    schema = schemas.load(domain.schema)
    return jsonschema.Draft7Validator({"$schema": schema["$schema"], "definitions": schema["definitions"],
                                       "$ref": f"#/definitions/{definition}"})


def _schema_accepts(domain, reading) -> bool:
    """The schema's verdict on one reading (the envelope fields aside), plus the pipeline's time range and
    the location's (WGS 84 degrees; the schema checks its shape)."""
    if not _schema_validator(domain, "reading").is_valid(reading):
        return False
    if "location" in reading:
        longitude, latitude = reading["location"]["coordinates"][:2]
        if not (-180 <= longitude <= 180 and -90 <= latitude <= 90):
            return False
    moment = reading_time(reading["dateObserved"])
    return moment is not None and 946684800.0 <= moment <= NOW + 86400.0


# --- the corpus ---------------------------------------------------------------------------------------------

def _point(longitude, latitude, *more) -> dict:
    return {"type": "Point", "coordinates": [longitude, latitude, *more]}


VALID = {
    "water": [{"id": "m-1", "type": "WaterConsumptionObserved", "dateObserved": TIME, "waterConsumption": 12.5,
               "gatewayId": "gw-1", "maxFlowLastHour": 0.4, "nominalFlow": 2.5, "district": "d-1",
               "deviceAlarm": "leak", "alarmTamper": 0, "location": _point(5.041702, 47.321918)}],
    "traffic": [{"id": "td", "type": "TrafficFlowObserved", "dateObserved": TIME, "refRoadSegment": "rs",
                 "intensity": 12, "occupancy": 0.1, "averageVehicleSpeed": 48.0, "laneDirection": "forward",
                 "congested": False, "positionAlongSegment": 120.0, "laneId": 2, "location": _point(5.04, 47.32)}],
    "waste": [{"id": "bin", "type": "WasteContainer", "dateObserved": TIME, "fillingLevel": 0.4,
               "temperature": 12.0, "status": "ok", "nextCollectionEpoch": 1795845900}],
    "lighting": [{"id": "l", "type": "Streetlight", "dateObserved": TIME, "powerState": "on",
                  "powerConsumption": 58.9, "illuminanceLevel": 1.0, "powerRating": 60,
                  "refStreetlightControlCabinet": "c", "location": _point(-4.128871, 50.95822, 12.5)},
                 {"id": "c", "type": "StreetlightControlCabinet", "dateObserved": TIME, "energyConsumed": 18234.5,
                  "totalActivePower": 1.07, "workingMode": "automatic"}],
}

TIMES = ["2026-09-21T08:00:00Z", "2026-09-21T08:00:00.5Z", "2026-09-21T08:00:00.1234567+02:00",
         "2026-09-21T08:00:00-05:30", "2026-09-21t08:00:00z", "2026-09-21 08:00:00Z", "2026-09-21T08:00:00",
         "2026-09-21T08:00Z", "20260921T080000Z", "2026-02-29T08:00:00Z", "2024-02-29T08:00:00Z",
         "2026-09-21T24:00:00Z", "2026-09-21T08:00:60Z", "2026-09-21T08:00:00+24:00", "2026-09-21T08:00:00+0200",
         "1999-12-31T23:59:59Z", "2000-01-01T00:00:00Z", "2126-01-01T00:00:00Z", "2026-09-21T08:00:00,5Z",
         "2026-09-21T08:00:00.Z", "２０２６-09-21T08:00:00Z", "2026-09-21T08:00:00Z\u0000", "", "x" * 41]

JUNK = [None, True, False, 0, 1, -1, 1.0, 0.5, -0.0, 1e308, 2**64, 2**70, "", "x", "on", [], [1], {}, {"a": 1},
        "x" * 257]


#: Locations at, inside and outside WGS 84's bounds, of every shape the schema refuses, and with unknown members.
LOCATIONS = [_point(180, 90), _point(-180, -90), _point(180.0, -90.0), _point(0, 0), _point(-0.0, 0.0),
             _point(math.nextafter(180, math.inf), 0), _point(0, math.nextafter(90, math.inf)),
             _point(math.nextafter(-180, -math.inf), 0), _point(0, -90.5), _point(200, 95), _point(1e308, 0),
             _point(2**70, 0), _point(5.04, 47.32, 1e308), _point(5, 47, 3, 4), {"type": "Point", "coordinates": [5]},
             {"type": "Point", "coordinates": []}, {"type": "Point", "coordinates": ["5", "47"]},
             {"type": "Point", "coordinates": [True, 47]}, {"type": "Point", "coordinates": [None, 47]},
             {"type": "Point", "coordinates": [[5, 47]]}, {"type": "Point"}, {"coordinates": [5, 47]},
             {"type": "point", "coordinates": [5, 47]}, {"type": "LineString", "coordinates": [[5, 47], [6, 48]]},
             {"type": "Point", "coordinates": [5, 47], "bbox": [4, 46, 6, 48], "crs": {"type": "name"}},
             {"type": "Point", "coordinates": [5.04, 47.32], "type2": "x"}, [5.04, 47.32], "5.04,47.32"]


def _edge_values(spec: dict) -> list:
    found = []
    if spec.get("$ref") == "#/definitions/location":
        found += LOCATIONS
    for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if keyword in spec:
            bound = spec[keyword]
            found += [bound, float(bound), math.nextafter(bound, -math.inf), math.nextafter(bound, math.inf)]
            if isinstance(bound, int):
                found += [bound - 1, bound + 1]
    for keyword in ("minLength", "maxLength"):
        if keyword in spec:
            found += ["y" * max(spec[keyword] - 1, 0), "y" * spec[keyword], "y" * (spec[keyword] + 1)]
    found += list(spec.get("enum", []))
    if "enum" in spec:
        found += [m.upper() for m in spec["enum"]]
    if "const" in spec:
        found.append(spec["const"])
    return found


def _definitions(domain) -> list[dict]:
    definitions = schemas.load(domain.schema)["definitions"]
    reading = definitions["reading"]
    return [definitions[ref["$ref"].split("/")[-1]] for ref in reading["oneOf"]] if "oneOf" in reading \
        else [reading]


def _mutations(domain) -> list[dict]:
    """Each valid reading changed in one field at a time: every edge value, junk, a missing field."""
    out = []
    for valid in VALID[domain.name]:
        definition = next(d for d in _definitions(domain) if d["properties"]["type"]["const"] == valid["type"])
        for field, spec in definition["properties"].items():
            for value in _edge_values(spec) + JUNK + (TIMES if spec.get("format") == "date-time" else []):
                out.append({**valid, field: value})
            out.append({k: v for k, v in valid.items() if k != field})
        out.append({**valid, "unknown": {"nested": [1, 2, {"x": None}]}})
        out.append({**valid, "type": "ReadingBatch"})
        other = [v for d in DOMAINS.values() if d is not domain for v in VALID[d.name]]
        out.append({**valid, "type": other[0]["type"]})
    return out


def _dumps(document) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()     # integers beyond 64 bits too


def _messages(domain, readings: list, envelope_every: int = 7, gateway_locations=(None,)) -> list[RawMessage]:
    """Single readings, then envelopes of several readings each, one bad reading costing only itself; the
    envelopes' locations (their gateways') taken in turn from ``gateway_locations`` (None: none)."""
    values = [_dumps(r) for r in readings]
    for k, start in enumerate(range(0, len(readings), envelope_every)):
        location = gateway_locations[k % len(gateway_locations)]
        values.append(_dumps({"type": "ReadingBatch", "gatewayId": f"gw-{k % 3}",
                              **({} if location is None else {"location": location}),
                              "readings": readings[start:start + envelope_every]}))
    return [RawMessage(v, domain.topic("readings"), 0, offset) for offset, v in enumerate(values)]


RAW = [b"", b"not json", b"[1, 2]", b"42", b'"x"', b"null", b"{}", b'{"type": "ReadingBatch"}',
       b'{"type": "ReadingBatch", "gatewayId": "g", "readings": []}',
       b'{"type": "ReadingBatch", "gatewayId": "", "readings": [{}]}',
       b'{"type": "ReadingBatch", "gatewayId": "g", "readings": {}}',
       b'{"type": "ReadingBatch", "gatewayId": "g", "readings": [1, "x", null]}',
       b'\xef\xbb\xbf{"type": "ReadingBatch"}', b'{"id": "\\ud800"}']


def _raw_variants(domain) -> list[bytes]:
    valid = orjson.dumps(VALID[domain.name][0])   # compact: the replacements below rely on it
    return RAW + [
        valid.replace(b'"id":', b'"id":"first","id":', 1),                     # duplicate key: the last wins
        valid.replace(b'"type":', b'"type":"Other","type":', 1),
        valid[:-1] + b',"type":"Other"}', valid[:-1] + b',"\\u0074ype":"Other"}',
        valid.replace(b'"type":', b'"\\u0074ype":', 1)[:-1] + b',"type":"Other"}',
        valid.replace(b"}", b',"nan":NaN}'), valid.replace(b"}", b',"big":1e999}'),
        valid.replace(b"}", b',"deep":' + b"[" * 1030 + b"]" * 1030 + b"}"),
        valid.replace(b"}", b',"deep":' + b"[" * 600 + b"]" * 600 + b"}"),
        valid + b" ", valid + b"x", b" " + valid, valid.replace(b'"id":"', b'"id":"\\u00e9\\n', 1),
        # a location's own "type" repeated (the last wins), its coordinates non-finite or repeated
        valid[:-1] + b',"location":{"type":"Point","type":"LineString","coordinates":[5,47]}}',
        valid[:-1] + b',"location":{"type":"LineString","type":"Point","coordinates":[5,47]}}',
        valid[:-1] + b',"location":{"type":"Point","coordinates":[NaN,47]}}',
        valid[:-1] + b',"location":{"type":"Point","coordinates":[5,1e999]}}',
        valid[:-1] + b',"location":{"type":"Point","coordinates":[5,47,Infinity]}}',
        valid[:-1] + b',"location":{"type":"Point","coordinates":[500,47],"coordinates":[5,47]}}',
        valid[:-1] + b',"location":{"type":"Point","coordinates":[5,47]},"location":{"type":"Point","coordinates":[6,48]}}',
        valid[:-1] + b',"location":null}',
        # an envelope whose reading lacks its "type" while a location brings one more: still refused
        b'{"type":"ReadingBatch","gatewayId":"g","readings":[' + valid.replace(b'"type":', b'"kind":', 1)[:-1]
        + b',"location":{"type":"Point","coordinates":[5,47]}}]}',
        b'{"type":"ReadingBatch","gatewayId":"g","location":{"type":"Point","coordinates":[5,47]},"readings":['
        + valid.replace(b'"type":', b'"kind":', 1) + b']}',
        # an envelope's own location: kept, out of range, non-finite, of another shape
        b'{"type":"ReadingBatch","gatewayId":"g","location":{"type":"Point","coordinates":[5.04,47.32]},"readings":['
        + valid + b"]}",
        b'{"type":"ReadingBatch","gatewayId":"g","location":{"type":"Point","coordinates":[5.04,-91]},"readings":['
        + valid + b"]}",
        b'{"type":"ReadingBatch","gatewayId":"g","location":{"type":"Point","coordinates":[NaN,47]},"readings":['
        + valid + b"]}",
        b'{"type":"ReadingBatch","gatewayId":"g","location":{"type":"Point","coordinates":[1e999,47]},"readings":['
        + valid + b"]}",
        b'{"type":"ReadingBatch","gatewayId":"g","location":[5,47],"readings":[' + valid + b"]}",
    ]


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_every_domain_has_a_typed_decoder(name):
    # without one, every message would take the slow reference path, silently
    assert typed_decoder(DOMAINS[name].schema) is not None


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_typed_and_reference_paths_decide_alike_on_the_corpus(name):
    domain = DOMAINS[name]
    readings = VALID[name] + _mutations(domain)
    messages = _messages(domain, readings)
    messages += [RawMessage(v, domain.topic("readings"), 0, len(messages) + i)
                 for i, v in enumerate(_raw_variants(domain))]
    typed, reference = decode(messages, domain, now=NOW), _reference(messages, domain)
    _same_batch(typed, reference)
    assert len(typed) > len(readings) // 10 and len(typed.dead_letters) > len(readings) // 10   # both kinds seen
    assert np.isfinite(typed.longitude).any() and np.isnan(typed.longitude).any()   # with and without
    assert {d.reason for d in typed.dead_letters} >= {"value_out_of_range", "non_finite", "schema"}


GATEWAY_LOCATIONS = [None, _point(5.03, 47.31), _point(5.05, 47.33, 250.0), _point(181, 0), _point(0, -90.01),
                     {"type": "Point", "coordinates": [5]}, _point(2**70, 0)]


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_envelope_locations_decide_alike(name):
    domain = DOMAINS[name]
    readings = VALID[name] + _mutations(domain)[:40]
    messages = _messages(domain, readings, envelope_every=3, gateway_locations=GATEWAY_LOCATIONS)
    typed, reference = decode(messages, domain, now=NOW), _reference(messages, domain)
    _same_batch(typed, reference)
    assert typed.gateway_locations == reference.gateway_locations
    assert typed.gateway_locations and all(len(p) == 2 for p in typed.gateway_locations.values())
    refused = [d for d in typed.dead_letters if d.reading_index == -1 and d.detail.startswith("batch envelope: location")]
    assert refused and {d.reason for d in refused} == {"value_out_of_range"}


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_a_reading_is_accepted_exactly_when_the_schema_accepts_it(name):
    domain = DOMAINS[name]
    for reading in VALID[name] + _mutations(domain):
        batch = decode([RawMessage(_dumps(reading), "t", 0, 0)], domain, now=NOW)
        assert (len(batch) == 1) == _schema_accepts(domain, reading), reading


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_the_simulators_traffic_takes_the_typed_path(name, monkeypatch):
    """Throughput guard: a schema change the typed decoder cannot express would send every
    message to the reference path (several times slower), silently."""
    domain = DOMAINS[name]
    start = NOW - 5 * 86400.0 - NOW % 3600
    simulation = domain.simulate(days=3.0, seed=3, start=start)
    messages = [RawMessage(v, "t", 0, i) for i, (_k, v) in enumerate(kv for _w, step in simulation.steps()
                                                                      for kv in step)]
    referred = []
    original = decode_module._Reference.message
    monkeypatch.setattr(decode_module._Reference, "message",
                        lambda self, index, message: (referred.append(message), original(self, index, message)))
    batch = decode(messages, domain, now=NOW)
    monkeypatch.undo()
    assert len(batch) > 500
    # only the simulator's deliberately malformed messages take the reference path
    assert len(referred) <= len(simulation.malformed) + 5
    _same_batch(batch, _reference(messages, domain))


_COORDINATES = st.one_of(st.floats(-200, 200), st.integers(-200, 200), st.sampled_from([180, -180, 90, -90, 1e308]))
_LOCATIONS = st.one_of(
    st.builds(lambda c: {"type": "Point", "coordinates": c}, st.lists(_COORDINATES, min_size=0, max_size=4)),
    st.sampled_from(LOCATIONS))


def _field_values(spec: dict):
    return st.one_of(st.sampled_from(_edge_values(spec) + JUNK), st.floats(-1e9, 1e9), st.integers(-10, 10**6),
                     st.text(max_size=6), st.sampled_from(TIMES),
                     *([_LOCATIONS] if spec.get("$ref") == "#/definitions/location" else []))


@pytest.mark.parametrize("name", sorted(DOMAINS))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_readings_and_envelopes_decide_alike(name, data):
    domain = DOMAINS[name]
    valid = data.draw(st.sampled_from(VALID[name]))
    definition = next(d for d in _definitions(domain) if d["properties"]["type"]["const"] == valid["type"])
    fields = sorted(definition["properties"]) + ["extra"]
    readings = []
    for _ in range(data.draw(st.integers(1, 4))):
        changes = data.draw(st.dictionaries(st.sampled_from(fields),
                                            st.deferred(lambda: _field_values({})), max_size=3))
        typed_changes = {f: data.draw(_field_values(definition["properties"].get(f, {}))) for f in changes}
        dropped = data.draw(st.sets(st.sampled_from(fields), max_size=1))
        readings.append({k: v for k, v in {**valid, **typed_changes}.items() if k not in dropped})
    gateway_locations = data.draw(st.lists(st.one_of(st.none(), _LOCATIONS), min_size=1, max_size=3))
    messages = _messages(domain, readings, envelope_every=data.draw(st.integers(1, 4)),
                         gateway_locations=gateway_locations)
    typed, reference = decode(messages, domain, now=NOW), _reference(messages, domain)
    _same_batch(typed, reference)
    assert typed.gateway_locations == reference.gateway_locations
