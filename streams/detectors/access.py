"""Purpose binding: a detector receives only the data and state it declared.

Each detector declares what it reads (:class:`~streams.detectors.base.Detector`):

- ``columns``: the reading columns (``readings.columns[...]``), e.g. ``"waterConsumption"``;
- ``reading_groups``: the group slots of the readings (``readings.groups[...]``), e.g. ``"district"``;
- ``reading_facts``: per-reading facts the domain's tracker hands in (``readings.facts[...]``), e.g.
  ``"prev_ts"`` (the subject's previous reading, :mod:`kernels.previous`): kept once, not per detector;
- ``state_reads``: state fields that others own — the domain's tracker (``"last_seen"``) or
  another detector (``"gateway.outage_since"``: a group field is ``"<group>.<field>"``);

and what it writes: its own ``subject_fields`` / ``group_fields``. The pipeline hands it a
:class:`DeclaredState` and guarded readings, so asking for anything else raises
:class:`UndeclaredAccess`; :func:`check_declarations` runs every detector once on scratch
state when a pipeline is built, so a detector that reads undeclared data fails at start-up.

:func:`run_order` computes the order detectors run in from these declarations: the owner of a
field runs before the detectors that read it (``feed.gateway_outage`` before
``water.meter_silent``); otherwise the domain's listed order. A field whose owner is not running
(a dormant detector) is still present, at its declared fill value (also after a restore of state
written while it ran), never written: a reader sees "nothing to report" from it (no gateway is
ever in outage) and keeps working.

The views guard against mistakes in detector code (a detector reading what its declaration does not
say), not against code written to get around them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["DeclaredState", "UndeclaredAccess", "check_declarations", "declared_fields", "field_specs", "tracker_specs",
           "tracker_facts", "guarded_readings", "multi_tick_detectors", "prepare_reads", "run_order",
           "written_fields"]


class UndeclaredAccess(LookupError):
    """A detector asked for a column, group or state field it did not declare."""


def _split(name: str) -> tuple[str | None, str]:
    """``"gateway.outage_since"`` -> ("gateway", "outage_since"); ``"last_seen"`` -> (None, "last_seen")."""
    group, _, field = name.rpartition(".")
    return (group or None), field


def owned_fields(owner) -> set[str]:
    """The fields a detector or tracker declares as its own, in ``state_reads`` notation."""
    names = {name for name, _dtype, _fill in getattr(owner, "subject_fields", ())}
    for group, fields in getattr(owner, "group_fields", {}).items():
        names |= {f"{group}.{name}" for name, _dtype, _fill in fields}
    return names


def declared_fields(detector) -> set[str]:
    """Every state field the detector may touch: its own and those it declared it reads."""
    return owned_fields(detector) | set(getattr(detector, "state_reads", ()))


def tracker_specs(tracker) -> dict[str, tuple]:
    """Every state field a domain's tracker declares (its cadence tracker's too): name -> (dtype, fill);
    group fields as ``<group>.<field>``."""
    specs = {}
    parts = [tracker]
    if getattr(tracker, "cadence", None) is not None:   # a domain tracker with its cadence tracker inside
        parts.append(tracker.cadence)
    for part in parts:
        for name, dtype, fill in getattr(part, "subject_fields", ()):
            specs[name] = (dtype, fill)
        for group, fields in getattr(part, "group_fields", {}).items():
            for name, dtype, fill in fields:
                specs[f"{group}.{name}"] = (dtype, fill)
    return specs


def tracker_facts(tracker) -> dict[str, object]:
    """The per-reading facts a domain's tracker hands the detectors: name -> numpy dtype."""
    return {name: np.dtype(dtype) for name, dtype in getattr(tracker, "reading_facts", ())}


def field_specs(domain) -> dict[str, tuple]:
    """Every state field declared in a domain (by its tracker and all its detectors, dormant ones
    included): ``state_reads`` name -> (dtype, fill)."""
    specs = tracker_specs(domain.tracker) if domain.tracker is not None else {}
    for cls in domain.detectors:
        for name, dtype, fill in cls.subject_fields:
            specs.setdefault(name, (dtype, fill))
        for group, fields in cls.group_fields.items():
            for name, dtype, fill in fields:
                specs.setdefault(f"{group}.{name}", (dtype, fill))
    return specs


def prepare_reads(state, detector, specs: dict[str, tuple], written: set[str] | None = None) -> None:
    """Make sure every field a detector reads exists on ``state``; a read of a field nobody declares
    is an error. A field not in ``written`` (the fields of the running tracker and detectors; None =
    all) is set to its fill value: its owner is dormant, and what it wrote before (state restored
    from a changelog written while it ran) is not a fact any more."""
    for name in getattr(detector, "state_reads", ()):
        if name not in specs:
            raise UndeclaredAccess(f"{detector.declaration.name} reads state field {name!r}, which no tracker "
                                   f"or detector of the {detector.declaration.domain} domain declares")
        group, field = _split(name)
        dtype, fill = specs[name]
        table = state.subjects if group is None else state.group(group)
        table.ensure(field, dtype, fill)
        if written is not None and name not in written:
            table.column(field)[:] = fill


def written_fields(detectors: list, tracker=None) -> set[str]:
    """The fields the running tracker and detectors write."""
    names = set(tracker_specs(tracker)) if tracker is not None else set()
    for detector in detectors:
        names |= owned_fields(detector)
    return names


class _DeclaredTable:
    """A table as one detector may see it: its keys and the declared columns only; the columns it
    only reads come read-only (a kernel given one to write refuses it)."""

    def __init__(self, table, allowed: set[str], who: str, label: str, owned: bool = False,
                 writes: set[str] = frozenset()):
        self._table, self._allowed, self._who, self._label, self._owned = table, allowed, who, label, owned
        self._writes = writes
        self._read_only: dict[str, tuple[np.ndarray, np.ndarray]] = {}   # field -> (array, its read-only view)

    @property
    def keys(self) -> list[str]:
        return self._table.keys

    def __len__(self) -> int:
        return len(self._table)

    def column(self, field: str) -> np.ndarray:
        if field not in self._allowed:
            raise UndeclaredAccess(f"{self._who} uses {self._label}field {field!r} without declaring it "
                                   f"(declare it in state_reads, or own it in its fields)")
        column = self._table.column(field)
        if field in self._writes:
            return column
        cached = self._read_only.get(field)
        if cached is not None and cached[0] is column:   # the table has not reallocated the array since
            return cached[1]
        read_only = column.view()
        read_only.flags.writeable = False
        self._read_only[field] = (column, read_only)
        return read_only

    def slots_for(self, keys):
        """New rows, for a table whose fields the detector owns (its own group tables)."""
        if not self._owned:
            raise UndeclaredAccess(f"{self._who} adds {self._label}rows to a table it owns no field of")
        return self._table.slots_for(keys)

    def ensure_all(self, fields) -> None:
        for name, _dtype, _fill in fields:
            if name not in self._allowed:
                raise UndeclaredAccess(f"{self._who} declares {self._label}field {name!r} it does not own")
        self._table.ensure_all(fields)


class DeclaredState:
    """A partition's state as one detector may see it (:mod:`streams.detectors.access`)."""

    def __init__(self, state, detector):
        self._state = state
        self._who = detector.declaration.name
        allowed = declared_fields(detector)
        self._subject_fields = {name for name in allowed if _split(name)[0] is None}
        self._group_fields: dict[str, set[str]] = {}
        self._owned_groups = set(getattr(detector, "group_fields", {}))
        self._writes = owned_fields(detector)
        for name in allowed:
            group, field = _split(name)
            if group is not None:
                self._group_fields.setdefault(group, set()).add(field)
        self.subjects = _DeclaredTable(state.subjects, self._subject_fields, self._who, "",
                                       writes={n for n in self._writes if _split(n)[0] is None})
        self._group_writes = {group: {_split(n)[1] for n in self._writes if _split(n)[0] == group}
                              for group in self._group_fields}
        self._groups: dict[str, _DeclaredTable] = {}   # made once per group (sweeps ask often)

    @property
    def partition(self) -> int:
        return self._state.partition

    @property
    def watermark(self) -> float:
        return self._state.watermark

    def subject(self, field: str) -> np.ndarray:
        return self.subjects.column(field)

    def group(self, name: str) -> _DeclaredTable:
        view = self._groups.get(name)
        table = self._state.groups.get(name)
        if view is not None and view._table is table:
            return view
        if name not in self._group_fields:
            raise UndeclaredAccess(f"{self._who} uses the {name!r} group without declaring any of its fields")
        view = self._groups[name] = _DeclaredTable(self._state.group(name), self._group_fields[name], self._who,
                                                   f"{name} ", owned=name in self._owned_groups,
                                                   writes=self._group_writes[name])
        return view

    def group_column(self, group: str, field: str) -> np.ndarray:
        return self.group(group).column(field)


class _Guarded(Mapping):
    """A read-only mapping that refuses undeclared keys with :class:`UndeclaredAccess`."""

    def __init__(self, data: dict, allowed: set[str], who: str, what: str):
        self._data, self._allowed, self._who, self._what = data, allowed, who, what

    def __getitem__(self, key):
        if key not in self._allowed:
            raise UndeclaredAccess(f"{self._who} reads the {self._what} {key!r} without declaring it")
        return self._data[key]

    def __iter__(self):
        return (key for key in self._data if key in self._allowed)

    def __len__(self) -> int:
        return sum(1 for key in self._data if key in self._allowed)


def guarded_readings(readings, detector):
    """``readings`` with only the columns, group slots and tracker facts the detector declared."""
    who = detector.declaration.name
    return type(readings)(readings.slots, readings.ts,
                          _Guarded(readings.columns, set(detector.columns), who, "column"),
                          _Guarded(readings.groups, set(detector.reading_groups), who, "reading group"),
                          _Guarded(readings.facts, set(getattr(detector, "reading_facts", ())), who, "reading fact"))


def run_order(detectors: list, tracker=None) -> list:
    """The detectors in the order their declarations need: the owner of a field before its readers,
    otherwise as listed. A cycle is an error."""
    owner = {}
    for detector in detectors:
        for name in owned_fields(detector):
            if name in owner:
                raise ValueError(f"state field {name!r} is declared by both {owner[name].declaration.name} and "
                                 f"{detector.declaration.name}: one owns it, the other declares it in state_reads")
            owner[name] = detector
    tracker_fields = set(tracker_specs(tracker)) if tracker is not None else set()
    for name in tracker_fields & set(owner):
        raise ValueError(f"state field {name!r} is the tracker's; {owner[name].declaration.name} must read it, "
                         f"not declare it")
    before = {id(d): {id(owner[n]) for n in getattr(d, "state_reads", ()) if n in owner and owner[n] is not d}
              for d in detectors}
    ordered, placed = [], set()
    while len(ordered) < len(detectors):
        ready = [d for d in detectors if id(d) not in placed and before[id(d)] <= placed]
        if not ready:
            stuck = [d.declaration.name for d in detectors if id(d) not in placed]
            raise ValueError(f"detectors read each other's state in a cycle: {', '.join(stuck)}")
        ordered.append(ready[0])
        placed.add(id(ready[0]))
    return ordered


def multi_tick_detectors(detectors: list) -> set[int]:
    """The positions of the detectors a pipeline may sweep over a whole run of ticks in one call: the
    ``multi_tick`` ones, except any that reads a field another sweeping detector writes without
    declaring it in ``tick_aware_reads``, or whose field a detector swept tick by tick reads (it would
    see the end of the run, not the tick). Those, like every detector without a multi-tick sweep, are
    swept tick by tick."""
    from streams.detectors.base import Detector

    sweeping = {i for i, d in enumerate(detectors) if d.multi_tick or type(d).sweep is not Detector.sweep}
    owner = {name: i for i, d in enumerate(detectors) for name in owned_fields(d)}
    multi = {i for i in sweeping if detectors[i].multi_tick}
    changed = True
    while changed:
        changed = False
        for i in sorted(multi):
            reads = {owner[n] for n in getattr(detectors[i], "state_reads", ()) if n in owner}
            blind = {owner[n] for n in getattr(detectors[i], "state_reads", ())
                     if n in owner and owner[n] in sweeping and n not in detectors[i].tick_aware_reads}
            read_by_per_tick = any(i in {owner[n] for n in getattr(detectors[j], "state_reads", ()) if n in owner}
                                   for j in sweeping - multi)
            if blind - {i} or read_by_per_tick or (reads & (sweeping - multi)):
                multi.discard(i)
                changed = True
    return multi


def check_declarations(domain, detectors: list, make_state, readings_type) -> None:
    """Run each detector once, through its declared view, on scratch state holding one subject and
    one member of every group, with one reading of all-NaN columns (and the tracker's facts for it):
    a detector that touches anything it did not declare raises :class:`UndeclaredAccess` here, at
    start-up, and so does one declaring a fact its domain's tracker does not hand in."""
    state = make_state()
    state.subjects.slots_for(["start-up check"])
    groups = {}
    for table_name in {"gateway", *(name for name, _field in domain.groups), *state.groups}:
        groups[table_name] = state.group_slots_for(table_name, ["start-up check"])
    one = np.zeros(1, dtype=np.int32)
    columns = {column.column: np.full(1, np.nan) for column in domain.columns}
    readings = readings_type(one, np.zeros(1), columns, {name: slots.astype(np.int32) for name, slots in groups.items()})
    facts = tracker_facts(domain.tracker) if domain.tracker is not None else {}
    readings = readings.with_facts({name: np.zeros(1, dtype=dtype) if dtype == np.bool_ else np.full(1, np.nan)
                                    for name, dtype in facts.items()})
    for detector in detectors:
        unknown = set(getattr(detector, "reading_facts", ())) - set(facts)
        if unknown:
            raise UndeclaredAccess(f"{detector.declaration.name} reads reading fact(s) {sorted(unknown)} that the "
                                   f"{domain.name} domain's tracker does not hand in")
        view = DeclaredState(state, detector)
        detector.update(view, guarded_readings(readings, detector))
        detector.sweep(view, 3600.0)
