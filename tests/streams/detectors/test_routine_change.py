"""water.routine_change: ships dormant, runs once activated, and finds a household's change of rhythm through
the one pipeline (a shift raised after three days and cleared on the return; a stable, noisy routine quiet)."""

import dataclasses

import numpy as np
import orjson
from jsonschema import Draft7Validator

import schemas
from streams.alerts import iso_time
from streams.audit import activations, append
from streams.detectors import REGISTRY
from streams.detectors.access import DeclaredState, guarded_readings
from streams.detectors.water.routine_change import RoutineChange
from streams.domains import DOMAINS
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from tests.streams.detectors.corpus import PSEUDONYMS, SETTINGS, prepared_state

WATER = DOMAINS["water"]
NAME = "water.routine_change"
H = 3600.0
DAY = 86400.0
T0 = 1_790_035_200.0          # a UTC midnight


def litres(rng, hour: int, mornings_at_night: bool) -> float:
    """Use (L) in the hour ending at ``hour`` (0-23 UTC) of a household up at 6 and busy again at 18-21."""
    if hour in ((0, 1, 2) if mornings_at_night else (6, 7, 8)):
        return rng.uniform(15, 40) if rng.random() < 0.8 else 0.0
    if hour in (12, 13):
        return rng.uniform(5, 15) if rng.random() < 0.5 else 0.0
    if hour in (18, 19, 20, 21):
        return rng.uniform(5, 25) if rng.random() < 0.7 else 0.0
    return rng.uniform(1, 6) if rng.random() < 0.1 else 0.0


def household(meter: str, days: int, seed: int, shifted=range(0)) -> list[tuple[float, bytes]]:
    """Hourly readings (time, message) of one household; on the days in ``shifted`` its mornings are at night."""
    rng = np.random.default_rng(seed)
    readings, index = [], 100.0
    for h in range(days * 24 + 1):
        t = T0 + h * H + 20.0 + float(rng.integers(0, 30))
        if h:
            middle = t - 1800.0
            index += litres(rng, int(middle % DAY // H), int((middle - T0) // DAY) in shifted) / 1000.0
        readings.append((t, orjson.dumps({"id": meter, "type": "WaterConsumptionObserved", "dateObserved": iso_time(t),
                                          "waterConsumption": round(index, 3)})))
    return readings


def messages(*households) -> list[RawMessage]:
    ordered = sorted(r for h in households for r in h)
    return [RawMessage(value, "glasscity.water.readings.v1", 0, offset) for offset, (_t, value) in enumerate(ordered)]


def run(messages_, batch=500, **pipeline_args):
    pipeline = DomainPipeline(WATER, SETTINGS, PSEUDONYMS, clock=lambda: T0 + 400 * DAY, **pipeline_args)
    alerts = []
    for start in range(0, len(messages_), batch):
        alerts += pipeline.process(messages_[start:start + batch]).alerts
    return alerts


def routine(alerts):
    return [(a.event["subject"], a.event["data"]["state"], a.event["data"]["episodeStart"], a.event["time"], a.topic)
            for a in alerts if a.event["data"]["detector"] == NAME]


def test_it_ships_dormant_for_the_welfare_team_of_enrolled_households():
    d = REGISTRY[NAME].declaration
    assert REGISTRY[NAME] is RoutineChange and RoutineChange in WATER.detectors
    assert d.status == "dormant" and d.alert_topic == "alerts.welfare.v1" and d.severity == "warning"
    assert d.requires_enrolment and d.absence_holds and d.objection_allowed and d.retention_s == 30 * DAY
    assert d.owner and d.logic and "9(2)(a)" in d.legal_basis and d.subject_kind == "water_meter"
    assert all(name.startswith("routine_") for name, _dtype, _fill in RoutineChange.subject_fields)
    assert RoutineChange.columns == ("waterConsumption",) and RoutineChange.state_reads == ()


def test_a_shift_of_a_week_is_raised_after_three_days_and_cleared_on_the_return_only_when_activated():
    shifted = household("urn:ngsi-ld:WaterMeter:R-1", 45, seed=1, shifted=range(30, 37))
    stable = [household(f"urn:ngsi-ld:WaterMeter:R-{k}", 45, seed=k) for k in (2, 3, 4)]
    feed = messages(shifted, *stable)
    everything_else = [a.event for a in run(feed) if a.event["data"]["detector"] != NAME]
    assert routine(run(feed)) == []                                          # dormant: off by default
    alerts = run(feed, activated={NAME})
    subject = PSEUDONYMS.pseudonym("wm", "urn:ngsi-ld:WaterMeter:R-1")
    got = routine(alerts)
    assert [(s, state, start) for s, state, start, _t, _topic in got] == [
        (subject, "raised", iso_time(T0 + 30 * DAY)), (subject, "cleared", iso_time(T0 + 30 * DAY))]
    raised_at, cleared_at = (np.datetime64(t[3].rstrip("Z")).astype("datetime64[s]").astype(float) for t in got)
    assert T0 + 33 * DAY < raised_at < T0 + 33 * DAY + H           # the reading that closes the third shifted day
    assert T0 + 37 * DAY < cleared_at < T0 + 41 * DAY              # a day or two after the routine is back
    assert {topic for *_rest, topic in got} == {"alerts.welfare.v1"}
    # switching it on changes nothing for the other detectors
    assert [a.event for a in alerts if a.event["data"]["detector"] != NAME] == everything_else
    validator = Draft7Validator(schemas.load("alert"))
    assert all(validator.is_valid(a.event) for a in alerts if a.event["data"]["detector"] == NAME)


def test_a_stable_noisy_routine_raises_nothing_in_sixty_days():
    feed = messages(*(household(f"urn:ngsi-ld:WaterMeter:S-{k}", 60, seed=100 + k) for k in range(8)))
    assert routine(run(feed, activated={NAME})) == []


def test_batching_and_a_state_hand_over_change_nothing():
    feed = messages(household("urn:ngsi-ld:WaterMeter:R-1", 40, seed=1, shifted=range(25, 40)),
                    household("urn:ngsi-ld:WaterMeter:R-2", 40, seed=2))
    whole = routine(run(feed, batch=len(feed), activated={NAME}))
    assert len(whole) == 2    # raised on the third day; cleared when the new routine becomes the usual one (14 days)
    assert routine(run(feed, batch=37, activated={NAME})) == whole
    pipeline = DomainPipeline(WATER, SETTINGS, PSEUDONYMS, clock=lambda: T0 + 400 * DAY, activated={NAME})
    half = len(feed) // 2
    alerts = pipeline.process(feed[:half]).alerts
    taking_over = DomainPipeline(WATER, SETTINGS, PSEUDONYMS, clock=lambda: T0 + 400 * DAY, activated={NAME})
    taking_over.adopt(0, pipeline.revoke(0))
    alerts += taking_over.process(feed[half:]).alerts
    assert routine(alerts) == whole


def test_an_audited_activation_switches_it_on_and_a_deactivation_off(tmp_path):
    feed = messages(household("urn:ngsi-ld:WaterMeter:R-1", 40, seed=1, shifted=range(30, 40)))
    log = tmp_path / "audit.jsonl"

    def raised():
        activated, problems = activations(log)
        assert problems == []
        return [a for a in routine(run(feed, activated=activated)) if a[1] == "raised"]

    assert raised() == []
    append(log, "activate", NAME, "data protection officer", "DPIA approved, ticket 12")
    assert len(raised()) == 1
    append(log, "deactivate", NAME, "data protection officer", "consent withdrawn")
    assert raised() == []


def test_its_fields_exist_only_where_it_runs():
    def fields(pipeline):
        return set(pipeline.state(0).subjects.fields)

    dormant = DomainPipeline(WATER, SETTINGS, PSEUDONYMS)
    running = DomainPipeline(WATER, SETTINGS, PSEUDONYMS, activated={NAME})
    assert not any(f.startswith("routine_") for f in fields(dormant))     # no routine is learnt, nor stored
    assert {name for name, _dtype, _fill in RoutineChange.subject_fields} <= fields(running)


def test_changed_thresholds_are_used():
    feed = messages(household("urn:ngsi-ld:WaterMeter:R-1", 40, seed=1, shifted=range(25, 40)))
    strict = dataclasses.replace(RoutineChange.Thresholds(), consecutive_days=5.0)
    default = [a for a in routine(run(feed, activated={NAME})) if a[1] == "raised"]
    later = [a for a in routine(run(feed, activated={NAME}, thresholds={NAME: strict})) if a[1] == "raised"]
    assert len(default) == len(later) == 1 and later[0][3] > default[0][3]


def test_the_declared_view_is_enough():
    detector = RoutineChange()
    state = DeclaredState(prepared_state(WATER), detector)
    from tests.streams.detectors.corpus import empty_readings

    assert detector.update(state, guarded_readings(empty_readings(WATER), detector)) == []
    assert detector.definitional_delay_s() == 3 * DAY
