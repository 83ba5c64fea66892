"""The consent registers: who is enrolled in the welfare check, declared absences, objections.

Three compacted topics, one partition each, written by ``glasscity enrol | unenrol | absence |
object`` and followed by every worker (:class:`ConsentRegister` is the in-memory view). Keys
are the household's pseudonym (``wm-...``, the same keyed HMAC the worker uses), never the meter
id, so the registers hold no raw identifier:

==================================  =========================  ======================================
topic                               key                        value (JSON; ``time`` = when recorded)
==================================  =========================  ======================================
``<prefix>.consent.enrolment.v1``   ``wm-...``                 ``{"enrolled": true|false, "time"}``
``<prefix>.consent.absence.v1``     ``wm-...|<from epoch s>``  ``{"from": s, "until": s, "time"}``;
                                                               a tombstone (no value) cancels it
``<prefix>.consent.objection.v1``   ``wm-...|<detector|*>``    ``{"objected": true|false, "time"}``
==================================  =========================  ======================================

Semantics (applied by :class:`streams.pipeline.gate.ConsentGate`):

* a detector that ``requires_enrolment`` runs only for enrolled households; for any other it
  keeps no state and raises nothing;
* a detector that ``absence_holds`` raises nothing for a household while one of its declared
  absences covers the alert's time; an episode still open when the absence ends is raised then;
* an objection names one detector or ``*`` (every detector whose ``objection_allowed``); the
  named detectors skip the household and delete their state for it. An objection to a detector
  that does not allow objection is refused when it is recorded.

A malformed record is counted and logged (topic, key) and changes nothing: the registers are
written by the commands above, so one means somebody wrote to the topic by other means.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import msgspec

__all__ = ["ConsentRegister", "ConsentRecordError", "REGISTER_TOPICS", "ALL_DETECTORS", "Enrolment", "Absence",
           "Objection", "record_key", "encode", "rekey_records"]

log = logging.getLogger("glasscity.consent")

#: Short topic names (``<prefix>.<short>``) of the three registers, by kind.
REGISTER_TOPICS = {"enrolment": "consent.enrolment.v1", "absence": "consent.absence.v1",
                   "objection": "consent.objection.v1"}
#: An objection to every detector that allows one.
ALL_DETECTORS = "*"
KEY_SEPARATOR = "|"


class ConsentRecordError(ValueError):
    """A register record that cannot be read (the message says which and why)."""


class Enrolment(msgspec.Struct, forbid_unknown_fields=True):
    enrolled: bool
    time: str = ""


class Absence(msgspec.Struct, forbid_unknown_fields=True):
    from_s: float = msgspec.field(name="from")
    until_s: float = msgspec.field(name="until")
    time: str = ""


class Objection(msgspec.Struct, forbid_unknown_fields=True):
    objected: bool
    time: str = ""


_TYPES = {"enrolment": Enrolment, "absence": Absence, "objection": Objection}
_DECODERS = {kind: msgspec.json.Decoder(t) for kind, t in _TYPES.items()}
_ENCODER = msgspec.json.Encoder()


def record_key(kind: str, pseudonym: str, part: str | float | None = None) -> bytes:
    """The record key: the pseudonym, and for absences the start (epoch s), for objections the detector."""
    if kind == "enrolment":
        return pseudonym.encode()
    if kind == "absence":
        return f"{pseudonym}{KEY_SEPARATOR}{float(part):.0f}".encode()
    return f"{pseudonym}{KEY_SEPARATOR}{part}".encode()


def encode(record: msgspec.Struct) -> bytes:
    return _ENCODER.encode(record)


@dataclass
class ConsentRegister:
    """What the three registers say now. ``version`` grows with every change (cache invalidation).

    ``everyone_enrolled``: for in-process evaluation (replay, quality harness, benchmarks) —
    every household counts as enrolled and nothing is absent or objected. Workers never use it:
    theirs starts empty (nobody enrolled) and follows the topics.
    """

    everyone_enrolled: bool = False
    enrolled: set[str] = field(default_factory=set)
    absences: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)   # pseudonym -> {key part: (from, until)}
    objections: dict[str, set[str]] = field(default_factory=dict)           # pseudonym -> detectors or "*"
    version: int = 0
    malformed: int = 0

    @classmethod
    def everyone(cls) -> "ConsentRegister":
        return cls(everyone_enrolled=True)

    def clear(self) -> None:
        """Forget everything (before reading the registers again from their start)."""
        self.enrolled.clear()
        self.absences.clear()
        self.objections.clear()
        self.version += 1

    # -- following the topics ------------------------------------------------------------------
    def apply(self, kind: str, key: bytes | None, value: bytes | None) -> None:
        """Fold one record of register ``kind`` in; a malformed one is counted, logged and ignored."""
        try:
            self._apply(kind, key, value)
        except ConsentRecordError as error:
            self.malformed += 1
            log.error("consent register %s: record %r ignored: %s", kind, (key or b"")[:80], error)
            return
        self.version += 1

    def _apply(self, kind: str, key: bytes | None, value: bytes | None) -> None:
        if kind not in _TYPES:
            raise ConsentRecordError(f"unknown register {kind!r}")
        try:
            text = (key or b"").decode("utf-8")
        except UnicodeDecodeError:
            raise ConsentRecordError("the key is not UTF-8") from None
        pseudonym, _, part = text.partition(KEY_SEPARATOR)
        if not pseudonym or (kind != "enrolment") != bool(part):
            raise ConsentRecordError(f"key {text[:80]!r} is not a {kind} key")
        if value is None:                                   # a tombstone: the record is withdrawn
            if kind == "enrolment":
                self.enrolled.discard(pseudonym)
            elif kind == "absence":
                self.absences.get(pseudonym, {}).pop(part, None)
            else:
                self.objections.get(pseudonym, set()).discard(part)
            return
        try:
            record = _DECODERS[kind].decode(value)
        except msgspec.DecodeError as error:
            raise ConsentRecordError(f"value is not a {kind} record: {error}") from None
        if kind == "enrolment":
            (self.enrolled.add if record.enrolled else self.enrolled.discard)(pseudonym)
        elif kind == "absence":
            if not (math.isfinite(record.from_s) and math.isfinite(record.until_s) and record.until_s > record.from_s):
                raise ConsentRecordError("an absence needs finite from < until")
            self.absences.setdefault(pseudonym, {})[part] = (record.from_s, record.until_s)
        else:
            chosen = self.objections.setdefault(pseudonym, set())
            (chosen.add if record.objected else chosen.discard)(part)

    # -- questions the gate asks -----------------------------------------------------------------
    def excluded(self, declaration, pseudonym: str) -> bool:
        """Whether ``declaration``'s detector must skip this household (not enrolled, or objected)."""
        if self.everyone_enrolled:
            return False
        if declaration.requires_enrolment and pseudonym not in self.enrolled:
            return True
        if declaration.objection_allowed:
            objected = self.objections.get(pseudonym)
            if objected and (ALL_DETECTORS in objected or declaration.name in objected):
                return True
        return False

    def restricts(self, declaration) -> bool:
        """Whether the registers can ever exclude a household from this detector."""
        return not self.everyone_enrolled and (declaration.requires_enrolment or declaration.objection_allowed)

    def absent(self, pseudonym: str, t: float) -> bool:
        """Whether a declared absence of this household covers event time ``t`` (s): from <= t < until."""
        spans = self.absences.get(pseudonym)
        return bool(spans) and any(start <= t < until for start, until in spans.values())


def rekey_records(records: list[tuple[bytes, bytes | None]], old_to_new: dict[str, str],
                  finish: bool = False) -> tuple[list, list[str]]:
    """A register's records for a key rotation, in two phases.

    First (``finish`` False): each live record again under the household's new pseudonym; the old
    record stays, so workers still on the old key keep honouring it. Then (``finish`` True, once
    every worker runs on the new key): a tombstone for each old record whose new copy exists.
    Records already under a new pseudonym count as moved. Returns (records to write, old
    pseudonyms the registry does not know)."""
    latest: dict[bytes, bytes | None] = {}
    for key, value in records:
        if key != b"m":
            latest[key] = value
    moved_to = set(old_to_new.values())
    out, unknown = [], []
    for key, value in latest.items():
        if value is None:
            continue
        pseudonym, sep, part = key.decode("utf-8", "replace").partition(KEY_SEPARATOR)
        if pseudonym in moved_to:                     # a copy made by an earlier run
            continue
        new = old_to_new.get(pseudonym)
        if new is None:
            unknown.append(pseudonym)
            continue
        copy = (new + sep + part).encode()
        if finish:
            if latest.get(copy) is not None:
                out.append((key, None))
        elif latest.get(copy) != value:
            out.append((copy, value))
    return out, sorted(set(unknown))
