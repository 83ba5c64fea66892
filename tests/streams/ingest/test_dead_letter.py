"""Dead-letter records: original key and bytes, full provenance, bounded size for any input."""

import hashlib

import pytest

from streams.ingest import REASONS, RawMessage
from streams.ingest.dead_letter import (MAX_DEAD_LETTER_KEY_BYTES, MAX_DEAD_LETTER_RECORD_BYTES, MAX_DETAIL_BYTES,
                                        DeadLetter, stage_of, STAGES)

#: The producers' default request limit (kafka-python, aiokafka, Faust) that a record must stay below.
PRODUCER_LIMIT = 1_000_000
SOURCE = RawMessage(b"", "glasscity.water.readings.v1", 3, 12345, b"gw-17")


def letter(value: bytes, reason="invalid_json", source=SOURCE, **extra) -> DeadLetter:
    return DeadLetter(value, reason, extra.pop("detail", "cannot decode JSON"), source._replace(value=value), **extra)


def size(key, value, headers) -> int:
    return len(key or b"") + len(value) + sum(len(k) + len(v) for k, v in headers)


def test_a_small_value_is_forwarded_whole_with_its_key_and_provenance():
    value = b'{"id": "m1", "type": "WaterConsumptionObserved"'
    key, forwarded, headers = letter(value, reading_index=4).kafka_record()
    assert key == b"gw-17" and forwarded == value
    assert dict(headers) == {"source_topic": b"glasscity.water.readings.v1", "source_partition": b"3",
                             "source_offset": b"12345", "stage": b"decode", "reason": b"invalid_json",
                             "detail": b"cannot decode JSON", "reading_index": b"4"}
    assert [name for name, _ in headers].count("truncated") == 0


def test_a_5_mb_value_is_cut_to_the_bound_with_its_size_and_hash():
    value = bytes(range(256)) * (5 * 1024 * 1024 // 256)
    key, forwarded, headers = letter(value).kafka_record()
    fields = dict(headers)
    assert size(key, forwarded, headers) <= MAX_DEAD_LETTER_RECORD_BYTES < PRODUCER_LIMIT
    assert fields["truncated"] == b"true"
    assert int(fields["original_size"]) == len(value) == 5 * 1024 * 1024
    assert fields["sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert key == b"gw-17"
    assert value.startswith(forwarded) and len(forwarded) > MAX_DEAD_LETTER_RECORD_BYTES - 2048   # most of the room
    assert fields["reason"] == b"invalid_json" and fields["source_offset"] == b"12345"


def test_the_bound_holds_for_the_whole_record_not_the_value_alone():
    # a value that fits alone but not with its headers is cut too
    value = b"x" * (MAX_DEAD_LETTER_RECORD_BYTES - 10)
    key, forwarded, headers = letter(value).kafka_record()
    assert size(key, forwarded, headers) <= MAX_DEAD_LETTER_RECORD_BYTES
    assert dict(headers)["truncated"] == b"true" and int(dict(headers)["original_size"]) == len(value)


def test_a_hostile_key_is_cut_and_marked():
    huge_key = b"k" * (2 * 1024 * 1024)
    source = SOURCE._replace(key=huge_key)
    key, forwarded, headers = letter(b"{}", source=source).kafka_record()
    fields = dict(headers)
    assert len(key) == MAX_DEAD_LETTER_KEY_BYTES and huge_key.startswith(key)
    assert fields["truncated"] == b"true" and int(fields["original_key_size"]) == len(huge_key)
    assert fields["key_sha256"] == hashlib.sha256(huge_key).hexdigest().encode()
    assert forwarded == b"{}" and size(key, forwarded, headers) <= MAX_DEAD_LETTER_RECORD_BYTES


def test_a_missing_key_stays_missing():
    key, forwarded, _ = letter(b"nope", source=SOURCE._replace(key=None)).kafka_record()
    assert key is None and forwarded == b"nope"


def test_detail_is_bounded_in_bytes_and_stays_valid_utf8():
    detail = "é" * 2000   # 2 bytes each: a character cut in half must not reach the header
    _, _, headers = letter(b"{}", detail=detail).kafka_record()
    header = dict(headers)["detail"]
    assert len(header) <= MAX_DETAIL_BYTES and header.decode("utf-8") == "é" * (MAX_DETAIL_BYTES // 2)


def test_headers_are_the_headers_of_the_record():
    value = b"y" * (MAX_DEAD_LETTER_RECORD_BYTES * 2)
    dead = letter(value)
    assert dead.headers() == dead.kafka_record()[2]


@pytest.mark.parametrize("reason, stage", [("invalid_json", "decode"), ("non_finite", "validate"),
                                           ("schema", "validate"), ("timestamp_invalid", "validate"),
                                           ("timestamp_out_of_range", "validate")])
def test_stage_defaults_from_the_reason(reason, stage):
    assert stage_of(reason) == stage
    assert letter(b"{}", reason=reason).stage == stage
    assert dict(letter(b"{}", reason=reason).kafka_record()[2])["stage"] == stage.encode()


def test_every_reason_has_a_known_stage():
    assert {stage_of(reason) for reason in REASONS} == set(STAGES)
    assert stage_of("invalid_json") == "decode" and stage_of("late") == "watermark"


def test_an_explicit_stage_wins_and_an_unknown_one_is_refused():
    assert letter(b"{}", reason="schema", stage="decode").stage == "decode"
    with pytest.raises(ValueError, match="unknown dead-letter stage 'parse'"):
        letter(b"{}", stage="parse")
