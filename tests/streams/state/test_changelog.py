"""The state changelog: only what changed, exact round trips, and crash recovery without a broker.

A "crash" here is what a worker crash leaves behind: the changelog records that reached
the broker, and readings that are delivered again from the last committed offset.
"""

import random
import zlib

import numpy as np
import pytest

from streams.domains import DOMAINS
from streams.ingest import RawMessage, decode
from streams.pipeline import DomainPipeline
from streams.pseudonym import Pseudonymizer
from streams.state import PartitionState, StateCorrupt, StateJournal, rebuild
from tests.conftest import TEST_KEY

START = 1_790_000_000.0 - 1_790_000_000.0 % 3600
PARTITIONS = 4


def city_messages(domain, days=3.0, seed=5, **scenario):
    simulation = domain.simulate(days=days, seed=seed, start=START, **scenario)
    offsets = [0] * PARTITIONS
    messages = []
    for _when, step in simulation.steps():
        for key, value in step:
            p = zlib.crc32(key) % PARTITIONS
            messages.append(RawMessage(value, domain.topic("readings"), p, offsets[p], key))
            offsets[p] += 1
    return simulation, messages


def new_pipeline(settings, domain, simulation):
    return DomainPipeline(domain, settings, Pseudonymizer(TEST_KEY.encode()), clock=lambda: simulation.end + 3600)


def batches(messages, size):
    return [messages[i:i + size] for i in range(0, len(messages), size)]


def alert_keys(alerts):
    return {(a.event["id"], a.event["time"]) for a in alerts}


def test_rebuild_gives_back_the_exact_state_with_its_slots():
    state = PartitionState(3)
    state.subjects.ensure_all((("a", np.float64, np.nan), ("b", np.int32, -1), ("c", np.int8, 0)))
    state.group("gateway").ensure_all((("seen", np.float64, np.nan),))
    slots = state.subjects.slots_for([f"wm-{i}" for i in range(100)])
    state.subject("a")[::3] = np.arange(34) * 1.5
    state.subject("b")[:] = slots[::-1]
    state.subject("c")[5] = 7
    state.group_slots_for("gateway", ["gw-2", "gw-1", None])
    state.group_column("gateway", "seen")[1] = 1e9 + 0.125
    state.watermark, state.next_sweep, state.offset = 1e9, 1e9 + 300, 41
    records = StateJournal().changes(state)
    restored, fieldsets = rebuild(3, records)
    assert restored.subjects.keys == state.subjects.keys
    assert restored.group("gateway").keys == ["gw-2", "gw-1"]
    for name in ("a", "b", "c"):
        np.testing.assert_array_equal(restored.subject(name), state.subject(name))
        assert restored.subject(name).dtype == state.subject(name).dtype
    np.testing.assert_array_equal(restored.group_column("gateway", "seen"), state.group_column("gateway", "seen"))
    assert (restored.watermark, restored.next_sweep, restored.offset) == (1e9, 1e9 + 300, 41)
    assert len(fieldsets) == 2


def test_only_changed_rows_are_written_then_the_clock_last():
    state = PartitionState(0)
    state.subjects.ensure_all((("x", np.float64, np.nan),))
    state.subjects.slots_for([f"k{i}" for i in range(1000)])
    journal = StateJournal()
    first = journal.changes(state)
    assert len([k for k, _ in first if k.startswith(b"s:")]) == 1000
    assert journal.changes(state) == [(b"c", journal.changes(state)[-1][1])]   # nothing changed: clock only
    state.subject("x")[[3, 500]] = [1.0, np.nan]   # one real change; NaN -> NaN is none
    state.subjects.slots_for(["new"])
    records = journal.changes(state)
    assert [k for k, _ in records] == [b"s:k3", b"s:new", b"c"]
    assert records[-1][0] == b"c"


def test_records_stay_small_and_hold_no_raw_meter_id(settings):
    domain = DOMAINS["water"]
    simulation, messages = city_messages(domain, days=2.0)
    pipeline = new_pipeline(settings, domain, simulation)
    pipeline.process(messages)
    records = pipeline.changelog()
    raw_ids = set(decode(messages[:200], domain, now=simulation.end + 3600).subject_ids)
    assert raw_ids
    rows = [(k, v) for _p, k, v in records if k.startswith(b"s:")]
    assert len(rows) == sum(len(s.subjects) for s in pipeline.states.values())
    assert max(len(k) + len(v) for _p, k, v in records) < 2048
    blob = b"".join(k + v for _p, k, v in records)
    assert not any(raw.encode() in blob for raw in raw_ids)


def test_unknown_field_set_and_slot_holes_are_refused():
    state = PartitionState(0)
    state.subjects.ensure_all((("x", np.float64, np.nan),))
    state.subjects.slots_for(["a", "b"])
    records = StateJournal().changes(state)
    without_fieldset = [(k, v) for k, v in records if not k.startswith(b"f:")]
    with pytest.raises(StateCorrupt, match="unknown field set"):
        rebuild(0, without_fieldset)
    with pytest.raises(StateCorrupt, match="hole"):
        rebuild(0, [(k, v) for k, v in records if k != b"s:a"])
    assert rebuild(0, [(k, v) for k, v in records if k != b"c"]) == (None, set())


@pytest.mark.parametrize("domain_name", sorted(DOMAINS))
def test_crashes_at_random_points_give_the_uninterrupted_alerts(settings, domain_name):
    """Crash after random batches — sometimes with only part of a batch's changelog written —
    restore from the changelog, redeliver from an earlier committed offset: the same alert
    ids at the same times as the clean run, and each (id) at most re-emitted, never new."""
    domain = DOMAINS[domain_name]
    simulation, messages = city_messages(domain)
    clean = new_pipeline(settings, domain, simulation)
    reference = []
    for batch in batches(messages, 300):
        reference += clean.process(batch).alerts
    reference_keys = alert_keys(reference)

    rng = random.Random(domain_name)
    log: dict[int, list] = {p: [] for p in range(PARTITIONS)}
    committed = {p: -1 for p in range(PARTITIONS)}
    pipeline = new_pipeline(settings, domain, simulation)
    got = []
    position = 0
    crashes = 0
    while position < len(messages):
        batch = messages[position:position + rng.randint(len(messages) // 80 + 1, len(messages) // 20 + 1)]
        result = pipeline.process(batch)
        got += result.alerts                     # alerts are confirmed before state is written
        records = pipeline.changelog()
        crash = rng.random() < 0.2
        if crash and records and rng.random() < 0.5:
            records = records[:rng.randrange(len(records))]   # died while writing state
        for partition, key, value in records:
            log[partition].append((key, value))
        if crash:
            crashes += 1
            pipeline = new_pipeline(settings, domain, simulation)
            resume = {}
            for p in range(PARTITIONS):
                covered = pipeline.restore(p, log[p])
                # Faust resumes from the last commit, at or before what the state covers
                resume[p] = rng.randint(committed[p] + 1, covered + 1)
            position = min((next((i for i, m in enumerate(messages) if m.partition == p and m.offset >= resume[p]),
                                 len(messages)) for p in range(PARTITIONS)))
            continue
        position += len(batch)
        for p in range(PARTITIONS):
            done = [m.offset for m in batch if m.partition == p]
            if done:
                committed[p] = max(done)
    assert crashes >= 3
    assert alert_keys(got) == reference_keys
    assert reference_keys
    # and the state itself is the clean run's, bit for bit (group aggregates included)
    assert set(pipeline.states) == set(clean.states)
    for p, state in clean.states.items():
        mine = pipeline.states[p]
        assert (mine.watermark, mine.next_sweep, mine.offset) == (state.watermark, state.next_sweep, state.offset)
        for name, table in [("s", state.subjects)] + [(g, t) for g, t in state.groups.items()]:
            other = mine.subjects if name == "s" else mine.groups[name]
            assert other.keys == table.keys, name
            for field in table.fields:
                np.testing.assert_array_equal(other.column(field), table.column(field), err_msg=f"{name}.{field}")


def test_a_restored_pipeline_skips_what_its_state_covers(settings):
    domain = DOMAINS["water"]
    simulation, messages = city_messages(domain, days=2.0)
    pipeline = new_pipeline(settings, domain, simulation)
    first = pipeline.process(messages[:400])
    records = pipeline.changelog()
    restored = new_pipeline(settings, domain, simulation)
    for p in range(PARTITIONS):
        restored.restore(p, [(k, v) for q, k, v in records if q == p])
    again = restored.process(messages[:400])
    assert again.skipped == 400 and again.alerts == [] and again.readings == 0
    assert first.messages == 400


def test_a_field_whose_dtype_changed_in_a_new_release_is_converted_and_written_again():
    state = PartitionState(0)
    state.subjects.ensure_all((("count", np.float64, np.nan), ("x", np.float64, np.nan)))
    state.subjects.slots_for(["a", "b", "c"])
    state.subject("count")[:] = [3.0, np.nan, 7.0]
    state.subject("x")[:] = [0.5, 1.5, 2.5]
    records = StateJournal().changes(state)
    restored, fieldsets = rebuild(0, records)
    restored.subjects.ensure("count", np.int32, -1)        # the new release declares an int32 counter
    assert restored.subject("count").tolist() == [3, -1, 7] and restored.subject("count").dtype == np.int32
    journal = StateJournal()
    journal.mark_clean(restored, fieldsets)
    rewritten = journal.changes(restored)
    assert [k for k, _ in rewritten if k.startswith(b"s:")] == [b"s:a", b"s:b", b"s:c"]   # whole, one field set
    again, _ = rebuild(0, records + rewritten)
    np.testing.assert_array_equal(again.subject("count"), [3, -1, 7])
    with pytest.raises(ValueError, match="different dtypes"):
        PartitionState(0).subjects.ensure("y", np.float64, np.nan) or state.subjects.ensure("x", np.int32, -1)


def test_rows_after_the_last_clock_are_an_unfinished_write_and_ignored():
    state = PartitionState(0)
    state.subjects.ensure_all((("x", np.float64, np.nan),))
    state.subjects.slots_for(["a"])
    state.subject("x")[0] = 1.0
    journal = StateJournal()
    first = journal.changes(state)
    state.subject("x")[0] = 2.0
    state.subjects.slots_for(["b"])
    unfinished = [r for r in journal.changes(state) if r[0] != b"c"]
    restored, _ = rebuild(0, first + unfinished)
    assert restored.subjects.keys == ["a"] and restored.subject("x").tolist() == [1.0]
