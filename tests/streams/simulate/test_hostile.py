"""The hostile corpus generator: deterministic, every kind present, sizes bounded, expectations consistent.

That decoding meets the expectations is tested in tests/streams/ingest/test_hostile_decode.py.
"""

from collections import Counter

import orjson
import pytest

from streams.domains import DOMAINS
from streams.ingest import REASONS
from streams.simulate.hostile import AT, KINDS, default_valid_reading, hostile_messages

SIZE_LIMIT = 300_000   # smaller than the default 1 MB: the same shapes, less to build


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_same_seed_same_bytes_other_seed_other_bytes(domain):
    first = hostile_messages(domain, 120, seed=11, size_limit=SIZE_LIMIT)
    again = hostile_messages(domain, 120, seed=11, size_limit=SIZE_LIMIT)
    other = hostile_messages(domain, 120, seed=12, size_limit=SIZE_LIMIT)
    assert first == again
    assert [m.value for m in first] != [m.value for m in other]


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_every_kind_is_present_once_count_reaches_the_number_of_kinds(domain):
    items = hostile_messages(domain, len(KINDS), seed=3, size_limit=SIZE_LIMIT)
    assert len(items) == len(KINDS) and Counter(m.kind for m in items) == Counter(KINDS)
    assert len(hostile_messages(domain, 7, seed=3, size_limit=SIZE_LIMIT)) == 7
    assert hostile_messages(domain, 0, seed=3) == []


def test_at_least_twenty_kinds_covering_the_attack_surface():
    assert len(KINDS) >= 20 and len(set(KINDS)) == len(KINDS)
    for needed in ("random_bytes", "truncated_json", "nan_literal", "infinity_literal", "deep_nesting",
                   "duplicate_key_last_good", "duplicate_key_last_bad", "reading_far_future", "reading_epoch_zero",
                   "empty_key_and_value", "non_utf8", "json_array", "json_scalar", "envelope_mixed",
                   "envelope_empty", "envelope_missing_gateway", "reading_no_utc_offset", "reading_above_maximum",
                   "reading_at_exclusive_bound", "huge_id", "huge_unknown_property", "reading_unknown_type"):
        assert needed in KINDS, needed


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_sizes_stay_under_the_limit_and_the_huge_kinds_come_close(domain):
    items = hostile_messages(domain, len(KINDS), seed=5, size_limit=SIZE_LIMIT)
    assert max(len(m.value) for m in items) <= SIZE_LIMIT
    huge = {m.kind: len(m.value) for m in items if m.kind.startswith("huge_") and m.kind != "huge_key"}
    assert huge and all(size > 0.9 * SIZE_LIMIT for size in huge.values()), huge
    key = next(m.key for m in items if m.kind == "huge_key")
    assert len(key) >= SIZE_LIMIT // 2


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_expectations_are_well_formed(domain):
    items = hostile_messages(domain, 3 * len(KINDS), seed=9, size_limit=SIZE_LIMIT)
    for m in items:
        assert set(m.reasons) <= set(REASONS), m.kind
        assert m.expected_dead_letters == len(m.reasons) and m.expected_valid_readings == len(m.valid_ids)
        assert m.expected_dead_letters + m.expected_valid_readings >= 1, m.kind   # nothing vanishes silently
        assert not any(i.startswith("hostile-bad-") for i in m.valid_ids), m.kind
        assert isinstance(m.value, bytes) and (m.key is None or isinstance(m.key, bytes))
    # the corpus holds both outcomes, and envelopes that mix them
    assert any(m.valid_ids and m.reasons for m in items)
    assert {m.kind for m in items if not m.reasons} >= {"empty_key", "no_key", "duplicate_key_last_good",
                                                        "huge_unknown_property", "deep_property_in_valid_reading"}


def test_the_valid_readings_come_from_the_factory():
    made = []

    def factory(n, when):
        made.append((n, when))
        return {"id": f"mine-{n}", "type": "WaterConsumptionObserved",
                "dateObserved": default_valid_reading("water")(n, when)["dateObserved"], "waterConsumption": 1.0}

    items = hostile_messages("water", len(KINDS), seed=2, valid_reading_factory=factory, size_limit=SIZE_LIMIT)
    kept = [i for m in items for i in m.valid_ids]
    assert kept and all(i.startswith("mine-") for i in kept)
    assert all(AT - 3600 < when <= AT for _n, when in made)


def test_valid_readings_are_dated_just_before_the_reference_time():
    at = 1_700_000_000.0
    items = hostile_messages("traffic", len(KINDS), seed=4, size_limit=SIZE_LIMIT, at=at)
    single = next(m for m in items if m.kind == "no_key")
    reading = orjson.loads(single.value)
    assert reading["id"] in single.valid_ids
    assert reading["dateObserved"].startswith("2023-11-14T")   # at - < 1 h


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="count"):
        hostile_messages("water", -1, seed=0)
    with pytest.raises(ValueError, match="size_limit"):
        hostile_messages("water", 5, seed=0, size_limit=100)
    with pytest.raises(KeyError, match="no default valid reading"):
        default_valid_reading("air")
