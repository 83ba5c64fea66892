"""Tests of the synthetic street-lighting city (streams.simulate.lighting)."""

from collections import Counter
from datetime import datetime

import orjson
import pytest
from jsonschema import Draft7Validator

import schemas
from streams.domains import DOMAINS
from streams.simulate.lighting import INCIDENT_KINDS, MALFORMED_KINDS, LightingScenario, simulate_lighting

START = 1_767_225_600  # 2026-01-01T00:00:00Z
SMALL = LightingScenario(lamps=60, cabinets=5, days=2.0, seed=7, start=START, lamp_failure=2, day_burner=2,
                         power_out_of_range=2, cycling=2, malformed=10)
VALIDATOR = Draft7Validator(schemas.load("lighting-reading"), format_checker=Draft7Validator.FORMAT_CHECKER)


def _valid(reading) -> bool:
    """Schema, then the decoder's time checks (an ISO 8601 date with offset, after 2000)."""
    if not VALIDATOR.is_valid(reading):
        return False
    try:
        return datetime.fromisoformat(reading["dateObserved"]).year >= 2000
    except ValueError:
        return False


def _messages(sim):
    return [(when, key, value) for when, step in sim.steps() for key, value in step]


def test_same_scenario_same_bytes_and_other_seed_other_bytes():
    first = _messages(simulate_lighting(SMALL))
    assert first == _messages(simulate_lighting(SMALL))
    other = LightingScenario(**{**SMALL.__dict__, "seed": 8})
    assert first != _messages(simulate_lighting(other))


def test_steps_are_in_time_order_every_15_minutes_keyed_by_cabinet():
    sim = simulate_lighting(SMALL)
    whens = [when for when, _ in sim.steps()]
    assert whens == [START + 900 * k for k in range(2 * 96)]
    keys = {key.decode() for _w, key, _v in _messages(sim)}
    assert keys == set(sim.cabinet_ids)


def test_valid_readings_and_malformed_items_are_counted_exactly():
    sim = simulate_lighting(SMALL)
    valid, invalid, kinds = 0, 0, Counter()
    for _when, key, value in _messages(sim):
        try:
            message = orjson.loads(value)
        except orjson.JSONDecodeError:
            invalid += 1
            continue
        readings = message["readings"] if message.get("type") == "ReadingBatch" else [message]
        for reading in readings:
            if _valid(reading):
                valid += 1
                kinds[reading["type"]] += 1
                if reading["type"] == "Streetlight":
                    assert reading["refStreetlightControlCabinet"] == key.decode()
            else:
                invalid += 1
    assert valid == sim.valid_readings
    assert invalid == len(sim.malformed) == 10
    assert {m["kind"] for m in sim.malformed} == set(MALFORMED_KINDS)
    # hourly cabinet readings, less those of a silent cabinet meter (the gap between its last reading
    # before and its first after, both at +5 s past the hour)
    quiet = [i for i in sim.incidents if i.kind == "silent" and i.subject in sim.cabinet_ids]
    assert len(quiet) == 1
    missing = sum(round(((sim.end + 5 if i.end is None else i.end) - i.start) / 3600) - 1 for i in quiet)
    assert kinds["StreetlightControlCabinet"] == 5 * 48 - missing and missing >= 5


def test_every_incident_kind_on_distinct_lamps_within_the_run():
    sim = simulate_lighting(LightingScenario(start=START))
    counts = Counter(i.kind for i in sim.incidents)
    assert set(counts) == set(INCIDENT_KINDS) and all(4 <= n <= 8 for n in counts.values())
    assert len({i.subject for i in sim.incidents}) == len(sim.incidents)
    for incident in sim.incidents:
        assert sim.start + 4 * 3600 <= incident.start < sim.end
        assert incident.end is None or incident.start < incident.end < sim.end
    assert any(i.end is not None for i in sim.incidents) and any(i.end is None for i in sim.incidents)
    assert sim.valid_readings <= 110_000
    assert sim.ground_truth()["incidents"] == [i.to_json() for i in sim.incidents]
    orjson.dumps(sim.ground_truth())


def test_normal_lamps_follow_the_sun_with_bounded_noise():
    sim = simulate_lighting(SMALL)
    faulty = {i.subject for i in sim.incidents}
    for _when, step in sim.steps():
        for _key, value in step:
            try:
                message = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            for r in message.get("readings", [message]):
                if r.get("type") != "Streetlight" or r["id"] in faulty or not _valid(r):
                    continue
                power, expected = r["powerConsumption"], r["powerRating"] * r["illuminanceLevel"]
                if r["powerState"] == "off":
                    assert power < 1.0 and r["illuminanceLevel"] == 0.0
                else:
                    assert abs(power / expected - 1) <= 0.081


def test_domain_factory_and_bad_scenarios():
    sim = DOMAINS["lighting"].simulate(days=2.0, seed=3, start=START, lamps=40, cabinets=4)
    assert sim.domain == "lighting" and sim.end - sim.start == 2 * 86400
    with pytest.raises(ValueError):
        simulate_lighting(LightingScenario(lamps=4, cabinets=5))
    with pytest.raises(ValueError, match="too short"):
        simulate_lighting(LightingScenario(days=1.0, start=START))
    with pytest.raises(ValueError, match="incidents need"):
        simulate_lighting(LightingScenario(lamps=10, cabinets=2, start=START))


def _reading_times(sim, subjects: set) -> dict:
    """Sorted times (s) of each of ``subjects``' valid readings (only theirs are validated: the schema
    check is the slow part)."""
    times: dict[str, list[float]] = {}
    for _when, key, value in _messages(sim):
        try:
            message = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        for reading in message.get("readings", [message]) if isinstance(message, dict) else ():
            if isinstance(reading, dict) and reading.get("id") in subjects and _valid(reading):
                times.setdefault(reading["id"], []).append(datetime.fromisoformat(reading["dateObserved"]).timestamp())
    return {subject: sorted(ts) for subject, ts in times.items()}


def test_silent_lamps_and_a_cabinet_meter_send_nothing_between_start_and_end():
    sim = simulate_lighting(LightingScenario(start=START))
    silences = [i for i in sim.incidents if i.kind == "silent"]
    times = _reading_times(sim, {i.subject for i in silences})
    assert len(silences) == 5 and [i.subject in sim.cabinet_ids for i in silences] == [False] * 4 + [True]
    assert [i.end is None for i in silences] == [False, True, False, True, False]
    for incident in silences:
        seen = times[incident.subject]
        assert incident.start in seen
        after = [t for t in seen if t > incident.start]
        assert (after and after[0] == incident.end) if incident.end is not None else not after
        quiet = (sim.end if incident.end is None else incident.end) - incident.start
        assert quiet >= (6 if incident.subject in sim.cabinet_ids else 3) * 3600
    # the other incidents are planned as without silences: the same lamps, the same times
    without = simulate_lighting(LightingScenario(start=START, silent=0))
    assert [i for i in sim.incidents if i.kind != "silent"] == without.incidents
