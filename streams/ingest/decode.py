"""Decode and validate any domain's messages: one reading or a gateway batch envelope.

Structure and value bounds are checked against the domain's schema (a fast check
derived from it for the common shape, else the full schema compiled once with
fastjsonschema); a reading is checked against the definition its ``type`` names, so
a domain with two kinds of reading (lighting: lamp and cabinet) gets that
definition's precise error. Timestamps and finiteness are then checked vectorised
over the whole batch.

Reasons (:data:`streams.ingest.dead_letter.REASONS`): bytes that are not JSON are
``invalid_json``, except the non-JSON number literals ``NaN`` / ``Infinity`` (what
Python's ``json.dumps`` writes) and numbers too large for a double, which are
``non_finite``; a number outside its schema's minimum/maximum is
``value_out_of_range``; any other schema failure is ``schema``. Hostile input
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
from typing import Callable, NamedTuple

import fastjsonschema
import numpy as np
import orjson

import schemas
from streams.ingest.dead_letter import DeadLetter
from streams.ingest.fastpath import fast_check
from streams.ingest.messages import RawMessage
from streams.timeparse import reading_time

__all__ = ["Batch", "decode", "reading_bytes", "EARLIEST_VALID_TS", "RANGE_RULES"]

#: Readings dated before 2000-01-01T00:00:00Z are refused (clock reset, epoch zero).
EARLIEST_VALID_TS = 946684800.0

#: JSON Schema keywords whose failure means "a number of the right type, physically absurd".
RANGE_RULES = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})

#: Where a number literal JSON lacks starts (after an optional minus sign).
_NON_JSON_NUMBERS = ("NaN", "Infinity")


class _Validators(NamedTuple):
    """A schema's compiled checks: the envelope, any reading, and per reading ``type``
    (fast check, full check) of the definition that type selects."""

    envelope: Callable
    reading: Callable
    by_type: dict


def _never(_reading) -> bool:
    return False


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
            by_type[const] = (fast_check(definitions[name]), compile_definition(name))
    return _Validators(compile_definition("envelope"), compile_definition("reading"), by_type)


@dataclass
class Batch:
    """Valid readings of one batch as columns, plus the dead letters.

    ``subject_ids`` raw (not yet pseudonymised) ids; ``ts`` event time (s, UTC
    epoch); ``columns`` the domain's numeric columns; ``groups`` per group name, the
    group id of each reading or None (``gateway`` always present).
    """

    subject_ids: list[str]
    ts: np.ndarray
    columns: dict
    groups: dict
    dead_letters: list[DeadLetter] = field(default_factory=list)
    messages: int = 0
    #: per valid reading: (message, position in its envelope or -1, the reading as decoded)
    origins: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.subject_ids)


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


def _has_non_finite(reading) -> bool:
    return reading is _NON_FINITE or (type(reading) is dict and any(v is _NON_FINITE for v in reading.values()))


def _number(value, codes) -> float:
    if codes is not None and type(value) is str:
        return float(codes.get(value, math.nan))
    if value is None or type(value) is str:
        return math.nan
    return float(value)


def decode(messages: list[RawMessage], domain, now: float | None = None,
           max_future_skew_s: float = 86400.0) -> Batch:
    """Decode raw messages of ``domain`` into a :class:`Batch`; never raises on bad input."""
    validators = _validators(domain.schema)
    validate_envelope, by_type = validators.envelope, validators.by_type
    any_reading = (_never, validators.reading)
    # One kind of reading: its own checks refuse any other type with the same error, no dispatch needed.
    only_kind = next(iter(by_type.values())) if len(by_type) == 1 else None
    columns_spec = [(c.json, c.codes) for c in domain.columns]
    group_spec = domain.groups
    ids: list[str] = []
    times: list[float] = []
    values: list[list[float]] = [[] for _ in columns_spec]
    groups: dict[str, list] = {"gateway": [], **{name: [] for name, _ in group_spec}}
    gateway_ids = groups["gateway"]
    origin: list[tuple[RawMessage, int, dict]] = []
    dead: list[DeadLetter] = []

    def accept(reading, gateway: str | None, message: RawMessage, position: int, salvaged: bool = False) -> None:
        if salvaged and _has_non_finite(reading):
            dead.append(DeadLetter(_reading_bytes(reading, message, position), "non_finite", _NON_FINITE_DETAIL,
                                   message, position))
            return
        if only_kind is not None:
            certainly_valid, validate = only_kind
        else:
            kind = reading.get("type") if type(reading) is dict else None
            certainly_valid, validate = by_type.get(kind, any_reading) if type(kind) is str else any_reading
        if not certainly_valid(reading):
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
        ids.append(reading["id"])
        times.append(moment)
        for out, (name, codes) in zip(values, columns_spec):
            out.append(_number(reading.get(name), codes))
        gateway_ids.append(reading.get("gatewayId", gateway))
        for name, json_field in group_spec:
            groups[name].append(reading.get(json_field))
        origin.append((message, position, reading))

    for message in messages:
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
                continue
            salvaged = True
            if _has_non_finite(document):   # a bare NaN, or one in a single reading or the envelope's own fields
                dead.append(DeadLetter(message.value, "non_finite", f"{_NON_FINITE_DETAIL} ({error})", message))
                continue
        if isinstance(document, dict) and document.get("type") == "ReadingBatch":
            try:
                validate_envelope(document)
            except fastjsonschema.JsonSchemaValueException as error:
                dead.append(DeadLetter(message.value, "schema", f"batch envelope: {error.message}", message))
                continue
            gateway = document["gatewayId"]
            for position, reading in enumerate(document["readings"]):
                accept(reading, gateway, message, position, salvaged)
        elif isinstance(document, dict):
            accept(document, None, message, -1)
        else:
            dead.append(DeadLetter(message.value, "schema",
                                   f"expected a JSON object, got {type(document).__name__}", message))

    ts = np.array(times, dtype=np.float64)
    arrays = {c.column: np.array(v, dtype=np.float64) for c, v in zip(domain.columns, values)}
    now = time.time() if now is None else now
    finite = np.isfinite(ts)
    for column in arrays.values():
        finite &= ~np.isinf(column)   # NaN = absent (optional field); inf is never a measurement
    in_range = (ts >= EARLIEST_VALID_TS) & (ts <= now + max_future_skew_s)
    keep = finite & in_range
    if not keep.all():
        for i in np.flatnonzero(~keep):
            message, position, reading = origin[i]
            if not finite[i]:
                reason, detail = "non_finite", "a number or dateObserved is not finite"
            else:
                reason = "timestamp_out_of_range"
                detail = (f"dateObserved {reading['dateObserved']} is before 2000-01-01 or more than "
                          f"{max_future_skew_s:.0f} s ahead of the clock")
            dead.append(DeadLetter(_reading_bytes(reading, message, position), reason, detail, message, position))
        ids = [x for x, k in zip(ids, keep) if k]
        origin = [x for x, k in zip(origin, keep) if k]
        groups = {name: [x for x, k in zip(members, keep) if k] for name, members in groups.items()}
        ts = ts[keep]
        arrays = {name: column[keep] for name, column in arrays.items()}
    return Batch(ids, np.ascontiguousarray(ts), {k: np.ascontiguousarray(v) for k, v in arrays.items()}, groups,
                 dead, len(messages), origin)


def reading_bytes(batch: Batch, i: int) -> bytes:
    """Valid reading ``i`` of a batch as received (its own JSON inside an envelope)."""
    message, position, reading = batch.origins[i]
    return _reading_bytes(reading, message, position)


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
