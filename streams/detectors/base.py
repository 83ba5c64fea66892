"""The detector contract, shared by every detector of every domain.

A detector is one class in one file with:

- ``declaration``: a :class:`Declaration` — what it is for, on what legal basis,
  which data it reads, who may receive its alerts, retention, human oversight and
  status. The public register is generated from these, never hand-kept.
- ``Thresholds``: a frozen dataclass whose fields are made with :func:`threshold`
  (default, unit, why). Thresholds come from configuration, never from scoring code.
- ``subject_fields`` / ``group_fields``: the state arrays it owns (writes), declared as
  ``(name, dtype, fill)``; field names are prefixed with the detector's short name
  by convention so detectors never share a field by accident.
- ``columns`` / ``reading_groups`` / ``reading_facts`` / ``state_reads``: what else it reads. It
  receives only what it declared (:mod:`streams.detectors.access`), and the run order follows from these.
  ``reading_facts`` are per-reading facts the domain's tracker works out once for every detector
  (the subject's previous reading and whether a reading is new: :mod:`kernels.previous`).
- ``update(state, readings)``: fold a time-sorted slice of readings into its state
  and return the episodes it opened or closed (event-driven detectors).
- ``sweep(state, watermark)``: at event time ``watermark`` (s), return the
  episodes opened or closed by the passing of time (absence detectors); a ``multi_tick``
  detector implements ``sweep_ticks(state, ticks)`` instead: many ticks in one kernel call.

Detectors know no Faust and no Kafka; the same code runs in the worker, the demo,
``glasscity replay``, the quality harness and the benchmarks.
"""

from __future__ import annotations

import dataclasses
from abc import ABC
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

__all__ = ["Declaration", "Detector", "Readings", "Transition", "STATUSES", "threshold", "episode_transitions"]

STATUSES = ("active", "dormant")


@dataclass(frozen=True)
class Declaration:
    """What a detector declares about itself (all fields required, none empty)."""

    name: str               # "<domain>.<detector>", e.g. "water.no_use_24h"
    domain: str
    purpose: str
    legal_basis: str
    reads: tuple[str, ...]  # data fields it reads
    recipients: str         # who may receive its alerts
    alert_topic: str        # short topic name: "alerts.v1" or "alerts.welfare.v1"
    severity: str           # "info" | "warning" | "critical"
    subject_kind: str       # what an alert subject is, e.g. "water_meter" (pseudonym), "gateway", "district"
    retention: str
    human_oversight: str
    status: str = "active"
    alarm_name: str = "-"   # the standard alarm name where one exists (TALQ for lighting), else "-"
    owner: str = ""         # the accountable department (public register); required, like every text field
    logic: str = ""         # what it looks at, when it speaks up and what happens then, in plain words (register)
    #: Runs only for households enrolled in the consent register (``glasscity enrol``); un-enrolling
    #: stops its alerts and deletes its state for that household.
    requires_enrolment: bool = False
    #: A declared absence (``glasscity absence declare``) holds its alerts back until the absence ends.
    absence_holds: bool = False
    #: A household may object (``glasscity object``): the detector then skips its meter and deletes
    #: its state for it. Only for detectors over household data whose legal basis allows objection.
    objection_allowed: bool = False
    #: Longest time its alerts (topic retention.ms) and a subject's state for it are kept (s).
    retention_s: float = 90 * 86400.0

    def __post_init__(self):
        for name, value in self.__dict__.items():
            if value in ("", ()):
                raise ValueError(f"detector declaration field {name!r} must not be empty")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.severity not in ("info", "warning", "critical"):
            raise ValueError(f"severity must be info, warning or critical, got {self.severity!r}")
        if not self.retention_s > 0:
            raise ValueError(f"retention_s must be > 0, got {self.retention_s!r}")
        if (self.requires_enrolment or self.absence_holds or self.objection_allowed) \
                and self.subject_kind != "water_meter":
            raise ValueError("enrolment, absence holds and objection apply to household (water_meter) detectors only")


def threshold(default, unit: str, why: str, minimum: float | None = None, above: float | None = None,
              maximum: float | None = None):
    """A threshold field: its default, its unit and why it has that value. Its range bounds what a
    thresholds file may set: ``minimum`` (the value may equal it) or ``above`` (it must exceed it), and
    optionally ``maximum`` (inclusive). Every threshold declares a lower bound."""
    if minimum is None and above is None:
        raise TypeError("a threshold needs a lower bound: minimum= or above=")
    return dataclasses.field(default=default, metadata={"unit": unit, "why": why, "minimum": minimum,
                                                        "above": above, "maximum": maximum})


def threshold_range(field: dataclasses.Field) -> str:
    """The allowed range of a threshold field as text, e.g. ``> 0``, ``>= 0, <= 1``."""
    minimum, above, maximum = (field.metadata.get(k) for k in ("minimum", "above", "maximum"))
    parts = [f">= {minimum:g}" if minimum is not None else f"> {above:g}"]
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    return ", ".join(parts)


class Transition(NamedTuple):
    """An episode opened (``raised``) or closed (``cleared``) by a detector at event time ``time`` (s)."""

    detector: str
    subject: str
    state: str              # "raised" | "cleared"
    episode_start: float    # s; with detector and subject it identifies the episode
    time: float             # s; the reading time or watermark at which the change was seen
    details: dict | None = None   # small, deterministic facts for the recipient (e.g. the alarm code)


class Readings(NamedTuple):
    """A time-sorted slice of one partition's valid readings, as columns.

    ``slots`` int32 subject slot; ``ts`` float64 event time (s); ``columns`` the
    domain's numeric columns (float64, NaN = absent); ``groups`` int32 slot per
    group name (-1 = none); ``facts`` per-reading facts of the domain's tracker, by name
    (``"new"`` bool, ``"prev_ts"`` s, ...: the tracker's ``reading_facts``), handed in before
    the detectors run.
    """

    slots: np.ndarray
    ts: np.ndarray
    columns: dict
    groups: dict
    facts: dict = {}

    def __len__(self) -> int:
        return self.slots.shape[0]

    def with_facts(self, facts: dict) -> "Readings":
        """The same readings with the tracker's per-reading facts (``_replace`` does not work here:
        ``len()`` of a slice is its number of readings)."""
        return Readings(self.slots, self.ts, self.columns, self.groups, facts)

    def take(self, index: np.ndarray) -> "Readings":
        """The readings at ``index`` (positions, ascending: time order is kept)."""
        return Readings(self.slots[index], self.ts[index], {k: v[index] for k, v in self.columns.items()},
                        {k: v[index] for k, v in self.groups.items()}, {k: v[index] for k, v in self.facts.items()})

    def slice(self, start: int, stop: int | None = None) -> "Readings":
        cut = slice(start, stop)
        return Readings(self.slots[cut], self.ts[cut], {k: v[cut] for k, v in self.columns.items()},
                        {k: v[cut] for k, v in self.groups.items()}, {k: v[cut] for k, v in self.facts.items()})

    @staticmethod
    def concatenate(parts: list["Readings"]) -> "Readings":
        """Consecutive slices as one (time order kept); each must carry the same columns, groups and facts."""
        def joined(name):
            first = getattr(parts[0], name)
            return {k: np.concatenate([getattr(p, name)[k] for p in parts]) for k in first}
        return Readings(np.concatenate([p.slots for p in parts]), np.concatenate([p.ts for p in parts]),
                        joined("columns"), joined("groups"), joined("facts"))


class Detector(ABC):
    declaration: ClassVar[Declaration]
    Thresholds: ClassVar[type]
    subject_fields: ClassVar[tuple] = ()
    group_fields: ClassVar[dict] = {}
    #: What it reads besides its own fields (:mod:`streams.detectors.access`): reading columns,
    #: reading group slots, and state fields owned by the tracker or another detector
    #: (``"last_seen"``, ``"gateway.outage_since"``). Anything else is refused.
    columns: ClassVar[tuple[str, ...]] = ()
    reading_groups: ClassVar[tuple[str, ...]] = ()
    #: Per-reading facts of the domain's tracker it reads (``readings.facts[...]``), e.g. ``"prev_ts"``.
    reading_facts: ClassVar[tuple[str, ...]] = ()
    state_reads: ClassVar[tuple[str, ...]] = ()
    #: True when :meth:`sweep_ticks` sweeps a whole run of ticks in one kernel call (every absence
    #: detector); otherwise the pipeline sweeps it one tick at a time.
    multi_tick: ClassVar[bool] = False
    #: Fields of other sweeping detectors that a multi-tick detector reads knowing how their owner
    #: records a run (e.g. ``gateway.outage_opened``: the tick an outage opened at). A multi-tick
    #: detector reading any other field a sweep writes is swept one tick at a time.
    tick_aware_reads: ClassVar[tuple[str, ...]] = ()

    def __init__(self, thresholds=None):
        self.thresholds = thresholds if thresholds is not None else self.Thresholds()

    def prepare(self, state) -> None:
        """Declare this detector's state fields on a partition's state (idempotent)."""
        state.subjects.ensure_all(self.subject_fields)
        for group, fields in self.group_fields.items():
            state.group(group).ensure_all(fields)

    def update(self, state, readings: Readings) -> list[Transition]:
        return []

    def sweep(self, state, watermark: float) -> list[Transition]:
        """The episodes opened or closed at event time ``watermark`` (s): a run of one tick."""
        if self.multi_tick:
            return [t for _k, t in self.sweep_ticks(state, np.array([float(watermark)]))]
        return []

    def sweep_ticks(self, state, ticks: np.ndarray) -> list[tuple[int, Transition]]:
        """Sweep each of the event times ``ticks`` (float64, s, increasing) in turn, with no reading folded
        in between; returns ``(index in ticks, transition)`` pairs ordered by tick, then subject slot —
        what sweeping them one by one gives. This default sweeps them one by one; a ``multi_tick``
        detector overrides it with one kernel call over all of them."""
        if self.multi_tick:
            raise NotImplementedError(f"{type(self).__name__} is multi_tick and must implement sweep_ticks")
        return [(k, t) for k in range(len(ticks)) for t in self.sweep(state, float(ticks[k]))]

    def definitional_delay_s(self) -> float:
        """Event time that must pass, by definition, before an incident can be seen (s); 0 if none."""
        return 0.0


def episode_transitions(detector: str, keys: list[str], codes: np.ndarray, starts: np.ndarray,
                        subject_slots: np.ndarray, times: np.ndarray) -> list[Transition]:
    """Transitions from per-item kernel output: ``codes`` (RAISED=1 / CLEARED=2), the episode
    ``starts`` (s), the subject slot and the time of each item."""
    result = []
    for i in np.flatnonzero(codes):
        state = "raised" if codes[i] == 1 else "cleared"
        result.append(Transition(detector, keys[subject_slots[i]], state, float(starts[i]), float(times[i])))
    return result
