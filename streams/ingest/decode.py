"""Decode and validate any domain's messages: one reading or a gateway batch envelope.

Two paths, one decision. The common path decodes a message in one call with the
typed decoder derived from the domain's schema (:mod:`streams.ingest.typed`,
msgspec) and takes the batch's columns from the decoded readings; event times are
parsed for the whole batch at once (:func:`streams.timeparse.reading_times`). A
message the typed decoder refuses takes the reference path: orjson, then the full
schema compiled once with fastjsonschema, each reading checked against the
definition its ``type`` names, so a domain with two kinds of reading (lighting:
lamp and cabinet) gets that definition's precise error and one bad reading costs
only itself. Timestamps and finiteness are then checked vectorised over the whole
batch.

Reasons (:data:`streams.ingest.dead_letter.REASONS`): bytes that are not JSON are
``invalid_json``, except the non-JSON number literals ``NaN`` / ``Infinity`` (what
Python's ``json.dumps`` writes) and numbers too large for a double, which are
``non_finite`` when they stand for a field the schema defines (in a field it does not
define they are ignored with the field, as the schema does); a number outside its
schema's minimum/maximum is
``value_out_of_range``; any other schema failure is ``schema``. A reading's ``location`` (a GeoJSON Point, its shape checked by the
schema) whose longitude is outside -180..180 or latitude outside -90..90 degrees is
``value_out_of_range`` too, checked vectorised with the times; an envelope's (its gateway's)
location out of range costs the whole envelope, as any envelope failure does. Hostile input
(nesting at the JSON parser's depth limit, values near the record size limit)
costs a dead letter, never an exception. Duplicate keys in an object: the last one
wins (orjson's rule), whichever value the first one had.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from functools import cache
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Callable, NamedTuple

import fastjsonschema
import msgspec
import numpy as np
import orjson

import schemas
from streams.ingest.dead_letter import DeadLetter
from streams.ingest.messages import RawMessage
from streams.ingest.typed import typed_decoder
from streams.timeparse import reading_time, reading_times

__all__ = ["Batch", "decode", "reading_bytes", "outside_wgs84", "EARLIEST_VALID_TS", "RANGE_RULES",
           "LONGITUDE_LIMIT_DEG", "LATITUDE_LIMIT_DEG"]

#: Readings dated before 2000-01-01T00:00:00Z are refused (clock reset, epoch zero).
EARLIEST_VALID_TS = 946684800.0

#: A location's longitude and latitude (WGS 84 degrees) lie within +-these, inclusive.
LONGITUDE_LIMIT_DEG = 180.0
LATITUDE_LIMIT_DEG = 90.0

#: JSON Schema keywords whose failure means "a number of the right type, physically absurd".
RANGE_RULES = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})

#: Where a number literal JSON lacks starts (after an optional minus sign).
_NON_JSON_NUMBERS = ("NaN", "Infinity")


def outside_wgs84(longitude, latitude):
    """Whether a position (degrees; numbers or arrays) is off the globe: longitude outside -180..180 or
    latitude outside -90..90. NaN (no position given) is not; infinity is."""
    return (np.abs(longitude) > LONGITUDE_LIMIT_DEG) | (np.abs(latitude) > LATITUDE_LIMIT_DEG)


def _location_detail(longitude: float, latitude: float, where: str = "") -> str:
    return (f"{where}location {float(longitude)!r}, {float(latitude)!r} is outside longitude "
            f"-{LONGITUDE_LIMIT_DEG:g}..{LONGITUDE_LIMIT_DEG:g} / latitude -{LATITUDE_LIMIT_DEG:g}..{LATITUDE_LIMIT_DEG:g} "
            "(WGS 84 degrees)")


class _Validators(NamedTuple):
    """A schema's compiled checks: the envelope, any reading, and per reading ``type``
    the check of the definition that type selects."""

    envelope: Callable
    reading: Callable
    by_type: dict


@cache
def _validators(schema_name: str) -> _Validators:
    schema = schemas.load(schema_name)
    definitions = schema["definitions"]

    def compile_definition(definition: str):
        sub = {"$schema": schema["$schema"], "definitions": definitions, "$ref": f"#/definitions/{definition}"}
        # Formats are checked by parsing below, where the reason can be precise.
        return fastjsonschema.compile(sub, formats={"date-time": lambda value: True})

    # A reading definition is one object, or a oneOf of objects told apart by a const type
    # (lighting). Either way each type names exactly one definition: validating against it is
    # the oneOf, and its error is the precise one (a oneOf error names no failing keyword).
    reading = definitions["reading"]
    branches = [ref["$ref"].removeprefix("#/definitions/") for ref in reading.get("oneOf", ())
                if isinstance(ref, dict) and ref.get("$ref", "").startswith("#/definitions/")] or ["reading"]
    by_type = {}
    for name in branches:
        const = definitions[name].get("properties", {}).get("type", {}).get("const")
        if isinstance(const, str):
            by_type[const] = compile_definition(name)
    return _Validators(compile_definition("envelope"), compile_definition("reading"), by_type)


@dataclass
class Batch:
    """Valid readings of one batch as columns, plus the dead letters.

    ``subject_ids`` raw (not yet pseudonymised) ids; ``ts`` event time (s, UTC
    epoch); ``columns`` the domain's numeric columns; ``groups`` per group name, the
    group id of each reading or None (``gateway`` always present); ``longitude`` and
    ``latitude`` each reading's ``location`` (WGS 84 degrees, NaN: none given);
    ``gateway_locations`` gateway id -> (longitude, latitude) of the envelopes that gave one
    (the batch's last). Where each valid reading came from: :meth:`origin` and :meth:`reading`.
    """

    subject_ids: list[str]
    ts: np.ndarray
    columns: dict
    groups: dict
    dead_letters: list[DeadLetter] = field(default_factory=list)
    messages: int = 0
    #: the decoded messages, and per valid reading the index of its message, its position in
    #: the envelope (-1: a single reading) and the reading as decoded (a typed Struct or a dict)
    sources: list = field(default_factory=list)
    where: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    positions: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    records: list = field(default_factory=list)
    longitude: np.ndarray = field(default_factory=lambda: np.empty(0))
    latitude: np.ndarray = field(default_factory=lambda: np.empty(0))
    gateway_locations: dict = field(default_factory=dict)
    _documents: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.subject_ids)

    def origin(self, i: int) -> tuple[RawMessage, int]:
        """Valid reading ``i``'s message and its position in the envelope (-1: the message is the reading)."""
        return self.sources[int(self.where[i])], int(self.positions[i])

    def reading(self, i: int) -> dict:
        """Valid reading ``i`` as a dict, as the message's JSON has it (its fields, unknown ones included)."""
        record = self.records[i]
        if type(record) is dict:
            return record
        index, position = int(self.where[i]), int(self.positions[i])
        document = self._documents.get(index)
        if document is None:     # what the typed decoder took: orjson reads it alike (tested), but
            value = self.sources[index].value   # for a NaN or 1e999 in a field the schema does not define
            try:
                document = orjson.loads(value)
            except orjson.JSONDecodeError:
                document = _salvage(value)
            self._documents[index] = document
        return document if position < 0 else document["readings"][position]


def _schema_reason(error: fastjsonschema.JsonSchemaValueException) -> str:
    if error.rule in RANGE_RULES:
        return "value_out_of_range"
    return "timestamp_invalid" if (error.name or "").endswith(".dateObserved") else "schema"


def _json_error_reason(error: orjson.JSONDecodeError) -> str:
    """``non_finite`` for a number no double holds (1e999) or a NaN/Infinity literal, else ``invalid_json``."""
    if "infinity" in error.msg:
        return "non_finite"
    document, at = error.doc or "", error.pos
    if isinstance(document, str) and 0 <= at < len(document) and document.startswith(_NON_JSON_NUMBERS, at):
        return "non_finite"
    return "invalid_json"


class _NonFinite:
    """Stands for a NaN, Infinity or 1e999 literal in a document read by :func:`_salvage`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NON_FINITE"


_NON_FINITE = _NonFinite()
_UNREADABLE = object()
_NON_FINITE_DETAIL = "a number is NaN, Infinity or too large for a double"


def _float_or_marker(text: str):
    number = float(text)
    return number if math.isfinite(number) else _NON_FINITE


def _int_as_orjson(text: str):
    """An integer as orjson reads it: exact within 64 bits, a double beyond."""
    number = int(text)
    return number if -2**63 <= number < 2**64 else _float_or_marker(text)


def _refuse(_obj):
    raise TypeError("not JSON")


def _salvage(value: bytes):
    """The document orjson refused only for non-finite numbers, each of them read as ``_NON_FINITE``.

    So that one reading with ``NaN`` (Python's ``json.dumps`` writes it for a missing
    value) costs only itself, not every sibling of its envelope. :data:`_UNREADABLE`
    when anything else is wrong, including what orjson refuses and Python's parser
    would take (lone surrogates, nesting orjson cannot write back): the message then
    stays one dead letter.
    """
    try:
        document = json.loads(value.decode("utf-8"), parse_constant=lambda _name: _NON_FINITE,
                              parse_float=_float_or_marker, parse_int=_int_as_orjson)
        # what orjson would have refused besides: lone surrogates, nesting it cannot write back
        orjson.dumps(document, default=lambda obj: None if obj is _NON_FINITE else _refuse(obj))
    except (ValueError, TypeError, RecursionError):   # RecursionError: nesting deeper than Python's parser goes
        return _UNREADABLE
    return document


def _has_non_finite(item, known: frozenset) -> bool:
    """Whether ``item`` is a non-finite number or has one in a field of the schema (``known``): a field's
    value, a number of a list it holds (a location's coordinates), or such a field of an object it holds
    (the location). The readings of an envelope are judged one by one, so a list's objects are not looked in."""
    return item is _NON_FINITE or (type(item) is dict and any(_non_finite_field(v, known)
                                                              for k, v in item.items() if k in known))


def _non_finite_field(value, known: frozenset) -> bool:
    if type(value) is list:
        return any(v is _NON_FINITE for v in value)
    return _has_non_finite(value, known)


def _number(value, codes) -> float:
    if codes is not None and type(value) is str:
        return float(codes.get(value, math.nan))
    if value is None or type(value) is str:
        return math.nan
    return float(value)


class _Segment(NamedTuple):
    """Valid readings of consecutive messages decoded by one path, before the batch's checks."""

    ids: list
    ts: np.ndarray
    values: list          # per domain column, float64
    groups: dict          # gateway and the domain's groups, per reading
    where: list          # message index per reading
    positions: list | np.ndarray   # position in its envelope, -1 for a single reading
    records: list
    longitude: np.ndarray           # per reading, WGS 84 degrees; NaN: no location
    latitude: np.ndarray


_NAN = math.nan


_TYPED_COLUMNS: dict = {}     # id(domain) -> (domain, its column makers)


def _typed_columns(domain):
    cached = _TYPED_COLUMNS.get(id(domain))
    if cached is None or cached[0] is not domain:
        cached = _TYPED_COLUMNS[id(domain)] = (domain, _make_typed_columns(domain))
    return cached[1]


def _make_typed_columns(domain):
    """Per domain column, a function of the decoded reading Structs -> that column's floats (None: no typed path).

    Chosen once from the Struct fields so the per-reading work is one attribute read: numbers
    (bool -> 0/1) as they are, an enum through its codes, the ``type`` tag through its codes,
    a field a kind of reading lacks as NaN.
    """
    typed = typed_decoder(domain.schema)
    if typed is None:
        return None
    kinds = typed.reading_types
    tags = typed.tags
    fields = typed.kinds

    def field_kind(kind, name):
        return "tag" if name == "type" else fields[kind].get(name, "absent")

    def getter(name, present, absent):
        if present:
            return lambda records: map(attrgetter(name), records)
        return lambda records: (getattr(r, name, absent) for r in records)

    converters = []
    for column in domain.columns:
        name, codes = column.json, column.codes
        found = {field_kind(kind, name) for kind in kinds}
        values = getter(name, "absent" not in found, None)
        if found == {"tag"}:
            table = {kind: (codes or {}).get(tag, _NAN) for kind, tag in tags.items()}
            converters.append(lambda records, table=table: np.fromiter(map(table.__getitem__, map(type, records)),
                                                                       dtype=np.float64, count=len(records)))
        elif found <= {"number", "absent"}:     # absent numbers decode as NaN (bool as 0 / 1)
            values = getter(name, "absent" not in found, _NAN)
            converters.append(lambda records, values=values: np.fromiter(values(records), dtype=np.float64,
                                                                         count=len(records)))
        elif found <= {"string", "absent"}:     # an enum through its codes; absent (None) or no code: NaN
            table = dict(codes or {})
            converters.append(lambda records, values=values, get=table.get: np.fromiter(
                (get(v, _NAN) for v in values(records)), dtype=np.float64, count=len(records)))
        else:
            converters.append(lambda records, values=values, codes=codes: np.fromiter(
                (_number(v, codes) for v in values(records)), dtype=np.float64, count=len(records)))
    groups = [(group, getter(json_field, all(json_field in fields[kind] for kind in kinds), None))
              for group, json_field in domain.groups]
    gateway = getter("gatewayId", all("gatewayId" in fields[kind] for kind in kinds), None)
    return converters, groups, gateway


def _typed_locations(records: list, located: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each reading's longitude and latitude (NaN: none); ``located`` False: none of them has one (known from
    its message's bytes, so that readings without a location cost one ``np.full``)."""
    if not located:
        none = np.full(len(records), _NAN)
        return none, none.copy()
    coordinates = [_NO_POSITION if loc is None else loc.coordinates
                   for loc in map(attrgetter("location"), records)]
    return (np.fromiter(map(itemgetter(0), coordinates), dtype=np.float64, count=len(records)),
            np.fromiter(map(itemgetter(1), coordinates), dtype=np.float64, count=len(records)))


_NO_POSITION = (_NAN, _NAN)


def _typed_segment(domain, records: list, envelope_gateways: list, where: list, positions: list,
                   located: bool) -> _Segment:
    converters, group_getters, gateway_getter = _typed_columns(domain)
    gateways = list(gateway_getter(records))
    if None in gateways:    # the envelope's gateway stands for a reading that names none
        gateways = [g if v is None else v for v, g in zip(gateways, envelope_gateways)]
    groups = {"gateway": gateways, **{name: list(values(records)) for name, values in group_getters}}
    return _Segment(list(map(attrgetter("id"), records)),
                    reading_times(list(map(attrgetter("dateObserved"), records))),
                    [convert(records) for convert in converters], groups, where, positions, records,
                    *_typed_locations(records, located))


def decode(messages: list[RawMessage], domain, now: float | None = None,
           max_future_skew_s: float = 86400.0) -> Batch:
    """Decode raw messages of ``domain`` into a :class:`Batch`; never raises on bad input."""
    typed = typed_decoder(domain.schema)
    decode_typed = typed.decode if typed is not None else None
    envelope_type = typed.envelope if typed is not None else None
    dead: list[DeadLetter] = []
    segments: list[_Segment] = []
    # typed readings not yet made a segment: the readings, their message's index, per envelope
    # (first reading, readings, gateway), and whether any of them may have a location
    records, where, spans, located = [], [], [], False
    gateway_locations: dict[str, tuple[float, float]] = {}
    reference = _Reference(domain, dead, gateway_locations)

    def flush_typed():
        nonlocal records, where, spans, located
        if records:
            positions = np.full(len(records), -1, dtype=np.int64)
            gateways = [None] * len(records)
            for start, count, gateway in spans:
                positions[start:start + count] = np.arange(count)
                gateways[start:start + count] = repeat(gateway, count)
            segments.append(_typed_segment(domain, records, gateways, where, positions, located))
            records, where, spans, located = [], [], [], False

    # Exactly one "type" key per reading, envelope and location, as the schema requires: msgspec
    # reads a repeated one unlike orjson (whose last one wins), and a "type" is also in a string
    # value or an unknown field. Each of them has one (the tags and a location's "type" are
    # required), so a count of one per reading and envelope means there is no location in the
    # message, and the locations are counted only when there are more. Else, or when keys may hide
    # behind \u escapes, the reference path decides. Two scans in C per message.
    for index, message in enumerate(messages):
        value = message.value
        if decode_typed is not None and value:
            try:
                document = decode_typed(value)
            except (msgspec.DecodeError, RecursionError):   # refused or too deep: the reference path decides
                document = None
            if document is not None:
                types = value.count(b'"type"')
                if type(document) is envelope_type:
                    readings = document.readings
                    expected = 1 + len(readings)
                    gateway_location = document.location
                    if types != expected:
                        expected += (gateway_location is not None) + sum(
                            getattr(r, "location", None) is not None for r in readings)
                    if types == expected and b"\\u" not in value and (
                            gateway_location is None or not outside_wgs84(*gateway_location.coordinates[:2])):
                        if gateway_location is not None:
                            gateway_locations[document.gatewayId] = gateway_location.coordinates[:2]
                        located = located or expected > 1 + len(readings)
                        spans.append((len(records), len(readings), document.gatewayId))
                        records.extend(readings)
                        where.extend(repeat(index, len(readings)))
                        continue
                elif (types == 1 or (types == 2 and getattr(document, "location", None) is not None)) \
                        and b"\\u" not in value:
                    located = located or types == 2
                    records.append(document)
                    where.append(index)
                    continue
        flush_typed()
        reference.message(index, message)
        if reference.rows:
            segments.append(reference.segment())
    flush_typed()
    return _checked(segments, domain, messages, dead, now, max_future_skew_s, gateway_locations)


class _Reference:
    """The reference path: orjson, then the schema's compiled checks reading by reading, with precise reasons."""

    def __init__(self, domain, dead: list[DeadLetter], gateway_locations: dict):
        validators = _validators(domain.schema)
        self.validate_envelope, self.by_type, self.any_reading = validators.envelope, validators.by_type, \
            validators.reading
        # One kind of reading: its own check refuses any other type with the same error, no dispatch needed.
        self.only_kind = next(iter(self.by_type.values())) if len(self.by_type) == 1 else None
        self.columns_spec = [(c.json, c.codes) for c in domain.columns]
        self.group_spec = domain.groups
        definitions = schemas.load(domain.schema)["definitions"]
        self.known = frozenset(name for definition in definitions.values()
                               for name in definition.get("properties", ()))
        self.dead = dead
        self.gateway_locations = gateway_locations
        self._reset()

    def _reset(self) -> None:
        self.rows = 0
        self.ids, self.times, self.where, self.positions, self.records = [], [], [], [], []
        self.longitudes, self.latitudes = [], []
        self.values = [[] for _ in self.columns_spec]
        self.groups = {"gateway": [], **{name: [] for name, _ in self.group_spec}}

    def segment(self) -> _Segment:
        segment = _Segment(self.ids, np.array(self.times, dtype=np.float64),
                           [np.array(v, dtype=np.float64) for v in self.values], self.groups, self.where,
                           self.positions, self.records, np.array(self.longitudes, dtype=np.float64),
                           np.array(self.latitudes, dtype=np.float64))
        self._reset()
        return segment

    def accept(self, reading, gateway: str | None, index: int, message: RawMessage, position: int,
               salvaged: bool = False) -> None:
        dead = self.dead
        if salvaged and _has_non_finite(reading, self.known):
            dead.append(DeadLetter(_reading_bytes(reading, message, position), "non_finite", _NON_FINITE_DETAIL,
                                   message, position))
            return
        if self.only_kind is not None:
            validate = self.only_kind
        else:
            kind = reading.get("type") if type(reading) is dict else None
            validate = self.by_type.get(kind, self.any_reading) if type(kind) is str else self.any_reading
        try:
            validate(reading)
        except fastjsonschema.JsonSchemaValueException as error:
            dead.append(DeadLetter(_reading_bytes(reading, message, position), _schema_reason(error),
                                   error.message, message, position))
            return
        moment = reading_time(reading["dateObserved"])
        if moment is None:
            dead.append(DeadLetter(_reading_bytes(reading, message, position), "timestamp_invalid",
                                   f"dateObserved {reading['dateObserved'][:40]!r} is not an ISO 8601 date-time "
                                   "with a UTC offset", message, position))
            return
        self.rows += 1
        self.ids.append(reading["id"])
        self.times.append(moment)
        for out, (name, codes) in zip(self.values, self.columns_spec):
            out.append(_number(reading.get(name), codes))
        self.groups["gateway"].append(reading.get("gatewayId", gateway))
        for name, json_field in self.group_spec:
            self.groups[name].append(reading.get(json_field))
        location = reading.get("location")     # its shape checked by the schema, its range in _checked
        longitude, latitude = _NO_POSITION if location is None else location["coordinates"][:2]
        self.longitudes.append(float(longitude))
        self.latitudes.append(float(latitude))
        self.where.append(index)
        self.positions.append(position)
        self.records.append(reading)

    def message(self, index: int, message: RawMessage) -> None:
        dead = self.dead
        salvaged = False
        try:
            if not message.value:
                raise orjson.JSONDecodeError("empty message value", "", 0)
            document = orjson.loads(message.value)
        except orjson.JSONDecodeError as error:
            reason = _json_error_reason(error)
            document = _salvage(message.value) if reason == "non_finite" else _UNREADABLE
            if document is _UNREADABLE:
                dead.append(DeadLetter(message.value or b"", reason, f"cannot decode JSON: {error}", message))
                return
            salvaged = True
            if _has_non_finite(document, self.known):   # a bare NaN, or one in a single reading or the envelope
                dead.append(DeadLetter(message.value, "non_finite", f"{_NON_FINITE_DETAIL} ({error})", message))
                return
        if isinstance(document, dict) and document.get("type") == "ReadingBatch":
            try:
                self.validate_envelope(document)
            except fastjsonschema.JsonSchemaValueException as error:
                dead.append(DeadLetter(message.value, "schema", f"batch envelope: {error.message}", message))
                return
            gateway = document["gatewayId"]
            location = document.get("location")
            if location is not None:
                longitude, latitude = (float(x) for x in location["coordinates"][:2])
                if outside_wgs84(longitude, latitude):
                    dead.append(DeadLetter(message.value, "value_out_of_range",
                                           _location_detail(longitude, latitude, "batch envelope: "), message))
                    return
                self.gateway_locations[gateway] = (longitude, latitude)
            for position, reading in enumerate(document["readings"]):
                self.accept(reading, gateway, index, message, position, salvaged)
        elif isinstance(document, dict):
            self.accept(document, None, index, message, -1)
        else:
            dead.append(DeadLetter(message.value, "schema",
                                   f"expected a JSON object, got {type(document).__name__}", message))


def _checked(segments: list[_Segment], domain, messages, dead: list[DeadLetter], now, max_future_skew_s,
             gateway_locations: dict) -> Batch:
    """The batch of the decoded segments, less the readings whose time, numbers or location the checks refuse."""
    if len(segments) == 1:
        ids, ts, values, groups, where, positions, records, longitude, latitude = segments[0]
    else:
        ids = [x for s in segments for x in s.ids]
        ts = np.concatenate([s.ts for s in segments]) if segments else np.empty(0)
        values = [np.concatenate([s.values[j] for s in segments]) if segments else np.empty(0)
                  for j in range(len(domain.columns))]
        groups = {name: [x for s in segments for x in s.groups[name]]
                  for name in ["gateway", *(g for g, _ in domain.groups)]}
        where = np.concatenate([np.asarray(s.where, dtype=np.int64) for s in segments]) if segments else []
        positions = np.concatenate([np.asarray(s.positions, dtype=np.int64) for s in segments]) if segments else []
        records = [x for s in segments for x in s.records]
        longitude = np.concatenate([s.longitude for s in segments]) if segments else np.empty(0)
        latitude = np.concatenate([s.latitude for s in segments]) if segments else np.empty(0)
    arrays = {c.column: v for c, v in zip(domain.columns, values)}
    where = np.asarray(where, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.int64)
    batch = Batch(ids, ts, arrays, groups, dead, len(messages), list(messages), where, positions, records,
                  longitude, latitude, gateway_locations)
    now = time.time() if now is None else now
    finite = np.isfinite(ts)
    for column in [*arrays.values(), longitude, latitude]:
        finite &= ~np.isinf(column)   # NaN = absent (optional field); inf is never a measurement
    on_globe = ~outside_wgs84(longitude, latitude)
    keep = finite & on_globe & (ts >= EARLIEST_VALID_TS) & (ts <= now + max_future_skew_s)
    if not keep.all():
        for i in np.flatnonzero(~keep):
            message, position = batch.origin(i)
            if math.isnan(ts[i]):     # a typed reading whose dateObserved no parser reads
                observed = batch.reading(i)["dateObserved"]
                reason = "timestamp_invalid"
                detail = f"dateObserved {observed[:40]!r} is not an ISO 8601 date-time with a UTC offset"
            elif not finite[i]:
                reason, detail = "non_finite", "a number or dateObserved is not finite"
            elif not on_globe[i]:
                reason, detail = "value_out_of_range", _location_detail(longitude[i], latitude[i])
            else:
                reason = "timestamp_out_of_range"
                detail = (f"dateObserved {batch.reading(i)['dateObserved']} is before 2000-01-01 or more than "
                          f"{max_future_skew_s:.0f} s ahead of the clock")
            dead.append(DeadLetter(reading_bytes(batch, i), reason, detail, message, position))
        batch.subject_ids = [x for x, k in zip(ids, keep) if k]
        batch.records = [x for x, k in zip(records, keep) if k]
        batch.groups = {name: [x for x, k in zip(members, keep) if k] for name, members in groups.items()}
        batch.ts, batch.where, batch.positions = ts[keep], where[keep], positions[keep]
        batch.longitude, batch.latitude = longitude[keep], latitude[keep]
        batch.columns = {name: column[keep] for name, column in arrays.items()}
    batch.ts = np.ascontiguousarray(batch.ts)
    batch.columns = {k: np.ascontiguousarray(v) for k, v in batch.columns.items()}
    return batch


def reading_bytes(batch: Batch, i: int) -> bytes:
    """Valid reading ``i`` of a batch as received (its own JSON inside an envelope)."""
    message, position = batch.origin(i)
    return message.value if position < 0 else _reading_bytes(batch.reading(i), message, position)


def _reading_bytes(reading, message: RawMessage, position: int) -> bytes:
    """The offending item as received: the whole message, or the one reading of an envelope.

    A reading orjson cannot write back (nested deeper than its writer allows, though
    the parser took it) is given as the whole envelope; ``reading_index`` still says
    which one it is. Never ``repr``: on such nesting it raises RecursionError.
    """
    if position < 0:
        return message.value
    try:
        return orjson.dumps(reading)
    except orjson.JSONEncodeError:
        return message.value
