"""State restored from an earlier release's changelog, in which each detector kept its own copy of the
subject's previous reading (``*_last_ts``, ``*_prev_*``): the domain's upgrade hook takes the copies over
into the tracker's fields, drops them, and the table is written again whole; the alerts are those of an
uninterrupted run. (Water has its own test in test_water_pipeline.py.)"""

import zlib

import numpy as np
import pytest

from streams.domains import DOMAINS
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from streams.pseudonym import Pseudonymizer
from streams.state import PartitionState, StateJournal, rebuild
from tests.conftest import TEST_KEY

START = 1_790_000_000.0 - 1_790_000_000.0 % 3600
PARTITIONS = 4


def old_waste(table):
    """waste: every detector kept the bin's newest reading time and (three of them) its last fill level;
    there was no tracker ``last_fill``."""
    from streams.domains.waste import RETIRED_FIELDS

    seen, fill = table.column("last_seen").copy(), table.column("last_fill").copy()
    table.drop(["last_fill"])
    for name in RETIRED_FIELDS:
        table.ensure(name, np.float64, np.nan)
        table.column(name)[:] = seen if name.endswith("_last_ts") else fill


def old_lighting(table):
    """lighting: each lamp detector kept the lamp's newest lamp reading time; there was no tracker
    ``lamp_last_seen``."""
    from streams.domains.lighting import RETIRED_FIELDS

    seen = table.column("lamp_last_seen").copy()
    table.drop(["lamp_last_seen"])
    for name in RETIRED_FIELDS:
        table.ensure(name, np.float64, np.nan)
        table.column(name)[:] = seen


def old_traffic(table):
    """traffic: traffic.stuck kept the detector's previous reading time and occupancy (the tracker's
    ``last_seen`` and ``occupancy`` all along)."""
    table.ensure("stuck_last_ts", np.float64, np.nan)
    table.column("stuck_last_ts")[:] = table.column("last_seen")
    table.ensure("stuck_prev_occupancy", np.float64, np.nan)
    table.column("stuck_prev_occupancy")[:] = table.column("occupancy")


#: domain -> how an earlier release's subject table looked, made from the current one
OLD_RELEASES = {"waste": old_waste, "lighting": old_lighting, "traffic": old_traffic}


def retired(name):
    import importlib

    return importlib.import_module(f"streams.domains.{name}").RETIRED_FIELDS


def feed(domain, simulation):
    offsets = [0] * PARTITIONS
    messages = []
    for _when, step in simulation.steps():
        for key, value in step:
            p = zlib.crc32(key) % PARTITIONS
            messages.append(RawMessage(value, domain.topic("readings"), p, offsets[p], key))
            offsets[p] += 1
    return messages


def pipeline_of(domain, settings, simulation):
    return DomainPipeline(domain, settings, Pseudonymizer(TEST_KEY.encode()), clock=lambda: simulation.end + 3600)


def run(domain, settings, simulation, batches):
    pipeline = pipeline_of(domain, settings, simulation)
    alerts = []
    for batch in batches:
        result = pipeline.process(batch)
        pipeline.record(result)
        alerts += result.alerts
    return pipeline, alerts


def old_release_changelog(name, state):
    old = PartitionState.restore(state.snapshot())
    OLD_RELEASES[name](old.subjects)
    old.subjects.recast.clear()
    return StateJournal().changes(old)


@pytest.mark.parametrize("name", sorted(OLD_RELEASES))
def test_restore_from_an_earlier_release_changelog_drops_the_copies_and_changes_nothing(settings, name):
    domain = DOMAINS[name]
    simulation = domain.simulate(days=3.0, seed=5, start=START)
    messages = feed(domain, simulation)
    half = len(messages) // 2
    _p, reference = run(domain, settings, simulation, [messages[:half], messages[half:]])
    pipeline, alerts = run(domain, settings, simulation, [messages[:half]])
    assert alerts and len(reference) > len(alerts)      # episodes on both sides of the restart
    resumed = pipeline_of(domain, settings, simulation)
    gone = set(retired(name))
    for partition, state in pipeline.states.items():
        records = old_release_changelog(name, state)
        assert any(sorted(gone)[0].encode() in value for key, value in records if key.startswith(b"f:"))
        assert resumed.restore(partition, records) == state.offset
        restored = resumed.states[partition].subjects
        assert not gone & set(restored.fields)
        assert set(restored.fields) == set(state.subjects.fields)
        for field in state.subjects.fields:
            assert np.array_equal(restored.column(field), state.subjects.column(field), equal_nan=True), field
    alerts += resumed.process(messages[half:]).alerts
    assert [a.event for a in alerts] == [a.event for a in reference]
    rewritten = {}
    for partition, key, value in resumed.changelog():
        rewritten.setdefault(partition, []).append((key, value))
    for partition, state in pipeline.states.items():   # written again whole: the old rows and fields are gone
        again, _fieldsets = rebuild(partition, old_release_changelog(name, state) + rewritten[partition])
        assert len(again.subjects) >= len(state.subjects) and not again.subjects.mixed_fieldsets
        assert not gone & set(again.subjects.fields)
