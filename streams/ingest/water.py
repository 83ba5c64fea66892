"""Decode and validate water messages: one reading or a gateway batch envelope.

Structure is checked against ``schemas/water-reading.schema.json`` (a fast check
derived from it for the common shape, else the full schema compiled once with
fastjsonschema); values are then checked vectorised over the whole batch
(finite index, timestamp within bounds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import fastjsonschema
import numpy as np
import orjson

import schemas
from streams.ingest.dead_letter import DeadLetter
from streams.ingest.fastpath import fast_check
from streams.ingest.messages import RawMessage

__all__ = ["WaterBatch", "decode_water", "EARLIEST_VALID_TS"]

#: Readings dated before 2000-01-01T00:00:00Z are refused (clock reset, epoch zero).
EARLIEST_VALID_TS = 946684800.0


def _compile(definition: str):
    schema = schemas.load("water-reading")
    sub = {"$schema": schema["$schema"], "definitions": schema["definitions"],
           "$ref": f"#/definitions/{definition}"}
    # Formats are checked by parsing below, where the reason can be precise.
    return fastjsonschema.compile(sub, formats={"date-time": lambda value: True})


_validate_reading = _compile("reading")
_validate_envelope = _compile("envelope")
_certainly_valid_reading = fast_check(schemas.load("water-reading")["definitions"]["reading"])


@dataclass
class WaterBatch:
    """Valid readings of one batch as columns, plus the dead letters.

    ``meter_ids`` raw (not yet pseudonymised) ids; ``ts`` event time (s, UTC epoch);
    ``index`` cumulative index (m3); ``gateway_ids`` the delivering gateway or None.
    """

    meter_ids: list[str]
    ts: np.ndarray
    index: np.ndarray
    gateway_ids: list[str | None]
    dead_letters: list[DeadLetter] = field(default_factory=list)
    messages: int = 0

    def __len__(self) -> int:
        return len(self.meter_ids)


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


def decode_water(messages: list[RawMessage], now: float | None = None,
                 max_future_skew_s: float = 86400.0) -> WaterBatch:
    """Decode raw messages into a :class:`WaterBatch`; never raises on bad input."""
    ids: list[str] = []
    times: list[float] = []
    indices: list[float] = []
    gateways: list[str | None] = []
    origin: list[tuple[RawMessage, int, dict]] = []
    dead: list[DeadLetter] = []

    def accept(reading: dict, gateway: str | None, message: RawMessage, position: int) -> None:
        if not _certainly_valid_reading(reading):
            try:
                _validate_reading(reading)
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
        indices.append(reading["waterConsumption"])
        gateways.append(reading.get("gatewayId", gateway))
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
                _validate_envelope(document)
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
    index = np.array(indices, dtype=np.float64)
    now = time.time() if now is None else now
    finite = np.isfinite(index) & np.isfinite(ts)
    in_range = (ts >= EARLIEST_VALID_TS) & (ts <= now + max_future_skew_s)
    keep = finite & in_range
    if not keep.all():
        for i in np.flatnonzero(~keep):
            message, position, reading = origin[i]
            if not finite[i]:
                reason, detail = "non_finite", "waterConsumption or dateObserved is not a finite number"
            else:
                reason = "timestamp_out_of_range"
                detail = (f"dateObserved {reading['dateObserved']} is before 2000-01-01 or more than "
                          f"{max_future_skew_s:.0f} s ahead of the clock")
            dead.append(DeadLetter(_reading_bytes(reading, message, position), reason, detail, message, position))
        ids = [x for x, k in zip(ids, keep) if k]
        gateways = [x for x, k in zip(gateways, keep) if k]
        ts, index = ts[keep], index[keep]
    return WaterBatch(ids, np.ascontiguousarray(ts), np.ascontiguousarray(index), gateways, dead, len(messages))


def _reading_bytes(reading, message: RawMessage, position: int) -> bytes:
    """The offending item as received: the whole message, or the one reading of an envelope."""
    if position < 0:
        return message.value
    try:
        return orjson.dumps(reading)
    except TypeError:
        return repr(reading).encode()
