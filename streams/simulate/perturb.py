"""Message-level perturbations of a simulation's feed: the world the thresholds were not tuned for.

Contract:

* A perturbation is a function ``perturbation(steps, ..., seed=0)`` over the
  ``(city time, [(kafka key, kafka value), ...])`` steps of a simulation (what
  ``simulation.steps()`` yields) that returns steps of the same shape, lazily, in time
  order. It is applied before the messages reach a pipeline (or a broker).
* It changes the feed only -- when readings are stamped, which arrive, when they are
  delivered -- never what happened: the simulation's ground truth (its incidents,
  their start and end, in true event time) stays the simulator's and is not even
  seen here. A detector that misses an incident under a perturbation missed it.
* Pure and deterministic: the same steps, parameters and ``seed`` give the same bytes.
  Draws come from ``numpy.random.default_rng([seed, ...])``; what is fixed per sensor
  (a clock's offset) is derived from the seed and the sensor id alone, so it does not
  depend on the order in which sensors appear.
* Malformed input stays what it was: a message that is not JSON, a document that is not
  an object, and a reading whose ``dateObserved`` is not an ISO 8601 date-time with a UTC
  offset are passed through untouched (time perturbations) -- each still makes its one
  dead letter. A message a perturbation does not change keeps its original bytes.
* A reading is an object with ``dateObserved``: a single-reading message, or one item of
  a ``ReadingBatch`` envelope. Envelope fields (``gatewayId``, ``dateSent``) are kept.
* Memory is bounded by one step, except :func:`batched_delivery`, which holds the
  batched keys' messages for one batching period.

Perturbations:

* :func:`jitter` -- each reading's time shifted by its own uniform draw within
  +-``share`` x the cadence. ``share`` must be below 0.5, so two readings of a sensor one
  cadence apart keep their order (they stay at least (1 - 2 share) cadences apart).
* :func:`drop` -- each reading is lost with probability ``share``; an envelope left
  empty is not sent.
* :func:`clock_skew` -- each sensor's clock is off by a fixed offset, uniform within
  +-``max_skew_s``, for the whole run.
* :func:`local_time` -- every ``dateObserved`` (and an envelope's ``dateSent``) written in
  a time zone's local time with its UTC offset: the same instants, other text. Across a
  daylight-saving change the offset in the stamps changes (``+02:00`` -> ``+01:00``) and
  local clock times repeat (or skip) an hour. :func:`offset_changes` finds the changes.
* :func:`batched_delivery` -- a share of the keys (a gateway's or a group of sensors'
  messages) is delivered not as it is sent but every ``period_s``: everything from one
  period arrives together, with its real event times, in the first step at or after the
  period's end (a last delivery at the end of the final period follows the last step).

Measurement noise is not a message perturbation: it is the scenarios' ``noise_scale``.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime
from functools import lru_cache
from typing import Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from streams.timeparse import reading_time

__all__ = ["Steps", "batched_delivery", "clock_skew", "drop", "jitter", "local_time", "offset_changes",
           "sensor_offset_s"]

Steps = Iterable[tuple[float, list[tuple[bytes, bytes]]]]

_UNCHANGED = object()


#: The pipeline's own parser of a reading's time, cached: a perturbation re-reads every stamp.
_parse = lru_cache(maxsize=1 << 16)(reading_time)


@lru_cache(maxsize=1 << 16)
def _utc(t: float) -> str:
    """The simulators' stamp: whole seconds, UTC, ``Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(round(t)))


def _reading_time(reading) -> float | None:
    if type(reading) is dict:
        stamp = reading.get("dateObserved")
        if type(stamp) is str:
            return _parse(stamp)
    return None


def _map_readings(value: bytes, change: Callable[[dict], object], envelope_change=None) -> bytes | None:
    """Apply ``change`` to each reading of one message.

    ``change(reading)`` edits the reading in place and returns None, or returns
    ``_UNCHANGED`` (left as it is) or ``False`` (the reading is dropped). Returns the
    message's new bytes, its original bytes when nothing changed, or None when every
    reading was dropped.
    """
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if type(document) is not dict:
        return value
    if document.get("type") == "ReadingBatch" and type(document.get("readings")) is list:
        kept, changed = [], False
        for reading in document["readings"]:
            outcome = change(reading)
            if outcome is False:
                changed = True
                continue
            changed |= outcome is not _UNCHANGED
            kept.append(reading)
        if not kept:
            return None
        if envelope_change is not None:
            changed |= envelope_change(document) is not _UNCHANGED
        if not changed:
            return value
        document["readings"] = kept
        return orjson.dumps(document)
    outcome = change(document)
    if outcome is False:
        return None
    return value if outcome is _UNCHANGED else orjson.dumps(document)


def _map_steps(steps: Steps, per_message: Callable[[bytes], bytes | None]) -> Iterator:
    for when, messages in steps:
        out = []
        for key, value in messages:
            new = per_message(value)
            if new is not None:
                out.append((key, new))
        yield when, out


def jitter(steps: Steps, cadence_s: float, share: float = 0.2, seed: int = 0) -> Iterator:
    """Each reading's ``dateObserved`` shifted by a uniform draw in [-share, +share] x ``cadence_s``
    (whole seconds). With ``share`` < 0.5 the order of a sensor's readings is preserved."""
    if not 0.0 <= share < 0.5:
        raise ValueError("share must be within [0, 0.5): more would reorder a sensor's readings")
    if cadence_s <= 0:
        raise ValueError("cadence_s must be > 0")
    rng = np.random.default_rng([seed, 1])
    bound = share * cadence_s

    def change(reading):
        t = _reading_time(reading)
        if t is None:
            return _UNCHANGED
        reading["dateObserved"] = _utc(t + round(float(rng.uniform(-bound, bound))))
        return None

    return _map_steps(steps, lambda value: _map_readings(value, change))


def drop(steps: Steps, share: float = 0.05, seed: int = 0) -> Iterator:
    """Each reading lost with probability ``share`` (independent draws); an envelope left empty is not sent."""
    if not 0.0 <= share <= 1.0:
        raise ValueError("share must be within [0, 1]")
    rng = np.random.default_rng([seed, 2])

    def change(reading):
        if type(reading) is not dict:
            return _UNCHANGED
        return False if rng.random() < share else _UNCHANGED

    return _map_steps(steps, lambda value: _map_readings(value, change))


def sensor_offset_s(sensor_id: str, max_skew_s: float, seed: int = 0) -> float:
    """The fixed clock offset (whole seconds, within +-max_skew_s) of one sensor: from the seed and its id only."""
    digest = hashlib.blake2b(f"{seed}\x00{sensor_id}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2.0 ** 64          # uniform in [0, 1)
    return float(round((2.0 * u - 1.0) * max_skew_s))


def clock_skew(steps: Steps, max_skew_s: float = 120.0, seed: int = 0) -> Iterator:
    """Every reading of a sensor (its ``id``) stamped by a clock off by the sensor's own fixed offset
    (:func:`sensor_offset_s`, uniform within +-``max_skew_s``)."""
    if max_skew_s < 0:
        raise ValueError("max_skew_s must be >= 0")
    offsets: dict[str, float] = {}

    def change(reading):
        t = _reading_time(reading)
        if t is None or type(reading.get("id")) is not str:
            return _UNCHANGED
        sensor = reading["id"]
        offset = offsets.get(sensor)
        if offset is None:
            offset = offsets[sensor] = sensor_offset_s(sensor, max_skew_s, seed)
        reading["dateObserved"] = _utc(t + offset)
        return None

    return _map_steps(steps, lambda value: _map_readings(value, change))


def local_time(steps: Steps, zone: str = "Europe/Madrid") -> Iterator:
    """Every ``dateObserved`` and envelope ``dateSent`` as local time of ``zone`` with its UTC offset
    (``2026-10-25T02:30:00+02:00``): the same instants."""
    tz = ZoneInfo(zone)

    @lru_cache(maxsize=1 << 16)
    def local(t: float) -> str:
        return datetime.fromtimestamp(t, tz).isoformat()

    def restamp(document, field):
        stamp = document.get(field)
        t = _parse(stamp) if type(stamp) is str else None
        if t is None:
            return _UNCHANGED
        document[field] = local(t)
        return None

    def change(reading):
        if type(reading) is not dict:
            return _UNCHANGED
        return restamp(reading, "dateObserved")

    return _map_steps(steps, lambda value: _map_readings(value, change, lambda env: restamp(env, "dateSent")))


def offset_changes(zone: str, start: float, end: float) -> list[float]:
    """Instants (whole epoch s) in (start, end) at which ``zone``'s UTC offset changes: the first second
    of each new offset."""
    tz = ZoneInfo(zone)

    def offset(t: float):
        return datetime.fromtimestamp(t, tz).utcoffset()

    changes = []
    low = float(np.floor(start))
    while low < end - 1:
        high = min(low + 3600.0, float(np.ceil(end)) - 1)
        if offset(high) != offset(low):
            a, b = low, high          # offset(a) is the old one, offset(b) the new one
            while b - a > 1:
                mid = float((a + b) // 2)
                a, b = (mid, b) if offset(mid) == offset(a) else (a, mid)
            changes.append(b)
        low = high
    return changes


def batched_delivery(steps: Steps, period_s: float = 6 * 3600.0, share: float = 0.2, seed: int = 0) -> Iterator:
    """A share of the keys delivers its messages every ``period_s`` instead of as they are sent.

    The batched keys are drawn (``round(share x keys)``, at least one when ``share`` > 0) among
    the keys of the first step; periods run from the first step's time. Messages of a batched
    key sent in period [p, p + period_s) are held and delivered, in their order and with their
    own event times, in the first step at or after p + period_s, before that step's messages;
    what is still held after the last step comes in one more step at its period's end.
    """
    if period_s <= 0:
        raise ValueError("period_s must be > 0")
    if not 0.0 <= share <= 1.0:
        raise ValueError("share must be within [0, 1]")
    rng = np.random.default_rng([seed, 5])
    batched: set[bytes] | None = None
    held: list[tuple[bytes, bytes]] = []
    first = period_end = None
    for when, messages in steps:
        if batched is None:
            keys = sorted({key for key, _ in messages})
            count = min(len(keys), max(1, round(share * len(keys)))) if share > 0 and keys else 0
            batched = {keys[i] for i in rng.choice(len(keys), count, replace=False)} if count else set()
            first = float(when)
            period_end = first + period_s
        out = []
        if when >= period_end:
            out, held = held, []
            period_end = first + (float(np.floor((when - first) / period_s)) + 1) * period_s
        for key, value in messages:
            (held if key in batched else out).append((key, value))
        yield when, out
    if held:
        yield float(period_end), held
