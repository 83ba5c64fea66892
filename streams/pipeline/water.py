"""Water pipeline: per-partition state, event-time sweeps interleaved with updates."""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

import kernels
from kernels.config import READING_CODES
from streams import metrics
from streams.alerts import alert_event
from streams.config import Settings
from streams.detectors import water_detectors
from streams.detectors.base import Transition
from streams.ingest import DeadLetter, RawMessage, decode_water
from streams.pseudonym import Pseudonymizer
from streams.state import WaterPartitionState

__all__ = ["WaterPipeline", "BatchResult", "OutgoingAlert", "MAX_SWEEPS_PER_BATCH"]

DOMAIN = "water"
#: A watermark jump of more sweep steps than this (a replay of months) is swept at
#: its end only: alert times get coarser, no episode is lost.
MAX_SWEEPS_PER_BATCH = 100_000


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
    reading_outcomes: Counter = field(default_factory=Counter)


class WaterPipeline:
    """Water domain processing for the partitions this process owns."""

    def __init__(self, settings: Settings, pseudonymizer: Pseudonymizer, clock=time.time):
        self.settings = settings
        self.pseudonymizer = pseudonymizer
        self.detectors = water_detectors(settings)
        self.declarations = {d.declaration.name: d.declaration for d in self.detectors}
        self.states: dict[int, WaterPartitionState] = {}
        self._arrivals: dict[int, float] = {}   # partition -> wall time of its last batch (s)
        self.clock = clock

    # -- partition ownership (rebalance) ------------------------------------------------------
    def state(self, partition: int) -> WaterPartitionState:
        state = self.states.get(partition)
        if state is None:
            state = self.states[partition] = WaterPartitionState(partition)
        return state

    def revoke(self, partition: int) -> bytes | None:
        """Drop a partition's state, returning its snapshot for whoever takes it over."""
        state = self.states.pop(partition, None)
        self._arrivals.pop(partition, None)
        return None if state is None else state.snapshot()

    def adopt(self, partition: int, snapshot: bytes) -> None:
        self.states[partition] = WaterPartitionState.restore(snapshot)

    # -- the batch path ---------------------------------------------------------------------------
    def process(self, messages: list[RawMessage]) -> BatchResult:
        result = BatchResult(messages=len(messages))
        by_partition: dict[int, list[RawMessage]] = {}
        for message in messages:
            by_partition.setdefault(message.partition, []).append(message)
        for partition, group in by_partition.items():
            self._process_partition(self.state(partition), group, result)
        self._record(result)
        return result

    def _process_partition(self, state: WaterPartitionState, messages: list[RawMessage], result: BatchResult):
        batch = decode_water(messages, now=self.clock(), max_future_skew_s=self.settings.max_future_skew_s)
        result.dead_letters.extend(batch.dead_letters)
        result.readings += len(batch)
        if not len(batch):
            return
        order = np.argsort(batch.ts, kind="stable")
        ts = batch.ts[order]
        index = batch.index[order]
        meter_slots = state.meters.slots_for(self.pseudonymizer.meters(batch.meter_ids))[order]
        gateway_slots = state.gateway_slots_for(batch.gateway_ids)[order]

        watermark = float(ts[-1]) - self.settings.allowed_lateness_s
        if math.isnan(state.next_sweep):
            step = self.settings.sweep_interval_s
            state.next_sweep = (math.floor(float(ts[0]) / step) + 1) * step
        self._advance(state, watermark, result, (meter_slots, ts, index, gateway_slots))
        self._arrivals[state.partition] = self.clock()

    def _advance(self, state: WaterPartitionState, watermark: float, result: BatchResult, readings=None):
        """Move a partition's watermark forward, sweeping at every step it passes.

        ``readings`` (slots, ts sorted, index, gateway slots) are folded in between the
        sweeps: before the sweep at tick T, everything dated before T + lateness.
        """
        if not math.isnan(state.watermark):
            watermark = max(watermark, state.watermark)
        step, lateness = self.settings.sweep_interval_s, self.settings.allowed_lateness_s
        if not math.isnan(state.next_sweep):
            due = math.floor((watermark - state.next_sweep) / step) + 1
            if due > MAX_SWEEPS_PER_BATCH:
                state.next_sweep += (due - 1) * step
        applied = 0
        total = 0 if readings is None else len(readings[1])
        while state.next_sweep <= watermark:
            tick = state.next_sweep
            if readings is not None:
                cut = int(np.searchsorted(readings[1], tick + lateness, side="left"))
                if cut > applied:
                    self._apply(state, *(column[applied:cut] for column in readings), result)
                    applied = cut
            self._sweep(state, tick, result)
            state.next_sweep = tick + step
        if applied < total:
            self._apply(state, *(column[applied:] for column in readings), result)
        state.watermark = watermark

    def advance_idle(self) -> BatchResult:
        """Let partitions that received nothing for ``idle_partition_after_s`` (wall clock) follow the others.

        A partition whose only gateway went quiet would otherwise never see time pass,
        and its outage would be reported only when data resumes. An idle partition's
        watermark moves to the slowest *active* partition's watermark; when every
        partition is idle (the whole feed is quiet) nothing moves.
        """
        result = BatchResult()
        now = self.clock()
        idle_after = self.settings.idle_partition_after_s
        active = [self.states[p].watermark for p, seen in self._arrivals.items()
                  if now - seen < idle_after and p in self.states and not math.isnan(self.states[p].watermark)]
        if active:
            target = min(active)
            for partition, state in self.states.items():
                idle = now - self._arrivals.get(partition, now) >= idle_after
                if idle and not math.isnan(state.watermark) and state.watermark < target:
                    self._advance(state, target, result)
        self._record(result)
        return result

    def _apply(self, state, slots, ts, index, gateway_slots, result: BatchResult):
        started = time.perf_counter()
        codes = kernels.apply_meter_readings(
            np.ascontiguousarray(slots), np.ascontiguousarray(ts), np.ascontiguousarray(index),
            np.ascontiguousarray(gateway_slots), state.meter("last_seen"), state.meter("last_index"),
            state.meter("last_use"), state.meter("meter_gateway"), state.gateway("gateway_last_seen"))
        metrics.KERNEL_SECONDS.labels("apply_meter_readings").observe(time.perf_counter() - started)
        for code, count in zip(*np.unique(codes, return_counts=True)):
            result.reading_outcomes[READING_CODES[code]] += int(count)

    def _sweep(self, state, watermark: float, result: BatchResult):
        for detector in self.detectors:
            started = time.perf_counter()
            found: list[Transition] = detector.sweep(state, watermark)
            metrics.KERNEL_SECONDS.labels(detector.declaration.name).observe(time.perf_counter() - started)
            declaration = detector.declaration
            for transition in found:
                result.alerts.append(OutgoingAlert(declaration.alert_topic, transition.subject.encode(),
                                                   alert_event(transition, declaration)))

    def _record(self, result: BatchResult):
        metrics.MESSAGES.labels(DOMAIN).inc(result.messages)
        metrics.READINGS.labels(DOMAIN).inc(result.readings)
        for dead in result.dead_letters:
            metrics.INVALID.labels(DOMAIN, dead.reason).inc()
        for alert in result.alerts:
            data = alert.event["data"]
            metrics.ALERTS.labels(DOMAIN, data["detector"], data["state"]).inc()
        watermarks = [s.watermark for s in self.states.values() if not math.isnan(s.watermark)]
        if watermarks:
            metrics.WATERMARK_LAG.labels(DOMAIN).set(self.clock() - max(watermarks))
        metrics.METERS_TRACKED.labels(DOMAIN).set(sum(len(s.meters) for s in self.states.values()))
