"""Decode survives the hostile corpus: no exception, every bad item a dead letter, every valid reading kept.

The corpus (streams.simulate.hostile) states, per message, the reasons of the dead
letters it must give and the ids of the readings it must keep. Checked per message
(dead letters are traced to their message by offset), mixed with a simulated feed of
the same domain, and against inputs hypothesis makes up.
"""

import random
from collections import Counter

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from streams.domains import DOMAINS
from streams.ingest import REASONS, RawMessage, decode
from streams.simulate.hostile import AT, KINDS, default_valid_reading, hostile_messages

START = 1_790_000_000.0 - 1_790_000_000.0 % 3600


def raw(items, topic="readings", first_offset=0):
    return [RawMessage(m.value, topic, 0, first_offset + i, m.key) for i, m in enumerate(items)]


def check_each_message(items, batch, first_offset=0):
    """Per message: its dead letters have exactly the expected reasons. Overall: the kept ids."""
    by_offset = {}
    for dead in batch.dead_letters:
        by_offset.setdefault(dead.source.offset, []).append(dead.reason)
    wrong = []
    for i, m in enumerate(items):
        got = sorted(by_offset.pop(first_offset + i, []))
        if got != sorted(m.reasons):
            wrong.append((m.kind, sorted(m.reasons), got))
    assert wrong == [] and by_offset == {}
    expected_ids = Counter(i for m in items for i in m.valid_ids)
    kept_from_corpus = Counter(i for i in batch.subject_ids if "HOSTILE" in i or i.startswith("hostile-"))
    assert kept_from_corpus == expected_ids


@pytest.mark.parametrize("domain_name", sorted(DOMAINS))
def test_every_kind_decodes_to_exactly_what_it_promises(domain_name):
    domain = DOMAINS[domain_name]
    items = hostile_messages(domain, 2 * len(KINDS), seed=17)   # every kind twice, the default 1 MB size limit
    batch = decode(raw(items), domain, now=AT)
    check_each_message(items, batch)
    assert len(batch.dead_letters) == sum(m.expected_dead_letters for m in items)
    assert len(batch) == sum(m.expected_valid_readings for m in items)
    for dead in batch.dead_letters:
        assert dead.reason in REASONS and isinstance(dead.value, bytes) and dead.detail
        assert dict(dead.headers())["reason"] == dead.reason.encode()   # hostile bytes still make headers
    assert not any(i.startswith("hostile-bad-") for i in batch.subject_ids)


@pytest.mark.parametrize("domain_name", sorted(DOMAINS))
def test_hostile_messages_mixed_into_a_simulated_feed_cost_no_valid_reading(domain_name):
    domain = DOMAINS[domain_name]
    simulation = domain.simulate(days=3.0, seed=42, start=START)
    feed = [RawMessage(value, "readings", 1, offset, key)
            for offset, (key, value) in enumerate(kv for _when, step in simulation.steps() for kv in step)]
    items = hostile_messages(domain, 3 * len(KINDS), seed=4, size_limit=200_000, at=simulation.end)
    hostile = raw(items, first_offset=0)   # partition 0; the feed is on partition 1
    mixed = feed + hostile
    random.Random(8).shuffle(mixed)
    dead, kept = [], []
    rng = random.Random(9)
    i = 0
    while i < len(mixed):   # batches of varying size, as take() delivers them
        size = rng.randint(1, 400)
        batch = decode(mixed[i:i + size], domain, now=simulation.end + 3600)
        dead += batch.dead_letters
        kept += batch.subject_ids
        i += size
    expected_hostile = Counter(r for m in items for r in m.reasons)
    assert Counter(d.reason for d in dead if d.source.partition == 0) == expected_hostile
    assert sum(1 for d in dead if d.source.partition == 1) == len(simulation.malformed)
    assert len(kept) == simulation.valid_readings + sum(m.expected_valid_readings for m in items)


def test_a_reading_nested_past_what_orjson_writes_back_is_a_dead_letter_not_a_recursion_error():
    # orjson parses 1,024 levels but writes back only 254; the refused reading used to be repr()-ed
    good = default_valid_reading("water")(1, AT - 60)
    bad = {**good, "id": "bad"}
    del bad["waterConsumption"]
    nested = orjson.dumps({**bad, "x": "__slot__"}).replace(b'"__slot__"', b"[" * 1000 + b"]" * 1000)
    value = orjson.dumps({"type": "ReadingBatch", "gatewayId": "g", "readings": [good, "__slot__"]}).replace(
        b'"__slot__"', nested)
    batch = decode([RawMessage(value, "readings", 0, 5)], DOMAINS["water"], now=AT)
    assert batch.subject_ids == [good["id"]]
    [dead] = batch.dead_letters
    assert (dead.reason, dead.reading_index, dead.value) == ("schema", 1, value)   # the message as received


def test_nan_in_an_envelope_costs_only_its_reading():
    reading = default_valid_reading("waste")
    readings = [reading(n, AT - 60) for n in range(3)]
    value = orjson.dumps({"type": "ReadingBatch", "gatewayId": "g", "readings": readings}).replace(
        b'"fillingLevel":0.4', b'"fillingLevel":NaN', 1)
    batch = decode([RawMessage(value, "readings", 0, 0)], DOMAINS["waste"], now=AT)
    assert batch.subject_ids == [r["id"] for r in readings[1:]]
    assert [(d.reason, d.reading_index) for d in batch.dead_letters] == [("non_finite", 0)]


@pytest.mark.parametrize("value, reason", [
    (b'{"x":NaN,"id":"\\ud800"}', "non_finite"),   # Python's parser takes the lone surrogate; orjson does not
    (b'{"x":NaN,"deep":' + b"[" * 5000 + b"]" * 5000 + b"}", "non_finite"),   # deeper than either parser goes
    (b"NaN", "non_finite"),
    (b'{"type":"ReadingBatch","gatewayId":-Infinity,"readings":[]}', "non_finite"),
    (b"[NaN]", "schema"),   # readable once NaN is set aside, but an array, not a reading
])
def test_non_finite_documents_that_cannot_be_split_are_one_dead_letter(value, reason):
    batch = decode([RawMessage(value, "readings", 0, 0)], DOMAINS["water"], now=AT)
    assert len(batch) == 0
    assert [(d.reason, d.reading_index, d.value) for d in batch.dead_letters] == [(reason, -1, value)]


# --- made-up input ----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25)


def _mutated(domain_name):
    """A valid reading with some fields replaced by arbitrary JSON values (or removed)."""
    reading = default_valid_reading(domain_name)(1, AT - 60)
    fields = st.sampled_from(sorted(reading) + ["gatewayId", "district", "extra"])
    return st.dictionaries(fields, json_values | st.just(None), max_size=3).map(lambda c: {**reading, **c})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(domain_name=st.sampled_from(sorted(DOMAINS)), data=st.data())
def test_any_single_document_gives_exactly_one_outcome(domain_name, data):
    document = data.draw(st.one_of(json_values, _mutated(domain_name)))
    if isinstance(document, dict) and document.get("type") == "ReadingBatch":
        document["type"] = "not an envelope"   # envelopes are the next test's
    batch = decode([RawMessage(orjson.dumps(document), "readings", 0, 0)], DOMAINS[domain_name], now=AT)
    assert len(batch) + len(batch.dead_letters) == 1
    assert all(d.reason in REASONS for d in batch.dead_letters)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(domain_name=st.sampled_from(sorted(DOMAINS)), data=st.data())
def test_an_envelope_gives_one_outcome_per_reading(domain_name, data):
    readings = data.draw(st.lists(st.one_of(_mutated(domain_name), json_values), min_size=1, max_size=8))
    value = orjson.dumps({"type": "ReadingBatch", "gatewayId": "g", "readings": readings})
    batch = decode([RawMessage(value, "readings", 0, 0)], DOMAINS[domain_name], now=AT)
    assert len(batch) + len(batch.dead_letters) == len(readings)
    assert all(d.reading_index >= 0 and d.reason in REASONS for d in batch.dead_letters)


@settings(max_examples=300, deadline=None)
@given(domain_name=st.sampled_from(sorted(DOMAINS)), value=st.binary(max_size=300), cut=st.integers(0, 400))
def test_any_bytes_never_raise(domain_name, value, cut):
    good = orjson.dumps(default_valid_reading(domain_name)(1, AT - 60))
    messages = [RawMessage(value, "readings", 0, 0), RawMessage(good[:cut] + value, "readings", 0, 1)]
    batch = decode(messages, DOMAINS[domain_name], now=AT)
    assert len(batch) + len(batch.dead_letters) >= 1
    assert all(d.reason in REASONS for d in batch.dead_letters)
