"""Per-partition detector state as columnar numpy arrays.

Contract: a :class:`PartitionState` maps keys (pseudonyms, sensor ids, gateway
ids) to slots and keeps one array per declared field, so a kernel updates a
whole batch in one call. It holds no raw personal identifiers, and
``snapshot()`` / ``restore()`` round-trip it exactly (bytes, for a changelog or
a file) so a partition can move between workers or survive a crash.
:class:`StateJournal` writes only what a batch changed, as records of a compacted
changelog topic; :func:`rebuild` turns those records back into the state.
"""

from streams.state.changelog import StateCorrupt, StateJournal, rebuild
from streams.state.partition import PartitionState, StateField, Table

__all__ = ["PartitionState", "StateField", "Table", "StateJournal", "StateCorrupt", "rebuild"]
