"""Decoding and validation: every bad item is a dead letter with a reason; no valid reading is lost."""

import orjson
import pytest

from streams.domains import DOMAINS
from streams.ingest import REASONS, RawMessage, decode
from streams.simulate import WaterScenario, simulate_water

NOW = 1_800_000_000.0
WATER = DOMAINS["water"]


def decode_water(messages, now=None):
    return decode(messages, WATER, now=now)


def reading(meter="m1", when="2026-11-27T08:00:00Z", index=1.5, **extra):
    return {"id": meter, "type": "WaterConsumptionObserved", "dateObserved": when, "waterConsumption": index, **extra}


def msg(value, offset=0, partition=2):
    if not isinstance(value, bytes):
        value = orjson.dumps(value)
    return RawMessage(value, "glasscity.water.readings.v1", partition, offset, b"gw-1")


def test_single_reading_and_envelope_both_decode():
    envelope = {"type": "ReadingBatch", "gatewayId": "gw-9", "readings": [reading("a"), reading("b", index=2.0)]}
    batch = decode_water([msg(reading("s", gatewayId="gw-1")), msg(envelope, 1)], now=NOW)
    assert batch.subject_ids == ["s", "a", "b"]
    assert batch.groups["gateway"] == ["gw-1", "gw-9", "gw-9"]
    assert batch.columns["waterConsumption"].tolist() == [1.5, 1.5, 2.0]
    assert batch.ts.tolist() == [1795766400.0] * 3
    assert batch.dead_letters == [] and batch.messages == 2


@pytest.mark.parametrize("value, reason", [
    (b"{not json", "invalid_json"),
    (b"", "invalid_json"),
    (b"\xff\xfe", "invalid_json"),
    (b'{"id":"m","type":"WaterConsumptionObserved","dateObserved":"2026-11-27T08:00:00Z","waterConsumption":1e999}',
     "non_finite"),
    (b"[1, 2]", "schema"),
    (orjson.dumps({k: v for k, v in reading().items() if k != "dateObserved"}), "schema"),
    (orjson.dumps(reading(index=-0.001)), "value_out_of_range"),
    (orjson.dumps(reading(index="12.5")), "schema"),
    (orjson.dumps(reading(extra_field_ok=1, type="Other")), "schema"),
    (orjson.dumps(reading(when="yesterday at noon")), "timestamp_invalid"),
    (orjson.dumps(reading(when="2026-11-27T08:00:00")), "timestamp_invalid"),   # no UTC offset
    (orjson.dumps(reading(when="2026-13-27T08:00:00Z")), "timestamp_invalid"),
    (orjson.dumps(reading(when="1999-12-31T23:59:59Z")), "timestamp_out_of_range"),
    (orjson.dumps(reading(when="2030-01-01T00:00:00Z")), "timestamp_out_of_range"),
    (orjson.dumps({"type": "ReadingBatch", "gatewayId": "g", "readings": []}), "schema"),
    (orjson.dumps({"type": "ReadingBatch", "gatewayId": "g", "readings": "nope"}), "schema"),
])
def test_bad_messages_become_one_dead_letter_each(value, reason):
    batch = decode_water([msg(value, offset=41)], now=NOW)
    assert len(batch) == 0
    assert [d.reason for d in batch.dead_letters] == [reason]
    dead = batch.dead_letters[0]
    headers = dict(dead.headers())
    assert headers["reason"] == reason.encode()
    assert headers["source_topic"] == b"glasscity.water.readings.v1"
    assert headers["source_partition"] == b"2" and headers["source_offset"] == b"41"
    assert headers["detail"]
    assert dead.value == value


def test_bad_reading_in_envelope_costs_only_itself():
    envelope = {"type": "ReadingBatch", "gatewayId": "gw-3",
                "readings": [reading("a"), reading("bad", index=-5), reading("b"), "not an object",
                             reading("late", when="1990-01-01T00:00:00Z"), reading("c")]}
    batch = decode_water([msg(envelope, 7)], now=NOW)
    assert batch.subject_ids == ["a", "b", "c"]
    assert sorted((d.reading_index, d.reason) for d in batch.dead_letters) == [
        (1, "value_out_of_range"), (3, "schema"), (4, "timestamp_out_of_range")]
    bad = next(d for d in batch.dead_letters if d.reading_index == 1)
    assert orjson.loads(bad.value)["id"] == "bad"
    assert dict(bad.headers())["reading_index"] == b"1"


def test_reasons_are_a_closed_set():
    assert set(REASONS) == {"invalid_json", "non_finite", "schema", "timestamp_invalid", "timestamp_out_of_range",
                            "value_out_of_range", "late"}


def test_simulated_feed_decodes_to_exactly_its_valid_readings_and_malformed_items():
    simulation = simulate_water(WaterScenario(households=60, days=1.5, households_per_gateway=10, no_use=0,
                                              meter_silent=1, gateway_outage=1, malformed=16,
                                              start=1_790_000_000.0))
    valid = dead = 0
    for hour, (_when, messages) in enumerate(simulation.hours()):
        batch = decode_water([msg(v, i) for i, (_k, v) in enumerate(messages)], now=simulation.end + 3600)
        valid += len(batch)
        dead += len(batch.dead_letters)
        assert all(not m.startswith("urn:ngsi-ld:WaterMeter:BAD-") for m in batch.subject_ids)
    assert valid == simulation.valid_readings
    assert dead == len(simulation.malformed) == 16
