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
    DeclaredState, check_declarations, field_specs, guarded_readings, prepare_reads, run_order, written_fields,
)
from streams.detectors.base import Readings, Transition
from streams.ingest import DeadLetter, RawMessage, decode
from streams.ingest.decode import reading_bytes
from streams.consent import ConsentRegister
from streams.pipeline.gate import ConsentGate
from streams.pseudonym import Pseudonymizer
from streams.state import PartitionState, StateJournal, rebuild

__all__ = ["DomainPipeline", "BatchResult", "OutgoingAlert", "MAX_SWEEPS_PER_BATCH"]

#: A watermark jump of more sweep steps than this (a replay of months) is swept at
#: its end only: alert times get coarser, no episode is lost.
MAX_SWEEPS_PER_BATCH = 100_000
#: Most raw id -> pseudonym pairs a pipeline keeps in memory (a city's meters, with room to spare).
PSEUDONYM_CACHE_SIZE = 1_000_000


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
        self.gate = ConsentGate(domain, self.detectors, consent)
        self._pseudonyms: dict[str, str] = {}     # raw id -> pseudonym, in memory only
        self._late_fields = [c.json for c in domain.columns] + [f for _group, f in domain.groups]
        self.consent = self.gate.register
        self._consent_version = self.consent.version
        self._views: dict[int, tuple[PartitionState, list[DeclaredState]]] = {}
        check_declarations(domain, self.detectors, lambda: self._prepared(PartitionState(0)), Readings)
        self.states: dict[int, PartitionState] = {}
        self.journals: dict[int, StateJournal] = {}
        self._touched: set[int] = set()          # partitions whose state changed since changelog()
        self._arrivals: dict[int, float] = {}   # partition -> wall time of its last batch (s)
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
        """State keys and alert subjects: pseudonyms for personal ids, the ids themselves otherwise.

        One HMAC per distinct id, not per reading: pseudonyms are cached in memory (raw id ->
        pseudonym, never written anywhere), at most :data:`PSEUDONYM_CACHE_SIZE` of them."""
        kind = self.domain.subject_pseudonym
        if kind is None:
            return raw_ids
        cache = self._pseudonyms
        missing = [raw for raw in dict.fromkeys(raw_ids) if raw not in cache]
        if missing:
            if len(cache) + len(missing) > PSEUDONYM_CACHE_SIZE:
                cache.clear()
            cache.update(zip(missing, self.pseudonymizer.many(kind, missing)))
        return [cache[raw] for raw in raw_ids]

    def _late_copy(self, batch, i: int, key: str) -> bytes:
        """A late reading as copied to the late topic. For a personal subject (a household meter) only the
        fields the detectors use are kept, with the pseudonym as ``id``: anything else a reading may
        carry (an address, a device reference) could identify the household."""
        reading = batch.origins[i][2]
        if self.domain.subject_pseudonym is None or not isinstance(reading, dict):
            return reading_bytes(batch, i)
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
        keys = self.subject_keys(batch.subject_ids)
        if not math.isnan(state.watermark):
            # Later than the allowed lateness: the sweeps for their time have run. They are
            # still folded in (a meter's delayed reading still proves it reported), and
            # copied, with where they came from, to the late topic (pseudonymised: past
            # ingress no topic carries a raw household id).
            for i in np.flatnonzero(batch.ts < state.watermark):
                message, position, _reading = batch.origins[i]
                if self.domain.subject_pseudonym is not None:     # keyed by the pseudonym, not the sender's key
                    message = message._replace(key=keys[i].encode())
                result.late.append(DeadLetter(
                    self._late_copy(batch, int(i), keys[i]), "late",
                    f"dated {batch.ts[i] - state.watermark:.0f} s before the partition's watermark "
                    f"(allowed lateness {self.settings.allowed_lateness_s:.0f} s)", message, position))
        order = np.argsort(batch.ts, kind="stable")
        ts = batch.ts[order]
        readings = Readings(
            slots=state.subjects.slots_for(keys)[order], ts=ts,
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
        """
        if not math.isnan(state.watermark):
            watermark = max(watermark, state.watermark)
        step, lateness = self.settings.sweep_interval_s, self.settings.allowed_lateness_s
        if not math.isnan(state.next_sweep):
            due = math.floor((watermark - state.next_sweep) / step) + 1
            if due > MAX_SWEEPS_PER_BATCH:
                state.next_sweep += (due - 1) * step
        applied = 0
        total = 0 if readings is None else len(readings)
        while state.next_sweep <= watermark:
            tick = state.next_sweep
            if readings is not None:
                cut = int(np.searchsorted(readings.ts, tick + lateness, side="left"))
                if cut > applied:
                    self._apply(state, readings.slice(applied, cut), result)
                    applied = cut
            self._sweep(state, tick, result)
            state.next_sweep = tick + step
        if applied < total:
            self._apply(state, readings.slice(applied), result)
        state.watermark = watermark

    def advance_idle(self, partitions=None) -> BatchResult:
        """Let partitions that received nothing for ``idle_partition_after_s`` (wall clock) follow the others.

        A partition whose only gateway went quiet would otherwise never see time pass,
        and its outage would be reported only when data resumes. An idle partition's
        watermark moves to the slowest *active* partition's watermark; when every
        partition is idle (the whole feed is quiet) nothing moves.
        """
        result = BatchResult()
        now = self.clock()
        idle_after = self.settings.idle_partition_after_s
        mine = set(self.states) if partitions is None else set(partitions) & set(self.states)
        active = [self.states[p].watermark for p, seen in self._arrivals.items()
                  if now - seen < idle_after and p in mine and not math.isnan(self.states[p].watermark)]
        if active:
            target = min(active)
            for partition, state in self.states.items():
                if partition not in mine:
                    continue
                idle = now - self._arrivals.get(partition, now) >= idle_after
                if idle and not math.isnan(state.watermark) and state.watermark < target:
                    self._advance(state, target, result)
                    self._touched.add(partition)
        return result

    def _apply(self, state: PartitionState, readings: Readings, result: BatchResult):
        tracker = self.domain.tracker
        if tracker is not None:
            started = time.perf_counter()
            facts = tracker.update(state, readings)
            if isinstance(facts, dict):      # per-reading facts (the previous reading...) handed to the detectors
                readings = readings.with_facts(facts)
            metrics.KERNEL_SECONDS.labels(f"{self.domain.name}.tracker").observe(time.perf_counter() - started)
        gate = self.gate
        masks = gate.masks(state, state.watermark)
        for i, (detector, view) in enumerate(zip(self.detectors, self._declared(state))):
            started = time.perf_counter()
            found = detector.update(view, guarded_readings(gate.readings_for(i, readings, masks[i]), detector))
            metrics.KERNEL_SECONDS.labels(detector.declaration.name).observe(time.perf_counter() - started)
            gate.delete(state, i, masks[i])
            self._emit(detector.declaration, gate.say(state, i, masks[i], found), result)

    def _sweep(self, state, watermark: float, result: BatchResult):
        gate = self.gate
        masks = gate.masks(state, watermark)
        for i, (detector, view) in enumerate(zip(self.detectors, self._declared(state))):
            started = time.perf_counter()
            found: list[Transition] = detector.sweep(view, watermark)
            metrics.KERNEL_SECONDS.labels(detector.declaration.name).observe(time.perf_counter() - started)
            gate.delete(state, i, masks[i])
            self._emit(detector.declaration, gate.say(state, i, masks[i], found), result)
        gate.purge_tracker(state, watermark)
        for i, transition in gate.release(state, watermark):
            self._emit(self.detectors[i].declaration, [transition], result)

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

    def record(self, result: BatchResult):
        """Count a published batch in the metrics (readings, messages, dead letters, alerts)."""
        domain = self.domain.name
        metrics.MESSAGES.labels(domain).inc(result.messages)
        metrics.READINGS.labels(domain).inc(result.readings)
        for dead in result.dead_letters:
            metrics.INVALID.labels(domain, dead.reason).inc()
        if result.late:
            metrics.LATE_READINGS.labels(domain).inc(len(result.late))
        for alert in result.alerts:
            data = alert.event["data"]
            metrics.ALERTS.labels(domain, data["detector"], data["state"]).inc()
        watermarks = [s.watermark for s in self.states.values() if not math.isnan(s.watermark)]
        if watermarks:
            metrics.WATERMARK_LAG.labels(domain).set(self.clock() - max(watermarks))
        metrics.SUBJECTS_TRACKED.labels(domain).set(sum(len(s.subjects) for s in self.states.values()))
