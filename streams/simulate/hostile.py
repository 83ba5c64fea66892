"""Hostile Kafka messages for any domain: a seeded corpus of what a readings topic must survive.

Contract:

* ``hostile_messages(domain, count, seed)`` returns ``count`` :class:`HostileMessage`
  items, cycling through every kind of :data:`KINDS` in an order drawn from ``seed``
  (so ``count >= len(KINDS)`` holds every kind). Same arguments -> the same bytes.
* Each item is ``(key, value, kind, reasons, valid_ids)``. Decoding it with
  :func:`streams.ingest.decode` -- alone or mixed with any other messages, with
  ``now`` at or after ``at`` (default :data:`AT`) and before the year 9999 -- yields
  exactly one dead letter per entry of ``reasons`` (these reasons, as a multiset) and
  keeps exactly the readings whose ids are ``valid_ids`` (an envelope mixing good and
  bad readings has both). ``expected_dead_letters`` / ``expected_valid_readings`` are
  their lengths.
* Valid readings come from ``valid_reading_factory(n, when)`` (a reading dict of the
  domain, valid against its schema, id unique per ``n``, dated ``when`` epoch s);
  the default gives one per domain. Hostile variants are derived from them and from
  the domain's schema (its bounds, enums and required fields), so a schema change is
  followed without editing this file. Refused readings carry ids ``hostile-bad-<n>``
  where the id is not itself the attack.
* Sizes: no value exceeds ``size_limit`` bytes (default 1,000,000, the producers'
  request limit); the huge kinds sit just below it. Their bytes are built once per
  call and shared by every item of that kind, so a corpus of 100,000 messages holds
  a few MB, not GB.

Knows no Kafka client and no Faust: keys and values are plain bytes.
"""

from __future__ import annotations

import time
from typing import Callable, NamedTuple

import numpy as np
import orjson

import schemas

__all__ = ["AT", "KINDS", "HostileMessage", "default_valid_reading", "hostile_messages"]

#: Default reference time (epoch s, 2026-09-21): valid readings are dated within the hour before it.
AT = 1_790_000_000.0

#: Depth of the nesting attack: ten times what orjson parses (1,024 levels).
DEEP_NESTING = 10_000
#: Depth nested inside a reading of an envelope: under orjson's parse limit, over what it writes back (254).
NESTED_IN_READING = 1_000

_PLACEHOLDER = "__hostile_literal__"
_AUTO = object()   # "draw a key" (None and b"" are keys some kinds need)
_FOREIGN_TYPES = ("WaterConsumptionObserved", "TrafficFlowObserved", "WasteContainer", "Streetlight",
                  "StreetlightControlCabinet", "Alert", "Device")


class HostileMessage(NamedTuple):
    """One hostile Kafka record and what decoding it must give."""

    key: bytes | None
    value: bytes
    kind: str
    reasons: tuple[str, ...]      # one dead-letter reason per dead letter expected
    valid_ids: tuple[str, ...]    # ids of the readings that must be kept

    @property
    def expected_dead_letters(self) -> int:
        return len(self.reasons)

    @property
    def expected_valid_readings(self) -> int:
        return len(self.valid_ids)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def default_valid_reading(domain_name: str) -> Callable[[int, float], dict]:
    """A factory of plain valid readings of ``domain_name`` (ids ``...:HOSTILE-OK-<n>``)."""
    def water(n: int, when: float) -> dict:
        return {"id": f"urn:ngsi-ld:WaterMeter:HOSTILE-OK-{n}", "type": "WaterConsumptionObserved",
                "dateObserved": _iso(when), "waterConsumption": round(100.0 + n * 0.001, 3),
                "maxFlowLastHour": 0.3, "nominalFlow": 2.5, "district": "district-hostile"}

    def traffic(n: int, when: float) -> dict:
        return {"id": f"urn:ngsi-ld:TrafficFlowObserved:HOSTILE-OK-{n}", "type": "TrafficFlowObserved",
                "dateObserved": _iso(when), "refRoadSegment": "urn:ngsi-ld:RoadSegment:HOSTILE",
                "positionAlongSegment": 400.0, "laneId": 1, "intensity": 12, "occupancy": 0.1,
                "averageVehicleSpeed": 45.0}

    def waste(n: int, when: float) -> dict:
        return {"id": f"urn:ngsi-ld:WasteContainer:HOSTILE-OK-{n}", "type": "WasteContainer",
                "dateObserved": _iso(when), "fillingLevel": 0.4, "temperature": 12.5,
                "nextCollectionEpoch": int(when) + 86400}

    def lighting(n: int, when: float) -> dict:
        if n % 5 == 4:   # a cabinet reading now and then: the domain's second kind of reading
            return {"id": f"urn:ngsi-ld:StreetlightControlCabinet:HOSTILE-OK-{n}",
                    "type": "StreetlightControlCabinet", "dateObserved": _iso(when),
                    "energyConsumed": 18234.5, "totalActivePower": 1.07}
        return {"id": f"urn:ngsi-ld:Streetlight:HOSTILE-OK-{n}", "type": "Streetlight", "dateObserved": _iso(when),
                "powerState": "on", "powerConsumption": 58.9, "illuminanceLevel": 1.0, "powerRating": 60,
                "refStreetlightControlCabinet": "urn:ngsi-ld:StreetlightControlCabinet:HOSTILE"}

    factories = {"water": water, "traffic": traffic, "waste": waste, "lighting": lighting}
    if domain_name not in factories:
        raise KeyError(f"no default valid reading for domain {domain_name!r}; pass valid_reading_factory")
    return factories[domain_name]


def _reading_definitions(schema_name: str) -> dict[str, dict]:
    """Reading type -> its object definition (one, or one per branch of the reading's oneOf)."""
    definitions = schemas.load(schema_name)["definitions"]
    reading = definitions["reading"]
    names = [ref["$ref"].removeprefix("#/definitions/") for ref in reading.get("oneOf", ())] or ["reading"]
    return {definitions[name]["properties"]["type"]["const"]: definitions[name] for name in names}


class _Corpus:
    """Builds the items; one instance per :func:`hostile_messages` call."""

    def __init__(self, domain_name: str, schema_name: str, rng: np.random.Generator,
                 factory: Callable[[int, float], dict], size_limit: int, at: float):
        self.domain, self.rng, self.factory, self.size_limit, self.at = domain_name, rng, factory, size_limit, at
        self.definitions = _reading_definitions(schema_name)
        self.serial = 0
        self._shared: dict[str, HostileMessage] = {}

    # -- building blocks -----------------------------------------------------------------------
    def _next(self) -> int:
        self.serial += 1
        return self.serial

    def good(self) -> dict:
        return self.factory(self._next(), self.at - float(self.rng.integers(0, 3600)))

    def bad_base(self) -> dict:
        """A valid reading under a ``hostile-bad-<n>`` id, to be broken in exactly one way."""
        reading = self.good()
        reading["id"] = f"hostile-bad-{self.serial}"
        return reading

    def key(self) -> bytes:
        return f"hostile-{self.domain}-{int(self.rng.integers(0, 8))}".encode()

    def envelope(self, readings: list, **extra) -> dict:
        return {"type": "ReadingBatch", "gatewayId": "hostile-gateway", "dateSent": _iso(self.at), **extra,
                "readings": readings}

    def pick(self, options):
        return options[int(self.rng.integers(0, len(options)))]

    def properties(self, reading: dict, test) -> list[tuple[str, dict]]:
        spec = self.definitions[reading["type"]]["properties"]
        return sorted((name, prop) for name, prop in spec.items() if test(prop))

    def item(self, kind, value, reasons=(), valid=(), key=_AUTO) -> HostileMessage:
        key = self.key() if key is _AUTO else key
        return HostileMessage(key, value, kind, tuple(reasons), tuple(r["id"] for r in valid))

    def single(self, kind: str, reading: dict, reason: str) -> HostileMessage:
        return self.item(kind, orjson.dumps(reading), [reason])

    def with_literal(self, reading: dict, field: str, literal: bytes) -> bytes:
        """``reading`` as JSON with ``field``'s value written as raw bytes (NaN, 1e999, ...)."""
        reading = {**reading, field: _PLACEHOLDER}
        return orjson.dumps(reading).replace(f'"{_PLACEHOLDER}"'.encode(), literal)

    def number_field(self, reading: dict) -> str:
        """A number-typed property the reading carries (so a valid value of it is at hand)."""
        return self.pick([name for name, _ in self.properties(reading, lambda p: p.get("type") == "number")
                          if name in reading])

    # -- ways to break one reading (each: exactly one violation, so its reason is certain) ---
    def broken(self, how: str) -> tuple[dict, str]:
        reading = self.bad_base()
        if how == "above_maximum":
            name, _ = self.pick(self.properties(reading, lambda p: p.get("type") == "number" and "maximum" in p))
            reading[name] = 1e308
            return reading, "value_out_of_range"
        if how == "below_minimum":
            name, prop = self.pick(self.properties(reading, lambda p: "minimum" in p))
            low = prop["minimum"]
            reading[name] = low - 1 if prop.get("type") == "integer" else low - max(1.0, abs(low))
            return reading, "value_out_of_range"
        if how == "at_exclusive_bound":
            options = self.properties(reading, lambda p: "exclusiveMinimum" in p)
            if not options:
                return self.broken("below_minimum")
            name, prop = self.pick(options)
            reading[name] = prop["exclusiveMinimum"]
            return reading, "value_out_of_range"
        if how == "number_as_string":
            name = self.number_field(reading)
            reading[name] = str(reading[name])
            return reading, "schema"
        if how == "bool_as_number":
            reading[self.number_field(reading)] = True
            return reading, "schema"
        if how == "missing_required":
            required = [f for f in self.definitions[reading["type"]]["required"] if f not in ("type", "dateObserved")]
            del reading[self.pick(required)]
            return reading, "schema"
        if how == "null_required":
            required = [f for f in self.definitions[reading["type"]]["required"] if f not in ("type", "dateObserved")]
            reading[self.pick(required)] = None
            return reading, "schema"
        if how == "bad_enum":
            options = self.properties(reading, lambda p: "enum" in p)
            if not options:
                return self.broken("number_as_string")
            reading[self.pick(options)[0]] = "hostile-not-a-member"
            return reading, "schema"
        if how == "wrong_id_type":
            reading["id"] = 12345
            return reading, "schema"
        if how == "unknown_type":
            reading["type"] = reading["type"] + "_v2"
            return reading, "schema"
        if how == "other_domain_type":
            reading["type"] = self.pick([t for t in _FOREIGN_TYPES if t not in self.definitions])
            return reading, "schema"
        if how == "epoch_zero":
            reading["dateObserved"] = "1970-01-01T00:00:00Z"
            return reading, "timestamp_out_of_range"
        if how == "far_past":
            reading["dateObserved"] = "0001-01-01T00:00:00+01:00"
            return reading, "timestamp_out_of_range"
        if how == "far_future":
            reading["dateObserved"] = "9999-12-31T23:59:59Z"
            return reading, "timestamp_out_of_range"
        if how == "no_utc_offset":
            reading["dateObserved"] = _iso(self.at - 60)[:-1] + ".000"   # naive: no Z, no +hh:mm
            return reading, "timestamp_invalid"
        if how == "impossible_date":
            reading["dateObserved"] = "2026-02-30T08:00:00Z"
            return reading, "timestamp_invalid"
        if how == "timestamp_as_number":
            reading["dateObserved"] = self.at
            return reading, "timestamp_invalid"
        raise ValueError(how)

    # -- the kinds ------------------------------------------------------------------------------
    def random_bytes(self, kind):
        # a first byte no JSON text starts with (UTF-8 continuation or lead bytes, never ASCII)
        body = bytes([int(self.rng.integers(0x80, 0x100))]) + self.rng.bytes(int(self.rng.integers(0, 256)))
        return self.item(kind, body, ["invalid_json"])

    def truncated_json(self, kind):
        whole = orjson.dumps(self.bad_base())
        return self.item(kind, whole[:int(self.rng.integers(1, len(whole)))], ["invalid_json"])

    def truncated_envelope(self, kind):
        whole = orjson.dumps(self.envelope([self.good() for _ in range(3)]))
        return self.item(kind, whole[:int(self.rng.integers(1, len(whole)))], ["invalid_json"])

    def empty_key_and_value(self, kind):
        return self.item(kind, b"", ["invalid_json"], key=b"")

    def whitespace_value(self, kind):
        return self.item(kind, b" \n\t\r ", ["invalid_json"])

    def non_utf8(self, kind):
        reading = self.bad_base()
        return self.item(kind, self.with_literal(reading, "id", b'"hostile-\xff\xfe-latin1-\xe9"'), ["invalid_json"])

    def utf8_encoded_surrogate(self, kind):
        reading = self.bad_base()
        return self.item(kind, self.with_literal(reading, "id", b'"hostile-\xed\xa0\x80"'), ["invalid_json"])

    def escaped_lone_surrogate(self, kind):
        reading = self.bad_base()
        return self.item(kind, self.with_literal(reading, "id", b'"hostile-\\ud800"'), ["invalid_json"])

    def utf8_bom(self, kind):
        return self.item(kind, b"\xef\xbb\xbf" + orjson.dumps(self.bad_base()), ["invalid_json"])

    def trailing_garbage(self, kind):
        return self.item(kind, orjson.dumps(self.bad_base()) + b"}{", ["invalid_json"])

    def deep_nesting(self, kind):
        return self.item(kind, b"[" * DEEP_NESTING + b"]" * DEEP_NESTING, ["invalid_json"])

    def deep_nesting_objects(self, kind):
        return self.item(kind, b'{"a":' * DEEP_NESTING + b"1" + b"}" * DEEP_NESTING, ["invalid_json"])

    def deep_nesting_in_envelope(self, kind):
        bad, reason = self.broken("missing_required")
        first, last = self.good(), self.good()
        nested = self.with_literal(bad, "hostileNesting", b"[" * NESTED_IN_READING + b"]" * NESTED_IN_READING)
        value = orjson.dumps(self.envelope([first, "__slot__", last])).replace(b'"__slot__"', nested)
        return self.item(kind, value, [reason], [first, last])

    def deep_property_in_valid_reading(self, kind):
        reading = self.good()
        value = self.with_literal(reading, "hostileNesting", b"[" * NESTED_IN_READING + b"]" * NESTED_IN_READING)
        return self.item(kind, value, [], [reading])

    def nan_literal(self, kind):
        reading = self.bad_base()
        return self.item(kind, self.with_literal(reading, self.number_field(reading), b"NaN"), ["non_finite"])

    def infinity_literal(self, kind):
        reading = self.bad_base()
        literal = self.pick([b"Infinity", b"-Infinity"])
        return self.item(kind, self.with_literal(reading, self.number_field(reading), literal), ["non_finite"])

    def number_overflow(self, kind):
        reading = self.bad_base()
        literal = self.pick([b"1e999", b"-1e999", b"1" + b"0" * 400 + b".0"])
        return self.item(kind, self.with_literal(reading, self.number_field(reading), literal), ["non_finite"])

    def nan_in_envelope(self, kind):
        good = [self.good() for _ in range(int(self.rng.integers(2, 5)))]
        bad = self.bad_base()
        slot = int(self.rng.integers(0, len(good) + 1))
        readings = good[:slot] + ["__slot__"] + good[slot:]
        value = orjson.dumps(self.envelope(readings)).replace(
            b'"__slot__"', self.with_literal(bad, self.number_field(bad), b"NaN"))
        return self.item(kind, value, ["non_finite"], good)

    def integer_beyond_64_bits(self, kind):
        reading = self.bad_base()
        name, _ = self.pick(self.properties(reading, lambda p: p.get("type") == "number" and "maximum" in p))
        return self.item(kind, self.with_literal(reading, name, b"1" + b"0" * 30), ["value_out_of_range"])

    def envelope_mixed(self, kind):
        good = [self.good() for _ in range(int(self.rng.integers(1, 6)))]
        hows = ["above_maximum", "below_minimum", "at_exclusive_bound", "bad_enum", "missing_required",
                "epoch_zero", "far_future", "no_utc_offset", "wrong_id_type", "other_domain_type"]
        bad = [self.broken(self.pick(hows)) for _ in range(int(self.rng.integers(1, 5)))]
        readings = good + [reading for reading, _ in bad]
        order = self.rng.permutation(len(readings))
        return self.item(kind, orjson.dumps(self.envelope([readings[i] for i in order])),
                         [reason for _, reason in bad], good)

    def envelope_of_non_objects(self, kind):
        good = self.good()
        return self.item(kind, orjson.dumps(self.envelope([42, good, "text", None, [good]])),
                         ["schema"] * 4, [good])

    def envelope_in_envelope(self, kind):
        good, inner = self.good(), self.bad_base()
        return self.item(kind, orjson.dumps(self.envelope([good, self.envelope([inner])])), ["schema"], [good])

    def envelope_empty(self, kind):
        return self.item(kind, orjson.dumps(self.envelope([])), ["schema"])

    def envelope_missing_gateway(self, kind):
        envelope = self.envelope([self.bad_base(), self.bad_base()])
        del envelope["gatewayId"]
        return self.item(kind, orjson.dumps(envelope), ["schema"])

    def envelope_readings_not_a_list(self, kind):
        return self.item(kind, orjson.dumps({**self.envelope([]), "readings": {"0": self.bad_base()}}), ["schema"])

    def envelope_too_many_readings(self, kind):
        def build():
            items = b",".join([b"0"] * 100_001)   # maxItems is 100,000; the value stays small
            value = orjson.dumps(self.envelope(["__slot__"])).replace(b'"__slot__"', items)
            return self.item(kind, value, ["schema"])
        return self.shared(kind, build)

    def single_with_envelope_type(self, kind):
        reading = self.bad_base()
        reading["type"] = "ReadingBatch"
        return self.single(kind, reading, "schema")

    def json_array(self, kind):
        return self.item(kind, orjson.dumps([self.bad_base(), self.bad_base()]), ["schema"])

    def json_scalar(self, kind):
        return self.item(kind, self.pick([b"42", b'"a string"', b"null", b"true", b"-0.0", b"1e308"]), ["schema"])

    def duplicate_key_last_good(self, kind):
        # orjson keeps the last of duplicate keys: the earlier absurd value is overridden
        reading = self.good()
        name = self.number_field(reading)
        head = orjson.dumps({k: v for k, v in reading.items() if k != name})[:-1]
        value = head + f',"{name}":-1e308,"{name}":'.encode() + orjson.dumps(reading[name]) + b"}"
        return self.item(kind, value, [], [reading])

    def duplicate_key_last_bad(self, kind):
        reading = self.bad_base()
        name, _ = self.pick(self.properties(reading, lambda p: p.get("type") == "number" and "maximum" in p))
        head = orjson.dumps({k: v for k, v in reading.items() if k != name})[:-1]
        value = head + f',"{name}":1,"{name}":1e308'.encode() + b"}"
        return self.item(kind, value, ["value_out_of_range"])

    def empty_key(self, kind):
        reading = self.good()
        return self.item(kind, orjson.dumps(reading), [], [reading], key=b"")

    def no_key(self, kind):
        reading = self.good()
        return self.item(kind, orjson.dumps(reading), [], [reading], key=None)

    def huge_key(self, kind):
        def build():
            return HostileMessage(b"k" * (self.size_limit // 2), b"{not json", kind, ("invalid_json",), ())
        return self.shared(kind, build)

    def huge_id(self, kind):
        def build():
            reading = self.bad_base()
            room = self.size_limit - len(orjson.dumps(reading)) - 64
            reading["id"] = "x" * room
            return self.single(kind, reading, "schema")
        return self.shared(kind, build)

    def huge_unknown_property(self, kind):
        # the schemas allow properties they do not name (the Smart Data Models have many): a valid reading
        def build():
            reading = self.good()
            reading["hostileComment"] = "y" * (self.size_limit - len(orjson.dumps(reading)) - 64)
            return self.item(kind, orjson.dumps(reading), [], [reading])
        return self.shared(kind, build)

    def huge_string_in_envelope(self, kind):
        def build():
            good = [self.good(), self.good()]
            bad = self.bad_base()
            bad["gatewayId"] = ""
            room = self.size_limit - len(orjson.dumps(self.envelope(good + [bad]))) - 64
            bad["gatewayId"] = "z" * room   # maxLength 256
            return self.item(kind, orjson.dumps(self.envelope([good[0], bad, good[1]])), ["schema"], good)
        return self.shared(kind, build)

    def huge_gateway_id(self, kind):
        def build():
            envelope = self.envelope([self.bad_base()])
            envelope["gatewayId"] = "g" * (self.size_limit - len(orjson.dumps(envelope)) - 64)
            return self.item(kind, orjson.dumps(envelope), ["schema"])
        return self.shared(kind, build)

    def shared(self, kind: str, build) -> HostileMessage:
        if kind not in self._shared:
            self._shared[kind] = build()
        return self._shared[kind]


#: One reading broken in one way, sent alone: the kind is ``reading_<how>``.
_BROKEN = ("above_maximum", "below_minimum", "at_exclusive_bound", "number_as_string", "bool_as_number",
           "missing_required", "null_required", "bad_enum", "wrong_id_type", "unknown_type", "other_domain_type",
           "epoch_zero", "far_past", "far_future", "no_utc_offset", "impossible_date", "timestamp_as_number")

_WHOLE = ("random_bytes", "truncated_json", "truncated_envelope", "empty_key_and_value", "whitespace_value",
          "non_utf8", "utf8_encoded_surrogate", "escaped_lone_surrogate", "utf8_bom", "trailing_garbage",
          "deep_nesting", "deep_nesting_objects", "deep_nesting_in_envelope", "deep_property_in_valid_reading",
          "nan_literal", "infinity_literal", "number_overflow", "nan_in_envelope", "integer_beyond_64_bits",
          "envelope_mixed", "envelope_of_non_objects", "envelope_in_envelope", "envelope_empty",
          "envelope_missing_gateway", "envelope_readings_not_a_list", "envelope_too_many_readings",
          "single_with_envelope_type", "json_array", "json_scalar", "duplicate_key_last_good",
          "duplicate_key_last_bad", "empty_key", "no_key", "huge_key", "huge_id", "huge_unknown_property",
          "huge_string_in_envelope", "huge_gateway_id")

#: Every kind of hostile message, in a fixed order.
KINDS: tuple[str, ...] = _WHOLE + tuple(f"reading_{how}" for how in _BROKEN)


def hostile_messages(domain, count: int, seed: int = 0,
                     valid_reading_factory: Callable[[int, float], dict] | None = None,
                     size_limit: int = 1_000_000, at: float = AT) -> list[HostileMessage]:
    """``count`` hostile messages for ``domain`` (a :class:`streams.domains.Domain` or its name); see the module doc."""
    if isinstance(domain, str):
        from streams.domains import DOMAINS

        domain = DOMAINS[domain]
    if count < 0:
        raise ValueError("count must be >= 0")
    if size_limit < 4096:
        raise ValueError("size_limit must be at least 4096 bytes (the huge kinds need room)")
    rng = np.random.default_rng([seed, 7])
    corpus = _Corpus(domain.name, domain.schema, rng, valid_reading_factory or default_valid_reading(domain.name),
                     size_limit, at)
    items = []
    while len(items) < count:
        for i in rng.permutation(len(KINDS))[:count - len(items)]:
            kind = KINDS[int(i)]
            if kind.startswith("reading_"):
                reading, reason = corpus.broken(kind.removeprefix("reading_"))
                items.append(corpus.single(kind, reading, reason))
            else:
                items.append(getattr(corpus, kind)(kind))
    return items
