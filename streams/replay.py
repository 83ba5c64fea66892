"""Backtest a detector on a historical export, with the same kernels and no broker.

Two kinds of input:

- a plain two-column CSV ``timestamp,value`` (header optional; timestamp ISO 8601
  or epoch seconds) for a *score* detector (one with ``backtest``): writes
  ``timestamp,value,anomaly_score`` with the score in [0, 1], one row per input row;
- readings of the detector's domain, as JSON lines (the wire format: one reading
  or one batch envelope per line) or as CSV whose header names the reading fields
  (``id,dateObserved,<columns>...``): runs the domain's whole pipeline (detectors
  may read each other's state) and writes ``timestamp,subject,<detector>_open``
  per reading, 1 while an episode of the detector is open for that subject.

Alerts of the chosen detector are printed either way.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import orjson

from streams.progress import progress
from streams.timeparse import InstantError, parse_instant

__all__ = ["replay", "read_series", "ReplayError"]


class ReplayError(ValueError):
    """The input cannot be replayed; the message says which row and why."""


def _parse_timestamp(text: str, row: int) -> float:
    try:
        return parse_instant(text, naive_is_utc=True)   # exports without offset are taken as UTC
    except InstantError as error:
        raise ReplayError(f"row {row}: timestamp {text.strip()[:40]!r}: {error}") from None


def read_series(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(timestamp texts, epoch seconds, values) of a two-column CSV; an empty value is NaN."""
    texts, times, values = [], [], []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = progress(csv.reader(handle), desc="reading", unit="rows")
        for number, row in enumerate(rows, start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) < 2:
                raise ReplayError(f"row {number}: expected two columns timestamp,value, got {len(row)}")
            if number == 1 and not _looks_numeric(row[1]):
                continue   # a header
            texts.append(row[0].strip())
            times.append(_parse_timestamp(row[0], number))
            cell = row[1].strip()
            try:
                values.append(float(cell) if cell else math.nan)
            except ValueError:
                raise ReplayError(f"row {number}: value {cell[:40]!r} is not a number") from None
    return texts, np.array(times, dtype=np.float64), np.array(values, dtype=np.float64)


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return not text.strip()


def _is_two_column_csv(path: Path) -> bool:
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if row:
                return len(row) == 2 and not row[0].lstrip().startswith("{")
    return False


def replay(detector_name: str, input_path: Path, output_path: Path | None, settings, out=None) -> dict:
    """Run one detector over a file; returns a summary {rows, alerts, output}."""
    out = sys.stdout if out is None else out
    from streams.detectors import CONFIGURABLE, REGISTRY

    if detector_name not in REGISTRY:
        raise ReplayError(f"unknown detector {detector_name!r}; known: {', '.join(sorted(REGISTRY))}")
    if not input_path.is_file():
        raise ReplayError(f"input file {input_path} does not exist")
    cls = REGISTRY[detector_name]
    from streams.detectors.thresholds import load_thresholds

    thresholds = load_thresholds(settings.thresholds_file, CONFIGURABLE)
    if hasattr(cls, "backtest") and _is_two_column_csv(input_path):
        return _replay_series(cls, thresholds[detector_name], input_path, output_path, out)
    return _replay_readings(detector_name, thresholds, input_path, output_path, settings, out)


def _replay_series(cls, thresholds, input_path, output_path, out) -> dict:
    """Score a plain series with the detector's own backtest: the worker's kernel and episode rule,
    one reading at a time (see the detector's ``backtest``)."""
    texts, ts, values = read_series(input_path)
    scores, episodes = cls.backtest(ts, values, thresholds)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != ts.shape or not np.all((scores >= 0) & (scores <= 1)):
        raise AssertionError(f"{cls.declaration.name}.backtest must give one score in [0, 1] per row")
    for start, end in episodes:
        print(f"{cls.declaration.name}: anomalous from {_iso(start)} to {_iso(end) if end is not None else '(end of input)'}",
              file=out)
    output_path = output_path or input_path.with_name(input_path.stem + ".scored.csv")
    with open(output_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for text, value, score in progress(zip(texts, values, scores), total=len(ts), desc="replay", unit="rows"):
            writer.writerow([text, "" if math.isnan(value) else repr(float(value)), f"{score:.6f}"])
    print(f"{len(ts)} rows scored -> {output_path}; {len(episodes)} anomalous episode(s)", file=out)
    return {"rows": len(ts), "alerts": len(episodes), "output": str(output_path)}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _reading_lines(input_path: Path, domain) -> list[bytes]:
    """Messages (bytes) from JSON lines, or from a CSV whose header names reading fields."""
    text = input_path.read_bytes()
    first = text.lstrip()[:1]
    if first in (b"{", b"["):
        return [line for line in text.splitlines() if line.strip()]
    reader = csv.DictReader(io.StringIO(text.decode("utf-8")))
    missing = {"id", "dateObserved"} - set(reader.fieldnames or [])
    if missing:
        raise ReplayError(f"{input_path}: a readings CSV needs the columns id, dateObserved and the domain's "
                          f"fields; missing {', '.join(sorted(missing))}")
    numeric = {c.json for c in domain.columns if not c.codes}
    messages = []
    for row in reader:
        reading = {"type": domain.reading_type}
        for key, value in row.items():
            if value is None or value == "":
                continue
            if key in numeric:
                try:
                    reading[key] = float(value)
                except ValueError:
                    reading[key] = value   # the schema check will refuse it, with the reason
            else:
                reading[key] = value
        messages.append(orjson.dumps(reading))
    return messages


def _replay_readings(detector_name, thresholds, input_path, output_path, settings, out) -> dict:
    import secrets

    from streams.domains import DOMAINS
    from streams.ingest import RawMessage, decode
    from streams.pipeline import DomainPipeline
    from streams.pseudonym import Pseudonymizer

    domain = next(d for d in DOMAINS.values() if detector_name in {c.declaration.name for c in d.detectors})
    from streams.config import SettingsError

    key = settings.require_pseudonym_key() if settings.pseudonym_key or settings.pseudonym_key_file else None
    if key is None and domain.subject_pseudonym:
        print("no GLASSCITY_PSEUDONYM_KEY: subjects are pseudonymised with a one-off key", file=out)
        key = secrets.token_hex(16).encode()
    from streams.audit import activations

    cls = next(c for c in domain.detectors if c.declaration.name == detector_name)
    activated, problems = activations(settings.audit_log)   # as the worker: a dormant detector needs its activation
    if cls.declaration.status == "dormant" and cls.declaration.name not in activated:
        why = f"the audit log does not verify ({problems[0]})" if problems else "no activation in the audit log"
        raise SettingsError(f"{cls.declaration.name} is dormant and not activated ({why}); "
                            f"see `glasscity detectors activate`")
    pipeline = DomainPipeline(domain, settings, Pseudonymizer(key or b"-" * 16), thresholds, clock=lambda: math.inf,
                              activated=activated)
    messages = [RawMessage(value, str(input_path), 0, i) for i, value in enumerate(_reading_lines(input_path, domain))]
    result = pipeline.process(messages)
    mine = [a.event for a in result.alerts if a.event["data"]["detector"] == detector_name]
    for event in mine:
        print(f"{event['time']} {event['data']['state']:7} {detector_name} {event['subject']}", file=out)
    for dead in result.dead_letters:
        print(f"line {dead.source.offset + 1}: refused ({dead.reason}): {dead.detail}", file=out)
    batch = decode(messages, domain, now=math.inf)
    subjects = pipeline.subject_keys(batch.subject_ids)
    open_at = _episode_intervals(mine)
    output_path = output_path or input_path.with_name(input_path.stem + f".{detector_name}.csv")
    column = detector_name.split(".", 1)[1] + "_open"
    with open(output_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp", "subject", column])
        for t, subject in progress(zip(batch.ts, subjects), total=len(subjects), desc="replay", unit="readings"):
            inside = any(start <= t < end for start, end in open_at.get(subject, ()))
            writer.writerow([_iso(float(t)), subject, int(inside)])
    print(f"{len(subjects)} readings -> {output_path}; {len(mine)} alert event(s); "
          f"{len(result.dead_letters)} refused", file=out)
    return {"rows": len(subjects), "alerts": len(mine), "output": str(output_path)}


def _episode_intervals(events: list[dict]) -> dict[str, list[tuple[float, float]]]:
    opened: dict[tuple[str, str], float] = {}
    intervals: dict[str, list[tuple[float, float]]] = {}
    for event in sorted(events, key=lambda e: e["time"]):
        t = datetime.fromisoformat(event["time"]).timestamp()
        key = (event["subject"], event["data"]["episodeId"])
        if event["data"]["state"] == "raised":
            opened[key] = t
        elif key in opened:
            intervals.setdefault(event["subject"], []).append((opened.pop(key), t))
    for (subject, _episode), start in opened.items():
        intervals.setdefault(subject, []).append((start, math.inf))
    return intervals
