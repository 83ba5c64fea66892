"""The shared detector corpus: each domain's small simulated city, run through the real
pipeline (kernels) and through the domain's naive reference (tests/naive.py)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from streams.alerts import iso_time
from streams.config import settings_from
from streams.detectors import REGISTRY, Readings
from streams.ingest import RawMessage, decode
from streams.pipeline import DomainPipeline
from streams.pseudonym import Pseudonymizer
from streams.state import PartitionState
from tests import naive

KEY = "corpus-pseudonym-key-0123"
SETTINGS = settings_from(environ={}, pseudonym_key=KEY)
PSEUDONYMS = Pseudonymizer(KEY.encode())
START = 1_790_000_000.0 - 1_790_000_000.0 % 3600

#: Small scenarios per domain: every incident kind present, no malformed input.
CORPUS_SCENARIOS = {
    "lighting": dict(lamps=40, cabinets=4, days=2, lamp_failure=2, day_burner=2, power_out_of_range=2, cycling=2,
                     malformed=0, seed=5),
    "waste": dict(bins=60, districts=3, days=2.5, overflow=1, full_before_collection=1, fire=2,
                  collection_late=1, sensor_fault=2, malformed=0, seed=5),
    "traffic": dict(segments=8, detectors_per_segment=3, days=2, incident=2, stuck=2, silent=2, anomaly=2,
                    malformed=0, seed=5),
    "water": dict(households=40, households_per_gateway=10, days=3, no_use=2, meter_silent=1, gateway_outage=1,
                  continuous_flow=2, burst=2, backflow=2, night_flow=1, device_alarm=2, districts=2,
                  malformed=0, seed=5),
}

#: Detectors whose incidents need a longer run than their domain's corpus: a household's routine is learnt
#: over weeks (a dozen households for a month, every other incident kind left out to keep it small).
DETECTOR_SCENARIOS = {
    "water.routine_change": dict(households=12, households_per_gateway=6, days=31, no_use=0, meter_silent=0,
                                 gateway_outage=0, continuous_flow=0, burst=0, backflow=0, night_flow=0,
                                 device_alarm=0, routine_change=4, districts=1, malformed=0, seed=4),
}


class CorpusResult(NamedTuple):
    kernel: list
    naive: list


def scenario(domain, name: str | None = None) -> dict:
    """The corpus scenario for a detector (its own where it has one, else its domain's)."""
    return DETECTOR_SCENARIOS.get(name, CORPUS_SCENARIOS[domain.name])


def simulation(domain, name: str | None = None):
    return domain.simulate(start=START, **scenario(domain, name))


def raw_messages(sim) -> list[RawMessage]:
    messages = []
    for _when, step in sim.steps():
        messages += [RawMessage(value, f"{sim.domain}.readings", 0, len(messages) + i, key)
                     for i, (key, value) in enumerate(step)]
    return messages


def events(domain, sim, messages) -> list:
    """The event stream the pipeline sees for one partition in one batch: readings sorted by
    time, with each sweep tick T placed before the first reading dated at or after T + lateness."""
    batch = decode(messages, domain, now=sim.end + 3600)
    keys = (batch.subject_ids if domain.subject_pseudonym is None
            else PSEUDONYMS.many(domain.subject_pseudonym, batch.subject_ids))
    order = np.argsort(batch.ts, kind="stable")
    step, lateness = SETTINGS.sweep_interval_s, SETTINGS.allowed_lateness_s
    watermark = float(batch.ts[order[-1]]) - lateness
    tick = (math.floor(float(batch.ts[order[0]]) / step) + 1) * step
    stream = []
    for i in order:
        ts = float(batch.ts[i])
        while tick <= watermark and tick + lateness <= ts:
            stream.append(("tick", tick))
            tick += step
        stream.append(("reading", keys[i], ts, {name: float(col[i]) for name, col in batch.columns.items()},
                       {name: ids[i] for name, ids in batch.groups.items()}))
    while tick <= watermark:
        stream.append(("tick", tick))
        tick += step
    return stream


def _as_tuple(event: dict) -> tuple:
    data = event["data"]
    return (data["detector"], event["subject"], data["state"], data["episodeStart"], event["time"])


_REFERENCE: dict[tuple[str, str], list] = {}


def reference_episodes(domain, name: str | None = None) -> list:
    """Every episode the domain's naive reference finds on the detector's corpus (all detectors at once;
    computed once per corpus and test session: the references are slow on purpose)."""
    key = (domain.name, repr(sorted(scenario(domain, name).items())))
    if key not in _REFERENCE:
        sim = simulation(domain, name)
        thresholds = {n: cls.Thresholds() for n, cls in REGISTRY.items()}
        _REFERENCE[key] = naive.DOMAIN_REFERENCES[domain.name](events(domain, sim, raw_messages(sim)), thresholds)
    return _REFERENCE[key]


def run_corpus(domain, name: str, snapshot_halfway: bool, one_message_per_batch: bool = False) -> CorpusResult:
    """The detector's episodes on its corpus, through the pipeline (activated, should it ship dormant), and
    its naive reference's."""
    sim = simulation(domain, name)
    messages = raw_messages(sim)
    pipeline = DomainPipeline(domain, SETTINGS, PSEUDONYMS, clock=lambda: sim.end + 3600, activated={name})
    if one_message_per_batch:
        alerts = [alert for message in messages for alert in pipeline.process([message]).alerts]
    elif snapshot_halfway:
        half = len(messages) // 2
        alerts = pipeline.process(messages[:half]).alerts
        snapshot = pipeline.revoke(0)
        pipeline.adopt(0, snapshot)
        alerts += pipeline.process(messages[half:]).alerts
    else:
        alerts = pipeline.process(messages).alerts
    kernel = sorted(_as_tuple(a.event) for a in alerts if a.event["data"]["detector"] == name)
    expected = sorted((d, s, st, iso_time(start), iso_time(t))
                      for d, s, st, start, t in reference_episodes(domain, name) if d == name)
    return CorpusResult(kernel, expected)


def prepared_state(domain) -> PartitionState:
    """A partition state with the fields of the domain's tracker and every detector (they may read
    each other's state, as the pipeline allows: water meters read gateway outages)."""
    state = PartitionState(0)
    if domain.tracker is not None:
        domain.tracker.prepare(state)
    for cls in domain.detectors:
        cls().prepare(state)
    return state


def empty_readings(domain) -> Readings:
    facts = {name: np.empty(0, dtype=dtype) for name, dtype in getattr(domain.tracker, "reading_facts", ())}
    return Readings(np.empty(0, dtype=np.int32), np.empty(0), {c.column: np.empty(0) for c in domain.columns},
                    {"gateway": np.empty(0, dtype=np.int32), **{g: np.empty(0, dtype=np.int32)
                                                                for g, _ in domain.groups}}, facts)


def nan_readings(domain, state) -> Readings:
    """Three readings of one subject whose every column is NaN, one of them with a NaN time."""
    slots = state.subjects.slots_for(["nan-subject"] * 3)
    groups = {"gateway": state.group_slots_for("gateway", ["gw-nan"] * 3)}
    for group, _field in domain.groups:
        groups[group] = state.group_slots_for(group, ["g-nan"] * 3)
    ts = np.array([START, np.nan, START + 60.0])
    return Readings(slots, ts, {c.column: np.full(3, np.nan) for c in domain.columns}, groups)
