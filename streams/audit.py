"""The audit log: an append-only, hash-chained record of who changed what the analyses do, and why.

One JSON object per line (UTF-8), each holding ``seq`` (0, 1, 2 ...), ``time`` (UTC, ISO 8601),
``action`` (one of :data:`ACTIONS`), ``detector`` (its name, or ``-`` for an entry about no one
detector), ``by``, ``reason``, ``prev`` (the ``hash`` of the entry before it; 64 zeros for the
first) and ``hash``: the SHA-256 of the entry's canonical JSON without its ``hash`` (keys sorted,
no spaces). Optional: ``subject`` (a household's pseudonym, never a meter id) and ``details`` (an
object, e.g. the threshold values a worker loaded).

Actions: ``activate`` / ``deactivate`` a dormant detector; ``thresholds`` (a worker loaded
threshold values other than the last recorded ones); ``reidentify`` (a pseudonym was mapped back
to a meter id); ``enrol`` / ``unenrol``, ``absence`` / ``absence_cancel``, ``object`` /
``object_withdraw`` (the consent registers, :mod:`streams.consent`); ``rekey`` (the registers moved to a
new pseudonym key). Editing any byte of an entry breaks its hash;
removing or reordering entries breaks the ``seq`` and ``prev`` links of the entry after the change.
:func:`verify` names every broken entry by its position (1-based line).

A dormant detector runs only while the newest entry about it in a *valid* log is an activation
(:func:`activations`); a log that does not verify (or cannot be read) activates nothing, and the
worker says so. Appends are serialised by an exclusive lock on the file.

What the chain does not catch on its own: somebody with write access to the file who removes the
newest entries, or rewrites the whole chain with fresh hashes (the hash is not keyed). Keep the log
where workers can read it and only the people who decide can write it; the copy on the audit topic
is the independent record to compare it with.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["ACTIONS", "NO_DETECTOR", "AuditError", "Problem", "activations", "append", "read_entries", "verify",
           "last_thresholds"]

ACTIONS = ("activate", "deactivate", "thresholds", "reidentify", "enrol", "unenrol", "absence", "absence_cancel",
           "object", "object_withdraw", "rekey")
#: The ``detector`` of an entry about no one detector.
NO_DETECTOR = "-"
GENESIS = "0" * 64


class AuditError(ValueError):
    """An audit entry cannot be written (bad arguments, or the log it would extend does not verify)."""


@dataclass(frozen=True)
class Problem:
    position: int        # 1-based line number
    reason: str

    def __str__(self) -> str:
        return f"entry {self.position}: {self.reason}"


def _digest(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()


def read_entries(path: str | Path) -> list[str]:
    """The log's lines (without their newline); no file is an empty log. Raises OSError or
    UnicodeDecodeError when the file cannot be read as UTF-8 text."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [line for line in text.split("\n") if line != ""]


_TEXT_FIELDS = ("time", "action", "detector", "by", "reason", "prev", "hash")
_OPTIONAL_FIELDS = {"subject": str, "details": dict}


def verify(path: str | Path) -> tuple[list[dict], list[Problem]]:
    """Check every entry; returns ``(entries, problems)`` (problems empty: the log is intact)."""
    entries, problems = [], []
    prev, expected = GENESIS, 0
    try:
        lines = read_entries(path)
    except (OSError, UnicodeDecodeError) as error:
        return [], [Problem(0, f"the log cannot be read ({error.__class__.__name__}: {error})")]
    for position, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
        except ValueError:
            problems.append(Problem(position, "not a JSON object (edited or truncated)"))
            prev, expected = None, None
            continue
        malformed = [name for name in _TEXT_FIELDS if not isinstance(entry.get(name), str)]
        malformed += [name for name, kind in _OPTIONAL_FIELDS.items() if name in entry
                      and not isinstance(entry[name], kind)]
        if malformed or type(entry.get("seq")) is not int:
            problems.append(Problem(position, f"malformed entry (missing or wrong type: "
                                              f"{', '.join(malformed or ['seq'])})"))
            prev, expected = None, None
            continue
        if entry.get("hash") != _digest(entry):
            problems.append(Problem(position, "its content does not match its hash (edited)"))
        seq = entry.get("seq")
        if expected is not None and seq != expected:
            problems.append(Problem(position, f"sequence number {seq!r} where {expected} belongs "
                                              f"(an entry before it was removed, or entries were reordered)"))
        elif prev is not None and entry.get("prev") != prev:
            problems.append(Problem(position, "does not follow the entry before it (removed or reordered entries)"))
        if entry.get("action") not in ACTIONS:
            problems.append(Problem(position, f"unknown action {entry.get('action')!r}"))
        prev = entry.get("hash")
        expected = seq + 1 if isinstance(seq, int) else None
        entries.append(entry)
    return entries, problems


def append(path: str | Path, action: str, detector: str, by: str, reason: str, now: datetime | None = None,
           subject: str | None = None, details: dict | None = None) -> dict:
    """Add one entry (flushed and fsynced before returning it). Refuses an empty ``by`` or
    ``reason``, an unknown action, and a log that does not verify (nothing is appended to a
    tampered log)."""
    if action not in ACTIONS:
        raise AuditError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    if not by.strip() or not reason.strip():
        raise AuditError("an audit entry needs who (--by) and why (--reason)")
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as log:
            fcntl.flock(log.fileno(), fcntl.LOCK_EX)      # one writer at a time: verify and append together
            entries, problems = verify(path)
            if problems:
                raise AuditError(f"the audit log {path} does not verify ({problems[0]}); nothing appended")
            moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
            entry = {"seq": len(entries), "time": moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
                     "action": action, "detector": detector, "by": by.strip(), "reason": reason.strip(),
                     "prev": entries[-1]["hash"] if entries else GENESIS}
            if subject is not None:
                entry["subject"] = subject
            if details is not None:
                entry["details"] = details
            entry["hash"] = _digest(entry)
            log.write(json.dumps(entry, ensure_ascii=False) + "\n")
            log.flush()
            os.fsync(log.fileno())
    except OSError as error:
        raise AuditError(f"cannot write the audit log {path}: {error}") from None
    return entry


def activations(path: str | Path | None) -> tuple[set[str], list[Problem]]:
    """Detectors whose newest entry is an activation, and the log's problems. A log with any
    problem activates nothing (a tampered record cannot switch an analysis on)."""
    if not path:
        return set(), []
    entries, problems = verify(path)
    if problems:
        return set(), problems
    state: dict[str, str] = {}
    for entry in entries:
        if entry["action"] in ("activate", "deactivate"):
            state[entry["detector"]] = entry["action"]
    return {name for name, action in state.items() if action == "activate"}, []


def last_thresholds(entries: list[dict]) -> dict[str, dict]:
    """The newest recorded threshold values per detector (``thresholds`` entries' ``details``)."""
    found: dict[str, dict] = {}
    for entry in entries:
        if entry["action"] == "thresholds" and isinstance(entry.get("details"), dict):
            found[entry["detector"]] = entry["details"]
    return found
