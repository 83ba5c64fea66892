"""Consent, absences, objections and retention through the real water pipeline (no broker)."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from streams.alerts import iso_time
from streams.consent import ALL_DETECTORS, Absence, ConsentRegister, Enrolment, Objection, encode, record_key
from streams.domains import DOMAINS
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from streams.pipeline.gate import hold_field
from streams.state import rebuild
from tests.streams.detectors.corpus import PSEUDONYMS, SETTINGS, raw_messages, simulation

WATER = DOMAINS["water"]
DAY = 86400.0
START = 1_790_000_000.0 - 1_790_000_000.0 % DAY
WELFARE = "water.no_use_24h"


def hourly(meters: dict[str, float | None], start: float, hours: int, first_offset: int = 0) -> list[RawMessage]:
    """Hourly readings of each meter from ``start``; a meter uses 0.01 m3 per hour until its stop
    time (s, None = never stops). Every meter reports throughout."""
    messages, index = [], {m: 100.0 for m in meters}
    for h in range(hours):
        t = start + h * 3600.0
        for meter, stop in meters.items():
            if stop is None or t < stop:
                index[meter] += 0.01
            value = orjson.dumps({"id": meter, "type": "WaterConsumptionObserved", "dateObserved": iso_time(t),
                                  "waterConsumption": round(index[meter], 3), "gatewayId": "gw-1"})
            messages.append(RawMessage(value, "glasscity.water.readings.v1", 0, first_offset + len(messages),
                                       b"gw-1"))
    return messages


def pseudonym(meter: str) -> str:
    return PSEUDONYMS.meter(meter)


def register(enrolled=(), absences=(), objections=()) -> ConsentRegister:
    consent = ConsentRegister()
    for meter in enrolled:
        consent.apply("enrolment", record_key("enrolment", pseudonym(meter)), encode(Enrolment(True)))
    for meter, start, until in absences:
        consent.apply("absence", record_key("absence", pseudonym(meter), start), encode(Absence(start, until)))
    for meter, detector in objections:
        consent.apply("objection", record_key("objection", pseudonym(meter), detector), encode(Objection(True)))
    return consent


def run(consent, messages, batch=500, pipeline=None):
    pipeline = pipeline or DomainPipeline(WATER, SETTINGS, PSEUDONYMS, clock=lambda: START + 400 * DAY,
                                          consent=consent)
    alerts = []
    for i in range(0, len(messages), batch):
        alerts += pipeline.process(messages[i:i + batch]).alerts
    return pipeline, [(a.event["data"]["detector"], a.event["subject"], a.event["data"]["state"],
                       a.event["time"]) for a in alerts]


def welfare(alerts):
    return [a for a in alerts if a[0] == WELFARE]


def test_only_enrolled_households_get_welfare_alerts():
    messages = hourly({"m-enrolled": START + 6 * 3600, "m-not": START + 6 * 3600, "m-busy": None}, START, 72)
    pipeline, alerts = run(register(enrolled=["m-enrolled", "m-busy"]), messages)
    assert [(a[1], a[2]) for a in welfare(alerts)] == [(pseudonym("m-enrolled"), "raised")]
    state = pipeline.states[0]
    since = state.subject("no_use_since")
    assert math.isnan(since[state.subjects.slots[pseudonym("m-not")]])        # no state kept for it
    assert not math.isnan(since[state.subjects.slots[pseudonym("m-enrolled")]])
    # without a register (in-process evaluation: everyone enrolled) both stopped households are alerted
    _p, everyone = run(None, messages)
    assert sorted(a[1] for a in welfare(everyone)) == sorted([pseudonym("m-enrolled"), pseudonym("m-not")])


def test_unenrolling_stops_alerts_and_deletes_state_in_the_changelog():
    messages = hourly({"m1": START + 6 * 3600, "m2": START + 6 * 3600}, START, 40)
    consent = register(enrolled=["m1", "m2"])
    pipeline, alerts = run(consent, messages)
    assert sorted(a[1] for a in welfare(alerts)) == sorted([pseudonym("m1"), pseudonym("m2")])
    before = pipeline.changelog()
    consent.apply("enrolment", record_key("enrolment", pseudonym("m1")), encode(Enrolment(False)))
    pipeline.apply_consent()
    state = pipeline.states[0]
    slot = state.subjects.slots[pseudonym("m1")]
    assert math.isnan(state.subject("no_use_since")[slot])
    assert not math.isnan(state.subject("no_use_since")[state.subjects.slots[pseudonym("m2")]])
    restored, _sets = rebuild(0, [(k, v) for _p, k, v in before + pipeline.changelog()])
    assert math.isnan(restored.subject("no_use_since")[slot])                # the deletion is durable
    # use resumes and stops again: m2 is cleared and raised again; m1 says nothing any more
    more = hourly({"m1": START + 50 * 3600, "m2": START + 50 * 3600}, START + 40 * 3600, 60, len(messages))
    _p, later = run(consent, more, pipeline=pipeline)
    assert {a[1] for a in welfare(later)} == {pseudonym("m2")}
    assert math.isnan(state.subject("no_use_since")[slot])


def test_a_declared_absence_holds_the_alert_back_until_it_ends():
    stop = START + 6 * 3600
    until = START + 3 * DAY
    messages = hourly({"m1": stop, "m2": stop}, START, 100)
    consent = register(enrolled=["m1", "m2"], absences=[("m1", START + DAY, until)])
    pipeline, alerts = run(consent, messages)
    by_meter = {a[1]: a for a in welfare(alerts)}
    assert set(by_meter) == {pseudonym("m1"), pseudonym("m2")}
    assert by_meter[pseudonym("m2")][3] < iso_time(START + DAY + 8 * 3600)    # not absent: on time
    assert by_meter[pseudonym("m1")][2] == "raised"
    assert by_meter[pseudonym("m1")][3] == iso_time(until)                  # held until the absence ends
    state = pipeline.states[0]
    assert np.isnan(state.subject(hold_field(WELFARE))).all()


def test_use_resuming_during_the_absence_means_no_alert_at_all():
    stop = START + 6 * 3600
    until = START + 4 * DAY
    quiet = hourly({"m1": stop}, START, 60)                                    # raised (held) at ~30 h
    resumed = hourly({"m1": None}, START + 60 * 3600, 60, len(quiet))        # use again at 60 h, in the absence
    consent = register(enrolled=["m1"], absences=[("m1", START + 12 * 3600, until)])
    pipeline, alerts = run(consent, quiet + resumed)
    assert welfare(alerts) == []
    assert np.isnan(pipeline.states[0].subject(hold_field(WELFARE))).all()


def test_a_held_alert_survives_a_restart():
    stop = START + 6 * 3600
    until = START + 3 * DAY
    messages = hourly({"m1": stop}, START, 100)
    consent = register(enrolled=["m1"], absences=[("m1", START + DAY, until)])
    first = DomainPipeline(WATER, SETTINGS, PSEUDONYMS, clock=lambda: START + 400 * DAY, consent=consent)
    half = [m for m in messages if m.offset < 50]
    _p, alerts = run(consent, half, pipeline=first)
    assert welfare(alerts) == []                                             # raised and held
    records = [(k, v) for _p, k, v in first.changelog()]
    second = DomainPipeline(WATER, SETTINGS, PSEUDONYMS, clock=lambda: START + 400 * DAY, consent=consent)
    second.restore(0, records)
    _p, after = run(consent, [m for m in messages if m.offset >= 50], pipeline=second)
    assert [(a[2], a[3]) for a in welfare(after)] == [("raised", iso_time(until))]


def objected_corpus():
    sim = simulation(WATER)
    flow = sorted({i.subject for i in sim.incidents if i.kind == "continuous_flow"})
    return sim, flow


def alerts_of(consent, sim):
    _p, alerts = run(consent, raw_messages(sim), batch=2000)
    return alerts


@pytest.mark.parametrize("named", ["water.continuous_flow", ALL_DETECTORS])
def test_an_objection_stops_the_detectors_it_names_for_that_meter(named):
    sim, flow = objected_corpus()
    assert len(flow) >= 2
    objector = flow[0]
    everyone = sorted({m for step in [sim] for m in [i.subject for i in sim.incidents]} | set(flow))
    base = alerts_of(register(enrolled=everyone), sim)
    objecting = alerts_of(register(enrolled=everyone, objections=[(objector, named)]), sim)
    me = pseudonym(objector)
    assert any(a[0] == "water.continuous_flow" and a[1] == me for a in base)
    assert not any(a[0] == "water.continuous_flow" and a[1] == me for a in objecting)
    # the other leak is still found, and what the objection does not name is unchanged
    other = pseudonym(flow[1])
    assert any(a[0] == "water.continuous_flow" and a[1] == other for a in objecting)
    from streams.detectors import REGISTRY
    unaffected = {name for name, cls in REGISTRY.items() if cls.declaration.domain == "water"
                  and not (cls.declaration.objection_allowed and named in (ALL_DETECTORS, name))}
    assert [a for a in base if a[0] in unaffected or a[1] != me] == \
           [a for a in objecting if a[0] in unaffected or a[1] != me]


def test_an_objection_deletes_the_state_it_names():
    sim, flow = objected_corpus()
    consent = register(enrolled=[])
    pipeline, _alerts = run(consent, raw_messages(sim), batch=2000)
    state = pipeline.states[0]
    fields = [name for name, _d, _f in WATER.detectors[3].subject_fields]    # continuous_flow's own fields
    assert WATER.detectors[3].declaration.name == "water.continuous_flow"
    slot = state.subjects.slots[pseudonym(flow[0])]
    assert any(not _is_fill(state, name, slot) for name in fields)
    consent.apply("objection", record_key("objection", pseudonym(flow[0]), "water.continuous_flow"),
                  encode(Objection(True)))
    pipeline.apply_consent()
    assert all(_is_fill(state, name, slot) for name in fields)


def _is_fill(state, name, slot) -> bool:
    value = state.subject(name)[slot]
    fill = state.subjects._fills[name]
    return (isinstance(fill, float) and math.isnan(fill) and math.isnan(value)) or value == fill


def test_state_past_its_retention_is_purged():
    # m-gone reports for two days, then never again; m-stays keeps the partition's time moving
    gone = hourly({"m-gone": START + 6 * 3600}, START, 48)
    stays = hourly({"m-stays": None}, START + 48 * 3600, 24 * 95, len(gone))
    consent = register(enrolled=["m-gone", "m-stays"])
    pipeline = DomainPipeline(WATER, SETTINGS, PSEUDONYMS, clock=lambda: START + 400 * DAY, consent=consent)
    state = None
    checks = {}
    for i in range(0, len(gone + stays), 24):
        pipeline.process((gone + stays)[i:i + 24])
        state = pipeline.states[0]
        slot = state.subjects.slots[pseudonym("m-gone")]
        age = state.watermark - (START + 47 * 3600)
        checks[age // DAY] = (float(state.subject("no_use_since")[slot]), float(state.subject("last_seen")[slot]))
    welfare_days = 30
    assert not math.isnan(checks[welfare_days - 2][0])              # within its retention: kept
    assert math.isnan(checks[welfare_days + 1][0])                  # past 30 days: the welfare state is gone
    assert not math.isnan(checks[welfare_days + 1][1])              # the tracker still knows it (others' retention)
    longest = max(cls.declaration.retention_s for cls in WATER.detectors) / DAY
    assert math.isnan(checks[longest + 1][1])                       # past every retention: nothing left
    slot = state.subjects.slots[pseudonym("m-gone")]
    kept = [name for name in state.subjects.fields if not _is_fill(state, name, slot)]
    assert kept == [], f"fields still holding data past every retention: {kept}"


def test_group_alerts_pass_the_gate_when_household_state_is_purged():
    # a gateway's outage is not about a household: a stale meter's mask must not touch it (nor fail on it)
    from streams.detectors.base import Transition

    gone = hourly({"m-gone": None}, START, 24)
    stays = hourly({"m-stays": None}, START + 24 * 3600, 24 * 50, len(gone))   # past 30 days, not 90
    pipeline, _alerts = run(None, gone + stays, batch=2000)
    state = pipeline.states[0]
    gate = pipeline.gate
    masks = gate.masks(state, state.watermark)
    outage = next(i for i, d in enumerate(pipeline.detectors) if d.declaration.name == "feed.gateway_outage")
    welfare = next(i for i, d in enumerate(pipeline.detectors) if d.declaration.name == WELFARE)
    assert masks[welfare] is not None and masks[welfare][state.subjects.slots[pseudonym("m-gone")]]
    group = Transition("feed.gateway_outage", "gw-1", "raised", START, START + 3600)
    assert gate.say(state, outage, masks[welfare], [group]) == [group]
    stale = Transition(WELFARE, pseudonym("m-gone"), "raised", START, START + 3600)
    assert gate.say(state, welfare, masks[welfare], [stale]) == []


def test_pseudonyms_and_slots_are_worked_out_once_per_distinct_id(monkeypatch):
    import streams.pipeline.domain as domain_module

    pipeline = DomainPipeline(WATER, SETTINGS, PSEUDONYMS, clock=lambda: START + 400 * DAY)
    calls = []
    real = PSEUDONYMS.many
    monkeypatch.setattr(pipeline.pseudonymizer, "many", lambda kind, ids: calls.append(list(ids)) or real(kind, ids))
    state = pipeline.state(0)
    ids = ["a", "b", "a", "c", "b"] * 3
    slots = pipeline.subject_slots(state, ids)
    assert [state.subjects.keys[s] for s in slots] == real("wm", ids)
    assert pipeline.subject_keys(ids) == real("wm", ids)
    calls.clear()
    again = pipeline.subject_slots(state, ["c", "d", "a"])
    assert [state.subjects.keys[s] for s in again] == real("wm", ["c", "d", "a"])
    assert calls == [["d"]]                                        # each id hashed once, across batches
    assert list(again) == [slots[3], 3, slots[0]]
    monkeypatch.setattr(domain_module, "SLOT_CACHE_SIZE", 4)
    calls.clear()
    pipeline.subject_slots(state, ["e"])
    assert calls == [["e"]] and len(pipeline._slot_caches[0][1]) == 1   # bounded: cleared when full
    assert [state.subjects.keys[s] for s in pipeline.subject_slots(state, ["a", "e"])] == real("wm", ["a", "e"])
    # another state object for the partition (restored, adopted): the cache starts again
    pipeline.drop(0)
    fresh = pipeline.state(0)
    assert [fresh.subjects.keys[s] for s in pipeline.subject_slots(fresh, ["e", "a"])] == real("wm", ["e", "a"])