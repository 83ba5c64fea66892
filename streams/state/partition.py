"""Generic per-partition state: a subjects table and named group tables.

A :class:`Table` maps string keys to slots and holds one numpy array per field;
fields are declared by whoever needs them (a domain's tracker, a detector) with
:meth:`Table.ensure`, so a detector's state lives next to the others' and a
kernel updates a whole batch in one call. ``snapshot()`` / ``restore()``
round-trip everything as bytes (npz, no pickle).
"""

from __future__ import annotations

import io
import zipfile
from itertools import repeat

import numpy as np
import orjson

__all__ = ["Table", "PartitionState", "StateField", "SnapshotCorrupt"]

SNAPSHOT_VERSION = 2


class SnapshotCorrupt(ValueError):
    """Bytes that are not a state snapshot (of this version): the message says what is wrong."""
StateField = tuple  # (name, numpy dtype, fill value)


class Table:
    """Key -> slot map plus one growable array per field."""

    def __init__(self, capacity: int = 64):
        self.keys: list[str] = []
        self.slots: dict[str, int] = {}
        self._capacity = capacity
        self._arrays: dict[str, np.ndarray] = {}
        self._fills: dict[str, object] = {}
        self.recast_on_declare = False   # set on tables rebuilt from a changelog (see ensure)
        self.recast: set[str] = set()
        self.mixed_fieldsets = False     # rebuilt from rows of more than one changelog field set

    def __len__(self) -> int:
        return len(self.keys)

    def ensure(self, name: str, dtype, fill) -> None:
        """Declare a field (idempotent); existing slots get ``fill``.

        A field declared again with another dtype is an error, except on a table rebuilt
        from a changelog (``recast_on_declare``): there a release that changed a field's
        dtype converts the restored values (NaN becomes ``fill`` in an integer field) and
        the table is listed in ``recast`` so it is written again whole.
        """
        if name in self._arrays:
            dtype = np.dtype(dtype)
            old = self._arrays[name]
            if old.dtype != dtype:
                if not self.recast_on_declare:
                    raise ValueError(f"state field {name!r} declared twice with different dtypes")
                n = len(self.keys)
                new = np.full(self._capacity, fill, dtype=dtype)
                live = old[:n]
                keep = np.isfinite(live) if old.dtype.kind == "f" and dtype.kind in "iub" else slice(None)
                new[:n][keep] = live[keep].astype(dtype)
                self._arrays[name], self._fills[name] = new, fill
                self.recast.add(name)
            return
        self._arrays[name] = np.full(self._capacity, fill, dtype=dtype)
        self._fills[name] = fill

    def ensure_all(self, fields) -> None:
        for name, dtype, fill in fields:
            self.ensure(name, dtype, fill)

    def drop(self, names) -> None:
        """Forget fields nobody declares any more (state from an earlier release); the table is then
        listed in ``recast``, so a journal writes it again whole under its new field set."""
        for name in names:
            if name in self._arrays:
                del self._arrays[name]
                del self._fills[name]
                self.recast.add(name)

    def retire(self, retired, into: str | None = None, sources=()) -> None:
        """Upgrade a table restored from an earlier release: where field ``into`` is NaN, take the first
        of the retired ``sources`` fields that has a value, then :meth:`drop` every ``retired`` field."""
        old = set(self.fields) & set(retired)
        if not old:
            return
        if into is not None and into in self._arrays:
            target = self.column(into)
            for name in sources:
                if name in old:
                    missing = np.isnan(target)
                    target[missing] = self.column(name)[missing]
        self.drop(old)

    def column(self, name: str) -> np.ndarray:
        """A writable view of the live part of one field (length = number of keys)."""
        return self._arrays[name][: len(self.keys)]

    @property
    def fields(self) -> list[str]:
        return list(self._arrays)

    def slots_for(self, keys) -> np.ndarray:
        slots = self.slots
        result = np.empty(len(keys), dtype=np.int32)
        for i, key in enumerate(keys):
            slot = slots.get(key)
            if slot is None:
                slot = self._add(key)
            result[i] = slot
        return result

    def _add(self, key: str) -> int:
        slot = len(self.keys)
        if slot >= self._capacity:
            capacity = self._capacity * 2
            for name, array in self._arrays.items():
                grown = np.full(capacity, self._fills[name], dtype=array.dtype)
                grown[: self._capacity] = array
                self._arrays[name] = grown
            self._capacity = capacity
        self.keys.append(key)
        self.slots[key] = slot
        return slot

    def dump(self, prefix: str, arrays: dict) -> dict:
        spec = {}
        for name, array in self._arrays.items():
            arrays[prefix + name] = self.column(name).copy()
            fill = self._fills[name]
            spec[name] = [array.dtype.str, None if isinstance(fill, float) and np.isnan(fill) else fill]
        return {"keys": self.keys, "fields": spec}

    @classmethod
    def load(cls, header: dict, prefix: str, arrays) -> "Table":
        table = cls(max(64, len(header["keys"])))
        for name, (dtype, fill) in header["fields"].items():
            table.ensure(name, np.dtype(dtype), np.nan if fill is None else fill)
        for key in header["keys"]:
            table._add(key)
        n = len(header["keys"])
        for name in header["fields"]:
            data = arrays[prefix + name]
            if data.shape != (n,) or data.dtype != table._arrays[name].dtype:
                raise ValueError(f"snapshot field {name} has shape {data.shape} / {data.dtype}, expected ({n},)")
            table._arrays[name][:n] = data
        return table


class PartitionState:
    """Subjects (meters, detectors, bins, lamps), groups (gateways, districts...) and the event clock.

    ``watermark`` (s) is the event time up to which the partition is complete;
    ``next_sweep`` (s) the event time of its next sweep. Both NaN until the first reading.
    ``offset`` is the last readings offset of this partition folded into the state (-1 = none):
    a message at or below it is already covered and is skipped when replayed.
    """

    def __init__(self, partition: int = 0):
        self.partition = partition
        self.subjects = Table()
        self.groups: dict[str, Table] = {}
        self.watermark = np.nan
        self.next_sweep = np.nan
        self.offset = -1

    def group(self, name: str) -> Table:
        table = self.groups.get(name)
        if table is None:
            table = self.groups[name] = Table()
        return table

    def subject(self, field: str) -> np.ndarray:
        return self.subjects.column(field)

    def group_column(self, group: str, field: str) -> np.ndarray:
        return self.group(group).column(field)

    def group_slots_for(self, group: str, ids) -> np.ndarray:
        """Slots of a group's members; None -> -1. One dict lookup per member; new members get a slot."""
        table = self.group(group)
        get = table.slots.get
        slots = list(map(get, ids, repeat(-2)))
        if -2 in slots:       # a new member, or None
            table.slots_for([g for g in dict.fromkeys(ids) if g is not None and g not in table.slots])
            slots = [-1 if g is None else get(g) for g in ids]
        return np.array(slots, dtype=np.int32)

    def snapshot(self) -> bytes:
        """Everything needed to resume this partition, as bytes (npz, no pickle)."""
        arrays: dict[str, np.ndarray] = {}
        header = {"version": SNAPSHOT_VERSION, "partition": self.partition,
                  "watermark": None if np.isnan(self.watermark) else self.watermark,
                  "next_sweep": None if np.isnan(self.next_sweep) else self.next_sweep,
                  "offset": self.offset,
                  "subjects": self.subjects.dump("s:", arrays),
                  "groups": {name: table.dump(f"g:{name}:", arrays) for name, table in self.groups.items()}}
        arrays["header"] = np.frombuffer(orjson.dumps(header), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def restore(cls, data: bytes) -> "PartitionState":
        """The state a :meth:`snapshot` was made of; :class:`SnapshotCorrupt` for anything else."""
        try:
            return cls._restore(data)
        except SnapshotCorrupt:
            raise
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise SnapshotCorrupt(f"not a state snapshot: {error.__class__.__name__}: {error}") from None

    @classmethod
    def _restore(cls, data: bytes) -> "PartitionState":
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            header = orjson.loads(arrays["header"].tobytes())
            if header.get("version") != SNAPSHOT_VERSION:
                raise SnapshotCorrupt(f"unsupported state snapshot version {header.get('version')!r}")
            state = cls(header["partition"])
            state.watermark = np.nan if header["watermark"] is None else float(header["watermark"])
            state.next_sweep = np.nan if header["next_sweep"] is None else float(header["next_sweep"])
            state.offset = int(header.get("offset", -1))
            state.subjects = Table.load(header["subjects"], "s:", arrays)
            state.groups = {name: Table.load(h, f"g:{name}:", arrays) for name, h in header["groups"].items()}
        return state
