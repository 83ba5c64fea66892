"""The one batch path of every domain: decode -> pseudonymise -> kernels -> alerts.

Per partition: columnar state, event-time sweeps interleaved with the readings.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import orjson

from streams import metrics
from streams.alerts import alert_event
from streams.config import Settings
from streams.detectors.access import (
    DeclaredState, check_declarations, field_specs, guarded_readings, multi_tick_detectors, owned_fields,
    prepare_reads, run_order, written_fields,
)
from streams.detectors.base import Detector, Readings, Transition
from streams.ingest import DeadLetter, RawMessage, decode
from streams.ingest.decode import reading_bytes
from streams.consent import ConsentRegister
from streams.pipeline.gate import ConsentGate
from streams.pipeline.positions import PartitionPositions, snap_to_cell
from streams.pseudonym import Pseudonymizer
from streams.state import PartitionState, StateJournal, rebuild

__all__ = ["DomainPipeline", "BatchResult", "OutgoingAlert", "MAX_TICKS_PER_SWEEP", "SLOT_CACHE_SIZE"]

#: Most sweep steps (ticks) one kernel call sweeps. A watermark that passes many steps with no reading
#: folded in between (an idle partition catching up, a replay's quiet spells) is swept by one call per
#: detector for up to this many ticks, with the alerts and alert times of sweeping them one by one.
#: 1 sweeps tick by tick (the tests compare both).
MAX_TICKS_PER_SWEEP = 65_536
#: Most raw id -> slot pairs a partition keeps in memory (a city's meters, with room to spare).
SLOT_CACHE_SIZE = 1_000_000


class OutgoingAlert(NamedTuple):
    topic: str       # short topic name, e.g. "alerts.welfare.v1"
    key: bytes       # the subject, so one subject's alerts stay ordered
    event: dict      # the CloudEvent


@dataclass
class BatchResult:
    alerts: list[OutgoingAlert] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    messages: int = 0
    readings: int = 0
    skipped: int = 0      # messages at or below the offset their partition's state already covers
    late: list[DeadLetter] = field(default_factory=list)   # valid readings older than the watermark (copies)
    kpi: dict[str, float] = field(default_factory=dict)    # the domain's KPI over the batch: label -> amount


class DomainPipeline:
    """One domain's processing for the partitions this process owns.

    ``thresholds`` maps detector names to ``Thresholds`` instances (defaults when absent);
    ``activated`` names the dormant detectors a verified audit log switches on (``streams.audit``).
    ``consent`` is the live view of the consent registers (:mod:`streams.consent`, applied by
    :mod:`streams.pipeline.gate`); None = :meth:`ConsentRegister.everyone` (every household
    enrolled, nothing absent or objected), for in-process evaluation only: the worker passes the
    registers it follows, which start empty.
    """

    def __init__(self, domain, settings: Settings, pseudonymizer: Pseudonymizer, thresholds: dict | None = None,
                 clock=time.time, activated: frozenset[str] | set[str] = frozenset(),
                 consent: ConsentRegister | None = None):
        self.domain = domain
        self.settings = settings
        self.pseudonymizer = pseudonymizer
        thresholds = thresholds or {}
        # purpose binding (streams.detectors.access): the order comes from the declared reads and
        # writes, and every detector is run once on scratch state so an undeclared access fails now
        self._field_specs = field_specs(domain)
        # a dormant detector runs only when a verified audit log activates it (streams.audit)
        self.detectors = run_order([cls(thresholds.get(cls.declaration.name)) for cls in domain.detectors
                                    if cls.declaration.status == "active" or cls.declaration.name in activated],
                                   domain.tracker)
        self._written = written_fields(self.detectors, domain.tracker)
        self._multi_tick = multi_tick_detectors(self.detectors)
        self._sweeping = {i for i, d in enumerate(self.detectors) if d.multi_tick or type(d).sweep is not Detector.sweep}
        self.gate = ConsentGate(domain, self.detectors, consent)
        self.kpi = domain.kpi(self.detectors) if domain.kpi is not None else None
        # Event-only detectors (no sweep, no held alerts, reading no one else's state and read by no
        # one): what they find depends on their readings alone, not on the sweeps between them, so
        # they fold a batch's readings in one call after the sweeps instead of once per sweep step.
        reads_of_others = {name for d in self.detectors for name in getattr(d, "state_reads", ())}
        self._event_only = {i for i, d in enumerate(self.detectors)
                            if i not in self._sweeping and i not in self.gate.holding
                            and not getattr(d, "state_reads", ()) and not (owned_fields(d) & reads_of_others)}
        # per partition: (its state, raw id -> slot), in memory only (a personal id is in no state or topic)
        self._slot_caches: dict[int, tuple[PartitionState, dict[str, int]]] = {}
        # per partition: (its state, the subjects' and gateways' latest positions), in memory only
        # (streams.pipeline.positions: they come back with the next readings)
        self._positions: dict[int, tuple[PartitionState, PartitionPositions]] = {}
        self._late_fields = [c.json for c in domain.columns] + [f for _group, f in domain.groups]
        self.consent = self.gate.register
        self._consent_version = self.consent.version
        self._views: dict[int, tuple[PartitionState, list[DeclaredState]]] = {}
        check_declarations(domain, self.detectors, lambda: self._prepared(PartitionState(0)), Readings)
        self.states: dict[int, PartitionState] = {}
        self.journals: dict[int, StateJournal] = {}
        self._touched: set[int] = set()          # partitions whose state changed since changelog()
        self._arrivals: dict[int, float] = {}   # partition -> wall time of its last batch (s)
        self._kernel_seconds: dict[str, float] = {}   # kernel -> time spent since record() (s)
        self.clock = clock

    # -- partition ownership and durability ---------------------------------------------------
    def state(self, partition: int) -> PartitionState:
        state = self.states.get(partition)
        if state is None:
            state = self.states[partition] = self._prepared(PartitionState(partition))
            self.journals[partition] = StateJournal()
        return state

    def _prepared(self, state: PartitionState) -> PartitionState:
        if self.domain.tracker is not None:
            self.domain.tracker.prepare(state)
        for detector in self.detectors:
            detector.prepare(state)
            prepare_reads(state, detector, self._field_specs, self._written)
        self.gate.prepare(state)
        if self.domain.upgrade is not None:     # state of an earlier release: retired fields taken over, dropped
            self.domain.upgrade(state)
        return state

    def _declared(self, state: PartitionState) -> list[DeclaredState]:
        """Each detector's declared view of a partition's state (made once per state object)."""
        cached = self._views.get(state.partition)
        if cached is None or cached[0] is not state:
            cached = self._views[state.partition] = (state, [DeclaredState(state, d) for d in self.detectors])
        return cached[1]

    def restore(self, partition: int, records) -> int:
        """Rebuild a partition's state from its changelog records ``(key, value)``, oldest first.

        Returns the readings offset the restored state covers (-1 = no state: the partition
        starts fresh). Messages at or below that offset are skipped when they come again.
        """
        state, fieldsets = rebuild(partition, records)
        journal = StateJournal()
        if state is None:
            self.states.pop(partition, None)
            self.journals.pop(partition, None)
            self._arrivals.pop(partition, None)
            return -1
        self.states[partition] = self._prepared(state)
        journal.mark_clean(state, fieldsets)
        for table in [state.subjects, *state.groups.values()]:
            table.recast_on_declare, table.recast, table.mixed_fieldsets = False, set(), False
        self.journals[partition] = journal
        self._arrivals[partition] = self.clock()
        return state.offset

    def drop(self, partition: int) -> None:
        """Forget a partition this process no longer owns (its state is already durable)."""
        self.states.pop(partition, None)
        self.journals.pop(partition, None)
        self._arrivals.pop(partition, None)
        self._views.pop(partition, None)
        self._slot_caches.pop(partition, None)
        self._positions.pop(partition, None)
        self.gate.forget(partition)
        self._touched.discard(partition)

    def changelog(self) -> list[tuple[int, bytes, bytes]]:
        """``(partition, key, value)`` records of everything changed since the last call.

        Per touched partition: the changed subject and group rows, then the clock record
        (offset covered, watermark, next sweep) — the clock last, so whoever reads the
        partition's changelog sees rows at least as new as the offset the clock claims.
        """
        records = []
        for partition in sorted(self._touched):
            state = self.states.get(partition)
            if state is not None:
                records += [(partition, key, value) for key, value in self.journals[partition].changes(state)]
        self._touched.clear()
        return records

    def revoke(self, partition: int) -> bytes | None:
        """Drop a partition's state, returning its snapshot for whoever takes it over."""
        state = self.states.get(partition)
        self.drop(partition)
        return None if state is None else state.snapshot()

    def adopt(self, partition: int, snapshot: bytes) -> None:
        self.states[partition] = self._prepared(PartitionState.restore(snapshot))
        self.journals[partition] = StateJournal()
        self._touched.add(partition)
        self._arrivals[partition] = self.clock()

    # -- the batch path ---------------------------------------------------------------------------
    def process(self, messages: list[RawMessage]) -> BatchResult:
        """Fold a batch of raw messages (any partitions, offset order within one) into the state.

        Messages at or below the offset a partition's state already covers (a replay after
        a restore) are skipped: state, alerts and dead letters are what an uninterrupted run
        gives. Metrics are not counted here: call :meth:`record` once the result is published.
        """
        result = BatchResult()
        by_partition: dict[int, list[RawMessage]] = {}
        for message in messages:
            by_partition.setdefault(message.partition, []).append(message)
        for partition, group in by_partition.items():
            state = self.state(partition)
            fresh = [m for m in group if m.offset > state.offset]
            result.skipped += len(group) - len(fresh)
            if not fresh:
                continue
            result.messages += len(fresh)
            self._process_partition(state, fresh, result)
            state.offset = max(state.offset, max(m.offset for m in fresh))
            self._touched.add(partition)
        return result

    def subject_keys(self, raw_ids: list[str]) -> list[str]:
        """State keys and alert subjects: pseudonyms for personal ids (one HMAC per distinct id), the ids
        themselves otherwise."""
        kind = self.domain.subject_pseudonym
        if kind is None:
            return raw_ids
        distinct = list(dict.fromkeys(raw_ids))
        keys = dict(zip(distinct, self.pseudonymizer.many(kind, distinct)))
        return [keys[raw] for raw in raw_ids]

    def subject_slots(self, state: PartitionState, raw_ids: list[str]) -> np.ndarray:
        """Each reading's slot in the partition's subjects table (int32).

        One dict lookup per reading; the pseudonym (one HMAC) and the slot are worked out once per
        id new to the partition and kept in memory (raw id -> slot, at most :data:`SLOT_CACHE_SIZE`
        per partition, never written anywhere). For subjects that are not personal data the
        table's own key -> slot map serves.
        """
        if self.domain.subject_pseudonym is None:
            cache = state.subjects.slots
        else:
            cached = self._slot_caches.get(state.partition)
            if cached is None or cached[0] is not state:      # a restored or adopted state: new slots
                cached = self._slot_caches[state.partition] = (state, {})
            cache = cached[1]
        get = cache.get
        slots = list(map(get, raw_ids))
        if None in slots:
            missing = [raw for raw in dict.fromkeys(raw_ids) if raw not in cache]
            if len(cache) + len(missing) > SLOT_CACHE_SIZE and cache is not state.subjects.slots:
                cache.clear()
            cache.update(zip(missing, state.subjects.slots_for(self.subject_keys(missing)).tolist()))
            slots = list(map(get, raw_ids))
        return np.array(slots, dtype=np.int32)

    def _remember_positions(self, state: PartitionState, slots: np.ndarray, batch) -> None:
        """Keep the batch's subject and gateway positions (a personal subject's snapped to its grid cell first)."""
        if not batch.gateway_locations and np.isnan(batch.longitude).all():
            return
        cached = self._positions.get(state.partition)
        if cached is None or cached[0] is not state:      # a restored or adopted state: new slots
            cached = self._positions[state.partition] = (state, PartitionPositions(len(state.subjects)))
        longitude, latitude = batch.longitude, batch.latitude
        if self.domain.subject_pseudonym is not None:
            longitude, latitude = snap_to_cell(longitude, latitude)
        cached[1].update(slots, batch.ts, longitude, latitude)
        cached[1].gateways.update(batch.gateway_locations)

    def subject_positions(self) -> dict[str, tuple[float, float]]:
        """Subject key (as alerts carry it: a household meter's pseudonym, never its id) -> its latest
        (longitude, latitude) in WGS 84 degrees, for the subjects of the partitions this process owns that
        reported a location. A household's position is its grid cell's centre
        (:func:`streams.pipeline.positions.snap_to_cell`); others' are as reported."""
        found = {}
        for partition, (state, positions) in sorted(self._positions.items()):
            if self.states.get(partition) is state:
                found.update(positions.known(state.subjects.keys))
        return found

    def gateway_positions(self) -> dict[str, tuple[float, float]]:
        """Gateway id -> (longitude, latitude), WGS 84 degrees, as its latest envelope gave it (gateways are
        network equipment: exact), over the partitions this process owns."""
        found = {}
        for partition, (state, positions) in sorted(self._positions.items()):
            if self.states.get(partition) is state:
                found.update(positions.gateways)
        return found

    def _late_copy(self, batch, i: int, key: str) -> bytes:
        """A late reading as copied to the late topic. For a personal subject (a household meter) only the
        fields the detectors use are kept, with the pseudonym as ``id``: anything else a reading may
        carry (an address, a device reference) could identify the household."""
        if self.domain.subject_pseudonym is None:
            return reading_bytes(batch, i)
        reading = batch.reading(i)
        kept = {"id": key, "type": reading.get("type"), "dateObserved": reading.get("dateObserved")}
        for name in self._late_fields:
            if name in reading:
                kept[name] = reading[name]
        kept["gatewayId"] = batch.groups["gateway"][i] if "gateway" in batch.groups else reading.get("gatewayId")
        try:
            return orjson.dumps(kept)
        except (TypeError, orjson.JSONEncodeError):     # a field nested beyond what orjson writes: the core only
            return orjson.dumps({"id": key, "dateObserved": kept["dateObserved"]})

    def _process_partition(self, state: PartitionState, messages: list[RawMessage], result: BatchResult):
        batch = decode(messages, self.domain, now=self.clock(), max_future_skew_s=self.settings.max_future_skew_s)
        result.dead_letters.extend(batch.dead_letters)
        result.readings += len(batch)
        if not len(batch):
            return
        slots = self.subject_slots(state, batch.subject_ids)
        self._remember_positions(state, slots, batch)
        if not math.isnan(state.watermark):
            # Later than the allowed lateness: the sweeps for their time have run. They are
            # still folded in (a meter's delayed reading still proves it reported), and
            # copied, with where they came from, to the late topic (pseudonymised: past
            # ingress no topic carries a raw household id).
            for i in np.flatnonzero(batch.ts < state.watermark):
                key = state.subjects.keys[slots[i]]
                message, position = batch.origin(i)
                if self.domain.subject_pseudonym is not None:     # keyed by the pseudonym, not the sender's key
                    message = message._replace(key=key.encode())
                result.late.append(DeadLetter(
                    self._late_copy(batch, int(i), key), "late",
                    f"dated {batch.ts[i] - state.watermark:.0f} s before the partition's watermark "
                    f"(allowed lateness {self.settings.allowed_lateness_s:.0f} s)", message, position))
        order = np.argsort(batch.ts, kind="stable")
        ts = batch.ts[order]
        readings = Readings(
            slots=slots[order], ts=ts,
            columns={name: column[order] for name, column in batch.columns.items()},
            groups={name: state.group_slots_for(name, ids)[order] for name, ids in batch.groups.items()})
        watermark = float(ts[-1]) - self.settings.allowed_lateness_s
        if math.isnan(state.next_sweep):
            step = self.settings.sweep_interval_s
            state.next_sweep = (math.floor(float(ts[0]) / step) + 1) * step
        self._advance(state, watermark, result, readings)
        self._arrivals[state.partition] = self.clock()

    def _advance(self, state: PartitionState, watermark: float, result: BatchResult,
                 readings: Readings | None = None):
        """Move a partition's watermark forward, sweeping at every step it passes.

        Time-sorted ``readings`` are folded in between the sweeps: before the sweep at
        tick T, everything dated before T + lateness (whatever the batching, every reading
        within the lateness has arrived by then). A sweep may thus see a reading dated
        after T; what such a reading ends is cleared at the reading's time, not T.

        The ticks between two reading cut points (and between two points where the consent gate
        has something due, :meth:`ConsentGate.splits`) are one *run*: nothing is folded in between,
        so each multi-tick detector sweeps the whole run in one kernel call
        (:meth:`Detector.sweep_ticks`); the alerts, and their order, are those of sweeping tick by tick.
        """
        if not math.isnan(state.watermark):
            watermark = max(watermark, state.watermark)
        step, lateness = self.settings.sweep_interval_s, self.settings.allowed_lateness_s
        applied = 0
        total = 0 if readings is None else len(readings)
        folded: list[Readings] = []     # the slices as the tracker folded them (its facts included)
        while state.next_sweep <= watermark:
            ticks = self._due_ticks(state.next_sweep, watermark, step)
            if readings is not None and applied < total:
                cuts = np.searchsorted(readings.ts, ticks + lateness, side="left")
            else:
                cuts = np.full(len(ticks), applied)
            # a new run wherever more readings are due before a tick than before the one preceding it
            starts = np.flatnonzero(np.diff(cuts, prepend=applied)) if len(ticks) else np.zeros(0, dtype=np.int64)
            if not len(starts) or starts[0] != 0:
                starts = np.concatenate([[0], starts])
            bounds = np.append(starts, len(ticks))
            for run_start, run_end in zip(bounds[:-1], bounds[1:]):
                cut = int(cuts[run_start])
                if cut > applied:
                    folded.append(self._apply(state, readings.slice(applied, cut), result))
                    applied = cut
                run = ticks[run_start:run_end]
                pieces = np.append(self.gate.splits(state, run), len(run))
                first = 0
                for last in pieces:
                    self._sweep(state, run[first:last], result)
                    first = int(last)
            state.next_sweep = float(ticks[-1]) + step
        if applied < total:
            folded.append(self._apply(state, readings.slice(applied), result))
        if folded and self._event_only:
            self._apply_event_only(state, folded[0] if len(folded) == 1 else Readings.concatenate(folded), result)
        state.watermark = watermark

    @staticmethod
    def _due_ticks(next_sweep: float, watermark: float, step: float) -> np.ndarray:
        """The sweep steps from ``next_sweep`` to ``watermark`` (s), at most :data:`MAX_TICKS_PER_SWEEP`,
        each the one before plus ``step`` (the very additions a tick-by-tick loop makes)."""
        count = min(MAX_TICKS_PER_SWEEP, max(1, int((watermark - next_sweep) // step) + 2))
        ticks = np.add.accumulate(np.concatenate([[next_sweep], np.full(count - 1, step)]))
        return ticks[:int(np.searchsorted(ticks, watermark, side="right"))]

    def advance_idle(self, partitions=None, waiting=()) -> BatchResult:
        """Let partitions that received nothing for ``idle_partition_after_s`` (wall clock) follow the others.

        A partition whose only gateway went quiet would otherwise never see time pass,
        and its outage would be reported only when data resumes. An idle partition's
        watermark moves to the slowest *active* partition's watermark; when every
        partition is idle (the whole feed is quiet) nothing moves.

        ``waiting``: partitions with records not yet processed (fetched, or still on the
        broker). Such a partition is behind, not idle, however long since its last batch
        (a busy worker): it is never moved, and counts as active. Moving it would sweep
        before its readings are folded in, and its alerts would depend on the wall clock.
        """
        result = BatchResult()
        now = self.clock()
        idle_after = self.settings.idle_partition_after_s
        mine = set(self.states) if partitions is None else set(partitions) & set(self.states)
        waiting = set(waiting)
        active = [self.states[p].watermark for p, seen in self._arrivals.items()
                  if (now - seen < idle_after or p in waiting) and p in mine
                  and not math.isnan(self.states[p].watermark)]
        if active:
            target = min(active)
            for partition, state in self.states.items():
                if partition not in mine or partition in waiting:
                    continue
                idle = now - self._arrivals.get(partition, now) >= idle_after
                if idle and not math.isnan(state.watermark) and state.watermark < target:
                    self._advance(state, target, result)
                    self._touched.add(partition)
        return result

    def _apply(self, state: PartitionState, readings: Readings, result: BatchResult) -> Readings:
        """Fold time-sorted readings into the tracker and every detector but the event-only ones; the
        readings with the tracker's facts (for :meth:`_apply_event_only`)."""
        tracker = self.domain.tracker
        if tracker is not None:
            started = time.perf_counter()
            facts = tracker.update(state, readings)
            if isinstance(facts, dict):      # per-reading facts (the previous reading...) handed to the detectors
                readings = readings.with_facts(facts)
            self._spent(f"{self.domain.name}.tracker", started)
        if self.kpi is not None:
            started = time.perf_counter()
            for label, amount in self.kpi.measure(readings).items():
                result.kpi[label] = result.kpi.get(label, 0.0) + amount
            self._spent(f"{self.domain.name}.kpi", started)
        gate = self.gate
        masks = gate.masks(state, state.watermark)
        event_only = self._event_only
        for i, (detector, view) in enumerate(zip(self.detectors, self._declared(state))):
            if i in event_only:
                continue
            started = time.perf_counter()
            found = detector.update(view, guarded_readings(gate.readings_for(i, readings, masks[i]), detector))
            self._spent(detector.declaration.name, started)
            gate.delete(state, i, masks[i])
            self._emit(detector.declaration, gate.say(state, i, masks[i], found), result)
        return readings

    def _apply_event_only(self, state: PartitionState, readings: Readings, result: BatchResult) -> None:
        """Fold a batch's readings (with the tracker's facts) into the event-only detectors, in one call each."""
        gate = self.gate
        masks = gate.masks(state, state.watermark)
        views = self._declared(state)
        for i in sorted(self._event_only):
            detector = self.detectors[i]
            started = time.perf_counter()
            found = detector.update(views[i], guarded_readings(gate.readings_for(i, readings, masks[i]), detector))
            self._spent(detector.declaration.name, started)
            gate.delete(state, i, masks[i])
            self._emit(detector.declaration, gate.say(state, i, masks[i], found), result)

    def _sweep(self, state, ticks: np.ndarray, result: BatchResult):
        """Sweep a run of ``ticks`` (s) with no reading folded in between and the same consent masks at
        each (:meth:`ConsentGate.splits`): the multi-tick detectors in one call each, the others tick by
        tick (interleaved in run order); then what the gate says, holds and releases, tick by tick."""
        gate = self.gate
        masks = gate.masks(state, float(ticks[0]))
        views = self._declared(state)
        found: list[tuple[int, int, Transition]] = []     # (tick index, detector index, transition)
        per_tick = []
        for i, (detector, view) in enumerate(zip(self.detectors, views)):
            if i not in self._multi_tick:
                if i in self._sweeping:
                    per_tick.append(i)
                else:
                    gate.delete(state, i, masks[i])    # no sweep: only what the gate deletes
                continue
            started = time.perf_counter()
            found += [(k, i, t) for k, t in detector.sweep_ticks(view, ticks)]
            self._spent(detector.declaration.name, started)
            gate.delete(state, i, masks[i])
        for k, tick in enumerate(ticks):
            for i in per_tick:
                detector = self.detectors[i]
                started = time.perf_counter()
                found += [(k, i, t) for t in detector.sweep(views[i], float(tick))]
                self._spent(detector.declaration.name, started)
                gate.delete(state, i, masks[i])
        if self._multi_tick and per_tick and len(ticks) > 1:
            found.sort(key=lambda item: (item[0], item[1]))   # stable: each detector's own order kept
        holding = bool(gate.holding)
        position = 0
        k = 0
        while k < len(ticks):
            while position < len(found) and found[position][0] == k:
                i = found[position][1]
                end = position
                while end < len(found) and found[end][0] == k and found[end][1] == i:
                    end += 1
                self._emit(self.detectors[i].declaration, gate.say(state, i, masks[i], [t for _k, _i, t in
                                                                                        found[position:end]]), result)
                position = end
            if holding and gate.holds_any(state):
                for i, transition in gate.release(state, float(ticks[k])):
                    self._emit(self.detectors[i].declaration, [transition], result)
                k += 1
            elif position < len(found):
                k = found[position][0]      # nothing held: straight to the next tick with something to say
            else:
                break
        gate.purge_tracker(state, float(ticks[-1]))

    def consent_behind(self) -> bool:
        """Whether the consent registers changed since :meth:`apply_consent` last ran."""
        return self.consent.version != self._consent_version

    def apply_consent(self) -> None:
        """Delete, now, the state the consent registers no longer allow (after a register change).

        Detectors also skip excluded households at every batch and sweep; this makes an
        un-enrolment or objection take effect in state (and the changelog) without waiting for data.
        """
        self._consent_version = self.consent.version
        for partition, state in self.states.items():
            masks = self.gate.masks(state, state.watermark)
            for i, mask in enumerate(masks):
                if mask is not None:
                    self.gate.delete(state, i, mask)
                    self._touched.add(partition)

    @staticmethod
    def _emit(declaration, transitions: list[Transition], result: BatchResult):
        for transition in transitions:
            result.alerts.append(OutgoingAlert(declaration.alert_topic, transition.subject.encode(),
                                               alert_event(transition, declaration)))

    def _spent(self, kernel: str, started: float) -> None:
        """Add the time since ``started`` (perf_counter s) to ``kernel``'s time in the current batch."""
        self._kernel_seconds[kernel] = self._kernel_seconds.get(kernel, 0.0) + time.perf_counter() - started

    def record(self, result: BatchResult):
        """Count a published batch in the metrics (readings, messages, dead letters, alerts, the batch's size,
        each partition's watermark lag, and each kernel's time over the batches since the last call: one
        observation per kernel, whatever the number of sweeps)."""
        for kernel, seconds in self._kernel_seconds.items():
            metrics.KERNEL_SECONDS.labels(kernel).observe(seconds)
        self._kernel_seconds.clear()
        domain = self.domain.name
        metrics.MESSAGES.labels(domain).inc(result.messages)
        metrics.READINGS.labels(domain).inc(result.readings)
        for dead in result.dead_letters:
            metrics.INVALID.labels(domain, dead.reason).inc()
        if result.late:
            metrics.LATE_READINGS.labels(domain).inc(len(result.late))
        for label, amount in result.kpi.items():
            self.kpi.metric.labels(label).inc(amount)
        for alert in result.alerts:
            data = alert.event["data"]
            metrics.ALERTS.labels(domain, data["detector"], data["state"]).inc()
        if result.messages:
            metrics.BATCH_SIZE.labels(domain).observe(result.readings)
        now = self.clock()
        newest = -math.inf
        for partition, state in self.states.items():     # a few partitions: per batch, not per reading
            if not math.isnan(state.watermark):
                metrics.PARTITION_WATERMARK_LAG.labels(domain, str(partition)).set(now - state.watermark)
                newest = max(newest, state.watermark)
        if newest > -math.inf:
            metrics.WATERMARK_LAG.labels(domain).set(now - newest)
        metrics.SUBJECTS_TRACKED.labels(domain).set(sum(len(s.subjects) for s in self.states.values()))
