"""Water meters' and gateways' state of one partition."""

from __future__ import annotations

import io

import numpy as np
import orjson

__all__ = ["WaterPartitionState"]

_NAN = np.nan
#: (field, dtype, fill) per meter; times in epoch seconds, index in m3.
METER_FIELDS = (("last_seen", np.float64, _NAN), ("last_index", np.float64, _NAN),
                ("last_use", np.float64, _NAN), ("meter_gateway", np.int32, -1),
                ("no_use_since", np.float64, _NAN), ("silent_since", np.float64, _NAN))
GATEWAY_FIELDS = (("gateway_last_seen", np.float64, _NAN), ("gateway_outage_since", np.float64, _NAN))
SNAPSHOT_VERSION = 1


class _Columns:
    """Key -> slot map plus one growable array per field."""

    def __init__(self, fields, capacity: int = 64):
        self._fields = fields
        self.keys: list[str] = []
        self.slots: dict[str, int] = {}
        self._arrays = {name: np.full(capacity, fill, dtype=dtype) for name, dtype, fill in fields}

    def __len__(self) -> int:
        return len(self.keys)

    def column(self, name: str) -> np.ndarray:
        """A writable view of the live part of one field (length = number of keys)."""
        return self._arrays[name][: len(self.keys)]

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
        capacity = next(iter(self._arrays.values())).shape[0]
        if slot >= capacity:
            for name, dtype, fill in self._fields:
                grown = np.full(capacity * 2, fill, dtype=dtype)
                grown[:capacity] = self._arrays[name]
                self._arrays[name] = grown
        self.keys.append(key)
        self.slots[key] = slot
        return slot

    def dump(self, prefix: str, arrays: dict) -> None:
        for name, _dtype, _fill in self._fields:
            arrays[prefix + name] = self.column(name).copy()

    def load(self, keys: list[str], prefix: str, arrays) -> None:
        self.keys, self.slots = [], {}
        self._arrays = {name: np.full(max(64, len(keys)), fill, dtype=dtype) for name, dtype, fill in self._fields}
        for key in keys:
            self._add(key)
        for name, dtype, _fill in self._fields:
            data = arrays[prefix + name]
            if data.shape != (len(keys),) or data.dtype != dtype:
                raise ValueError(f"snapshot field {name} has shape {data.shape} / {data.dtype}, "
                                 f"expected ({len(keys)},) / {np.dtype(dtype)}")
            self._arrays[name][: len(keys)] = data


class WaterPartitionState:
    """State of every meter and gateway seen on one partition, plus its event clock.

    ``watermark`` (s) is the event time up to which the partition is complete;
    ``next_sweep`` (s) the event time of its next absence sweep. Both NaN until the
    first reading.
    """

    def __init__(self, partition: int = 0):
        self.partition = partition
        self.meters = _Columns(METER_FIELDS)
        self.gateways = _Columns(GATEWAY_FIELDS)
        self.watermark = _NAN
        self.next_sweep = _NAN

    def meter(self, name: str) -> np.ndarray:
        return self.meters.column(name)

    def gateway(self, name: str) -> np.ndarray:
        return self.gateways.column(name)

    def gateway_slots_for(self, gateway_ids: list[str | None]) -> np.ndarray:
        result = np.full(len(gateway_ids), -1, dtype=np.int32)
        present = [i for i, g in enumerate(gateway_ids) if g is not None]
        if present:
            result[present] = self.gateways.slots_for([gateway_ids[i] for i in present])
        return result

    def snapshot(self) -> bytes:
        """Everything needed to resume this partition, as bytes (npz, no pickle)."""
        arrays: dict[str, np.ndarray] = {}
        self.meters.dump("m_", arrays)
        self.gateways.dump("g_", arrays)
        header = {"version": SNAPSHOT_VERSION, "partition": self.partition, "watermark": self.watermark,
                  "next_sweep": self.next_sweep, "meters": self.meters.keys, "gateways": self.gateways.keys}
        arrays["header"] = np.frombuffer(orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def restore(cls, data: bytes) -> "WaterPartitionState":
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            header = orjson.loads(arrays["header"].tobytes())
            if header.get("version") != SNAPSHOT_VERSION:
                raise ValueError(f"unsupported water state snapshot version {header.get('version')!r}")
            state = cls(header["partition"])
            state.watermark = _NAN if header["watermark"] is None else float(header["watermark"])
            state.next_sweep = _NAN if header["next_sweep"] is None else float(header["next_sweep"])
            state.meters.load(header["meters"], "m_", arrays)
            state.gateways.load(header["gateways"], "g_", arrays)
        return state
