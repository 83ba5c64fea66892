"""Per-partition state as a changelog: only what a batch changed, as compacted Kafka records.

Contract. A :class:`StateJournal` remembers, for one :class:`PartitionState`, what was
last made durable and turns the difference into changelog records ``(key, value)``
for the state topic partition that equals the readings partition. Replaying the
records of a partition (last value per key wins, as after compaction) with
:func:`rebuild` gives back the state exactly, with the same slots.

Record layout (keys and values are bytes; values are JSON):

``f:<id>``            a field set: ``{"table": "s" | "g:<group>", "fields": [[name, dtype, fill], ...]}``;
                      written once, before the first row that uses it, and never overwritten
``s:<subject key>``   a subject row: ``[field set id, slot, value, ...]`` (NaN as null; no field
                      holds an infinity, which JSON could not carry either)
``g:<group>:<key>``   a group row (gateway, district, cabinet...), same shape
``c``                 the partition's clock: ``{"offset", "watermark", "next_sweep"}``; written
                      last in every batch, once its rows are confirmed, so it says which readings
                      offset the rows before it cover. Rows after the last clock are an unfinished
                      write and are ignored on rebuild (a batch's state is all or nothing).

Subject keys are pseudonyms for personal ids (the pipeline pseudonymises before a key
reaches state), so raw meter ids never enter the changelog. A row is about a hundred
bytes whatever the number of subjects, far below the broker's 1 MB record limit.

Detection of changes is generic: a shadow copy of every field is compared bit for
bit (NaN equals NaN) with the live arrays, so no detector has to report what it
touched, and a field a detector writes in a sweep is persisted like any other.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np
import orjson

from streams.state.partition import PartitionState, Table

__all__ = ["StateJournal", "rebuild", "StateCorrupt", "CLOCK_KEY", "record_table"]

CLOCK_KEY = b"c"
CLOCK_VERSION = 1


class StateCorrupt(ValueError):
    """The changelog cannot be turned back into state (a row without its field set, a slot hole)."""


def _table_names(state: PartitionState):
    yield "s", state.subjects
    for name, table in state.groups.items():
        yield f"g:{name}", table


def _row_prefix(table_name: str) -> bytes:
    return (table_name + ":").encode()


def record_table(key: bytes) -> str:
    """Which table a row key belongs to: "s" or "g:<group>" (changelog bytes accounting)."""
    if key.startswith(b"s:"):
        return "s"
    if key.startswith(b"g:"):
        return "g:" + key[2:].split(b":", 1)[0].decode()
    return key[:1].decode()


def _bits(array: np.ndarray) -> np.ndarray:
    """The array reinterpreted as unsigned integers of the same width (NaN == NaN bitwise)."""
    return array.view(f"u{array.dtype.itemsize}") if array.dtype.kind in "fiub" else array


class _Shadow:
    """What was last made durable of one table: its field spec, length and values."""

    def __init__(self):
        self.spec: tuple = ()
        self.fieldset = b""
        self.length = 0
        self.arrays: dict[str, np.ndarray] = {}


class StateJournal:
    """Turns the changes of one partition's state into changelog records."""

    def __init__(self):
        self._shadows: dict[str, _Shadow] = {}
        self._fieldsets_written: set[bytes] = set()

    def mark_clean(self, state: PartitionState, fieldsets: Iterable[bytes] = ()) -> None:
        """Declare the current state durable (after a restore).

        A table restored under more than one field set, or whose fields were converted to a
        new dtype, is not clean: its next :meth:`changes` writes it whole, under one field set.
        """
        self._fieldsets_written.update(fieldsets)
        for name, table in _table_names(state):
            if table.recast or table.mixed_fieldsets:
                self._shadows.pop(name, None)
                continue
            self._remember(name, table, np.arange(len(table)), full=True)

    def changes(self, state: PartitionState) -> list[tuple[bytes, bytes]]:
        """Records for every row that changed since the last call, then the clock record."""
        records: list[tuple[bytes, bytes]] = []
        for name, table in _table_names(state):
            shadow = self._shadows.get(name)
            spec = _spec(table)
            n = len(table)
            if shadow is None or shadow.spec != spec:
                dirty = np.arange(n)          # new table or new fields: every row once
            else:
                changed = np.zeros(n, dtype=bool)
                m = shadow.length
                for field in table.fields:
                    live = table.column(field)
                    changed[:m] |= _bits(live[:m]) != _bits(shadow.arrays[field][:m])
                changed[m:] = True             # new slots are always written (no holes on restore)
                dirty = np.flatnonzero(changed)
            if len(dirty):
                fieldset, fs_key, fs_value = _fieldset_record(name, spec)
                if fs_key not in self._fieldsets_written:
                    records.append((fs_key, fs_value))
                    self._fieldsets_written.add(fs_key)
                records += _rows(name, table, dirty, fieldset)
            self._remember(name, table, dirty, full=shadow is None or shadow.spec != spec)
        records.append((CLOCK_KEY, clock_value(state)))
        return records

    def _remember(self, name: str, table: Table, dirty: np.ndarray, full: bool) -> None:
        shadow = self._shadows.get(name)
        spec = _spec(table)
        n = len(table)
        if shadow is None or full or shadow.spec != spec:
            shadow = self._shadows[name] = _Shadow()
            shadow.spec = spec
            shadow.arrays = {f: table.column(f).copy() for f in table.fields}
            shadow.length = n
            return
        if n > len(next(iter(shadow.arrays.values()), ())):
            capacity = max(64, 2 * n)
            for f, array in shadow.arrays.items():
                grown = np.empty(capacity, dtype=array.dtype)
                grown[: shadow.length] = array[: shadow.length]
                shadow.arrays[f] = grown
        for f in table.fields:
            shadow.arrays[f][dirty] = table.column(f)[dirty]
        shadow.length = n


def _spec(table: Table) -> tuple:
    return tuple((name, table._arrays[name].dtype.str, _json_fill(table._fills[name])) for name in table.fields)


def _json_fill(fill):
    if isinstance(fill, float) and np.isnan(fill):
        return None
    return fill.item() if hasattr(fill, "item") else fill


def _fieldset_record(table_name: str, spec: tuple) -> tuple[bytes, bytes, bytes]:
    value = orjson.dumps({"table": table_name, "fields": [list(f) for f in spec]})
    fieldset = hashlib.sha256(value).hexdigest()[:12].encode()
    return fieldset, b"f:" + fieldset, value


def _rows(table_name: str, table: Table, dirty: np.ndarray, fieldset: bytes) -> list[tuple[bytes, bytes]]:
    prefix = _row_prefix(table_name)
    keys = table.keys
    slots = dirty.tolist()
    columns = [table.column(f)[dirty].tolist() for f in table.fields]
    fs = fieldset.decode()
    dumps = orjson.dumps
    # zip over the slots too: a table with no fields (slots only, e.g. a group used for its ids)
    # still gets one row per key
    return [(prefix + keys[row[0]].encode(), dumps((fs, *row))) for row in zip(slots, *columns)]


def clock_value(state: PartitionState) -> bytes:
    return orjson.dumps({"version": CLOCK_VERSION, "partition": state.partition, "offset": state.offset,
                         "watermark": None if np.isnan(state.watermark) else state.watermark,
                         "next_sweep": None if np.isnan(state.next_sweep) else state.next_sweep})


def rebuild(partition: int, records: Iterable[tuple[bytes, bytes]]) -> tuple[PartitionState | None, set[bytes]]:
    """The state a partition's changelog records describe (None when there is no clock record).

    Returns the state and the field-set keys seen (so the journal does not write them again).
    Rows are placed at the slots they were written from: slot references between
    tables (a meter's gateway slot) stay valid.
    """
    records = [(key, value) for key, value in records if key is not None and value is not None]
    # Everything after the last clock record is an unfinished write (a crash between rows and
    # clock): it is dropped, and the rows it overwrote are used instead -- they are still in the
    # log, the state topic's min.compaction.lag.ms keeps recent versions from compaction. So a
    # batch's state is all or nothing, as the clock's offset says.
    last_clock = max((i for i, (key, _v) in enumerate(records) if key == CLOCK_KEY), default=-1)
    if last_clock < 0:
        return None, set()
    latest: dict[bytes, bytes] = {}
    for key, value in records[:last_clock + 1]:
        latest[key] = value
    clock_raw = latest.pop(CLOCK_KEY)
    fieldsets: dict[str, dict] = {}
    for key in [k for k in latest if k.startswith(b"f:")]:
        fieldsets[key[2:].decode()] = orjson.loads(latest.pop(key))
    keys_of: dict[str, list[bytes]] = {}
    values_of: dict[str, list[bytes]] = {}
    for key, value in latest.items():
        table_name = record_table(key)
        if table_name != "s" and not table_name.startswith("g:"):
            continue   # a record kind this version does not know: ignored, kept by compaction
        keys_of.setdefault(table_name, []).append(key)
        values_of.setdefault(table_name, []).append(value)
    rows: dict[str, tuple[list[str], list]] = {}
    for table_name, keys in keys_of.items():
        cut = len(_row_prefix(table_name))
        # one parse for the whole table: a million rows cost one call, not a million
        parsed = orjson.loads(b"[" + b",".join(values_of[table_name]) + b"]")
        rows[table_name] = ([k[cut:].decode() for k in keys], parsed)
    clock = orjson.loads(clock_raw)
    state = PartitionState(partition)
    state.offset = int(clock["offset"])
    state.watermark = np.nan if clock["watermark"] is None else float(clock["watermark"])
    state.next_sweep = np.nan if clock["next_sweep"] is None else float(clock["next_sweep"])
    for table_name, table_rows in rows.items():
        table = _table_from_rows(table_name, table_rows, fieldsets)
        if table_name == "s":
            state.subjects = table
        else:
            state.groups[table_name[2:]] = table
    return state, {b"f:" + f.encode() for f in fieldsets}


def _table_from_rows(table_name: str, table_rows: tuple[list[str], list], fieldsets: dict) -> Table:
    row_keys, parsed = table_rows
    n = len(row_keys)
    keys: list[str | None] = [None] * n
    by_fieldset: dict[str, list] = {}
    for row_key, row in zip(row_keys, parsed):
        fieldset, slot = row[0], row[1]
        if fieldset not in fieldsets:
            raise StateCorrupt(f"state row {table_name}:{row_key} refers to unknown field set {fieldset}")
        if not 0 <= slot < n or keys[slot] is not None:
            raise StateCorrupt(f"state table {table_name} has a hole or a duplicate at slot {slot}")
        keys[slot] = row_key
        by_fieldset.setdefault(fieldset, []).append(row)
    table = Table(max(64, n))
    table.recast_on_declare = True      # rows written under an older field set may differ in dtype
    for fieldset in by_fieldset:
        for name, dtype, fill in fieldsets[fieldset]["fields"]:
            table.ensure(name, np.dtype(dtype), np.nan if fill is None else fill)
    for key in keys:
        table._add(key)
    for fieldset, fs_rows in by_fieldset.items():
        fields = fieldsets[fieldset]["fields"]
        # rows -> one float64 matrix (null -> NaN); integer fields are exact in a double up to 2**53
        matrix = np.array(fs_rows, dtype=object)[:, 1:].astype(np.float64) if fs_rows else np.empty((0, 1))
        slots = matrix[:, 0].astype(np.int64)
        for j, (name, dtype, _fill) in enumerate(fields, start=1):
            column = matrix[:, j]
            target = table.column(name).dtype
            if target.kind in "iub":
                column = np.where(np.isnan(column), table._fills[name], column)
            table.column(name)[slots] = column.astype(target)
    table.mixed_fieldsets = len(by_fieldset) > 1
    return table
