"""Decode and validate any domain's messages: one reading or a gateway batch envelope.

Structure is checked against the domain's schema (a fast check derived from it for
the common shape, else the full schema compiled once with fastjsonschema); values
are then checked vectorised over the whole batch (finite numbers, timestamps within
bounds).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

import fastjsonschema
import numpy as np
import orjson

import schemas
from streams.ingest.dead_letter import DeadLetter
from streams.ingest.fastpath import fast_check
from streams.ingest.messages import RawMessage

__all__ = ["Batch", "decode", "EARLIEST_VALID_TS"]

#: Readings dated before 2000-01-01T00:00:00Z are refused (clock reset, epoch zero).
EARLIEST_VALID_TS = 946684800.0


@cache
def _validators(schema_name: str):
    schema = schemas.load(schema_name)

    def compile_definition(definition: str):
        sub = {"$schema": schema["$schema"], "definitions": schema["definitions"],
               "$ref": f"#/definitions/{definition}"}
        # Formats are checked by parsing below, where the reason can be precise.
        return fastjsonschema.compile(sub, formats={"date-time": lambda value: True})

    return (compile_definition("reading"), compile_definition("envelope"),
            fast_check(schema["definitions"]["reading"]))


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

    def __len__(self) -> int:
        return len(self.subject_ids)


def _schema_reason(error: fastjsonschema.JsonSchemaValueException) -> str:
    return "timestamp_invalid" if (error.name or "").endswith(".dateObserved") else "schema"


def _parse_time(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None or "T" not in text:
        return None
    return moment.timestamp()


def _number(value, codes) -> float:
    if codes is not None and type(value) is str:
        return float(codes.get(value, math.nan))
    if value is None or type(value) is str:
        return math.nan
    return float(value)


def decode(messages: list[RawMessage], domain, now: float | None = None,
           max_future_skew_s: float = 86400.0) -> Batch:
    """Decode raw messages of ``domain`` into a :class:`Batch`; never raises on bad input."""
    validate_reading, validate_envelope, certainly_valid = _validators(domain.schema)
    columns_spec = [(c.json, c.codes) for c in domain.columns]
    group_spec = domain.groups
    ids: list[str] = []
    times: list[float] = []
    values: list[list[float]] = [[] for _ in columns_spec]
    groups: dict[str, list] = {"gateway": [], **{name: [] for name, _ in group_spec}}
    gateway_ids = groups["gateway"]
    origin: list[tuple[RawMessage, int, dict]] = []
    dead: list[DeadLetter] = []

    def accept(reading, gateway: str | None, message: RawMessage, position: int) -> None:
        if not certainly_valid(reading):
            try:
                validate_reading(reading)
            except fastjsonschema.JsonSchemaValueException as error:
                dead.append(DeadLetter(_reading_bytes(reading, message, position), _schema_reason(error),
                                       error.message, message, position))
                return
        moment = _parse_time(reading["dateObserved"])
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
        try:
            if not message.value:
                raise orjson.JSONDecodeError("empty message value", "", 0)
            document = orjson.loads(message.value)
        except orjson.JSONDecodeError as error:
            reason = "non_finite" if "infinity" in str(error) else "invalid_json"
            dead.append(DeadLetter(message.value or b"", reason, f"cannot decode JSON: {error}", message))
            continue
        if isinstance(document, dict) and document.get("type") == "ReadingBatch":
            try:
                validate_envelope(document)
            except fastjsonschema.JsonSchemaValueException as error:
                dead.append(DeadLetter(message.value, "schema", f"batch envelope: {error.message}", message))
                continue
            gateway = document["gatewayId"]
            for position, reading in enumerate(document["readings"]):
                accept(reading, gateway, message, position)
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
        groups = {name: [x for x, k in zip(members, keep) if k] for name, members in groups.items()}
        ts = ts[keep]
        arrays = {name: column[keep] for name, column in arrays.items()}
    return Batch(ids, np.ascontiguousarray(ts), {k: np.ascontiguousarray(v) for k, v in arrays.items()}, groups,
                 dead, len(messages))


def _reading_bytes(reading, message: RawMessage, position: int) -> bytes:
    """The offending item as received: the whole message, or the one reading of an envelope."""
    if position < 0:
        return message.value
    try:
        return orjson.dumps(reading)
    except TypeError:
        return repr(reading).encode()
