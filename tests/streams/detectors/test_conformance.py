"""Shared checks run on every registered detector (the river-style conformance suite)."""

import dataclasses

import pytest

from streams.detectors import REGISTRY, Detector
from streams.detectors.base import Declaration
from streams.domains import DOMAINS
from streams.state import PartitionState
from tests.streams.detectors.corpus import PSEUDONYMS, SETTINGS

DETECTORS = sorted(REGISTRY)
DOMAIN_OF = {cls.declaration.name: domain for domain in DOMAINS.values() for cls in domain.detectors}


def test_every_registered_detector_runs_in_a_domain_and_vice_versa():
    assert set(DOMAIN_OF) == set(REGISTRY)
    for domain in DOMAINS.values():
        assert set(domain.incident_detectors.values()) <= {c.declaration.name for c in domain.detectors}


@pytest.mark.parametrize("name", DETECTORS)
def test_declaration_is_complete(name):
    cls = REGISTRY[name]
    assert issubclass(cls, Detector)
    d = cls.declaration
    assert d.name == name and d.domain == DOMAIN_OF[name].name
    for field in dataclasses.fields(Declaration):
        value = getattr(d, field.name)
        if not isinstance(value, bool):
            assert value, field.name
    assert d.alert_topic in ("alerts.v1", "alerts.welfare.v1")
    # the welfare topic is for the welfare analyses of enrolled households, and they publish nowhere else
    assert (d.alert_topic == "alerts.welfare.v1") == d.requires_enrolment
    assert {n for n, c in REGISTRY.items() if c.declaration.alert_topic == "alerts.welfare.v1"} == \
        {"water.no_use_24h", "water.routine_change"}


def _all_declarations():
    from streams.detectors import WATCHERS
    from streams.domains import DOMAINS

    return [cls.declaration for cls in REGISTRY.values()] + \
        [cls.declaration_for(domain) for cls in WATCHERS.values() for domain in DOMAINS]


@pytest.mark.parametrize("name", DETECTORS + ["feed.stalled"])
def test_retention_text_states_retention_s(name):
    """The retention the register states in words is the one that is enforced (retention_s)."""
    d = next(d for d in _all_declarations() if d.name == name)
    days = d.retention_s / 86400
    assert days == int(days) and f"{int(days)} days" in d.retention, (d.retention, d.retention_s)


def test_one_alert_topic_one_retention():
    """An alert topic keeps its alerts as long as the shortest retention of the detectors on it: so
    they all declare the same, or some would claim a retention their alerts do not get."""
    by_topic = {}
    for d in _all_declarations():
        by_topic.setdefault(d.alert_topic, set()).add(d.retention_s)
    assert all(len(seconds) == 1 for seconds in by_topic.values()), by_topic


@pytest.mark.parametrize("field", ["owner", "logic"])
def test_declaration_refuses_empty_owner_and_logic(field):
    fields = dict(name="x.y", domain="water", purpose="p", legal_basis="l", reads=("a",), recipients="r",
                  alert_topic="alerts.v1", severity="info", subject_kind="gateway", retention="r",
                  human_oversight="h", owner="o", logic="g")
    Declaration(**fields)
    with pytest.raises(ValueError, match=f"{field!r} must not be empty"):
        Declaration(**{**fields, field: ""})


@pytest.mark.parametrize("name", DETECTORS)
def test_thresholds_are_documented(name):
    fields = dataclasses.fields(REGISTRY[name].Thresholds)
    assert fields, "a detector without thresholds has nothing to configure: say why it needs none"
    for f in fields:
        assert f.metadata.get("unit") and len(f.metadata.get("why", "")) > 15, f.name
        assert isinstance(f.default, (int, float))


def test_declaration_refuses_empty_fields():
    with pytest.raises(ValueError, match="must not be empty"):
        Declaration(name="x.y", domain="water", purpose="", legal_basis="l", reads=("a",), recipients="r",
                    alert_topic="alerts.v1", severity="info", subject_kind="gateway", retention="r",
                    human_oversight="h")


@pytest.mark.parametrize("name", DETECTORS)
def test_empty_state_and_empty_batch_find_nothing(name):
    from tests.streams.detectors.corpus import empty_readings, prepared_state

    from streams.detectors.access import DeclaredState, guarded_readings

    detector = REGISTRY[name]()
    state = DeclaredState(prepared_state(DOMAIN_OF[name]), detector)   # only what it declared, as in the worker
    assert detector.update(state, guarded_readings(empty_readings(DOMAIN_OF[name]), detector)) == []
    assert detector.sweep(state, 1_800_000_000.0) == []


@pytest.mark.parametrize("name", DETECTORS)
def test_shared_corpus_matches_its_naive_reference_and_survives_a_state_round_trip(name):
    """Each detector's episodes on its domain's shared corpus equal its naive reference's;
    snapshotting the state halfway changes nothing."""
    from tests.streams.detectors.corpus import run_corpus

    domain = DOMAIN_OF[name]
    straight = run_corpus(domain, name, snapshot_halfway=False)
    resumed = run_corpus(domain, name, snapshot_halfway=True)
    assert straight.kernel == straight.naive, name
    assert resumed.kernel == straight.kernel
    assert straight.kernel, f"{name} found nothing on its corpus: the corpus must exercise it"


@pytest.mark.parametrize("name", DETECTORS)
def test_single_reading_batches_give_the_same_episodes(name):
    """Fed one message at a time (a single reading or one envelope per batch), the detector finds
    exactly what it finds in one batch."""
    from tests.streams.detectors.corpus import run_corpus

    domain = DOMAIN_OF[name]
    assert run_corpus(domain, name, False, one_message_per_batch=True).kernel == \
        run_corpus(domain, name, False).kernel


@pytest.mark.parametrize("name", DETECTORS)
def test_a_lone_reading_on_fresh_state(name):
    from tests.streams.detectors.corpus import raw_messages, simulation
    from streams.ingest import decode
    from streams.pipeline import DomainPipeline

    domain = DOMAIN_OF[name]
    sim = simulation(domain, name)
    first_valid = next(m for m in raw_messages(sim) if len(decode([m], domain, now=sim.end + 3600)))
    pipeline = DomainPipeline(domain, SETTINGS, PSEUDONYMS, clock=lambda: sim.end + 3600, activated={name})
    result = pipeline.process([first_valid])
    assert result.readings >= 1 and result.dead_letters == []
    assert [a for a in result.alerts if a.event["data"]["detector"] == name] == []   # nothing from one reading


@pytest.mark.parametrize("name", DETECTORS)
def test_nan_values_never_raise(name):
    from tests.streams.detectors.corpus import nan_readings, prepared_state

    detector = REGISTRY[name]()
    domain = DOMAIN_OF[name]
    state = prepared_state(domain)
    readings = nan_readings(domain, state)
    if domain.tracker is not None:
        facts = domain.tracker.update(state, readings)
        if isinstance(facts, dict):        # the tracker's per-reading facts, handed in as the pipeline does
            readings = readings.with_facts(facts)
    from streams.detectors.access import DeclaredState, guarded_readings

    view = DeclaredState(state, detector)
    detector.update(view, guarded_readings(readings, detector))
    detector.sweep(view, float(readings.ts[-1]) + 3600)


@pytest.mark.parametrize("data", [b"not a snapshot", b"PK\x03\x04 a cut zip", b""])
def test_snapshot_rejects_corrupt_data(data):
    from streams.state.partition import SnapshotCorrupt

    with pytest.raises(SnapshotCorrupt, match="not a state snapshot"):
        PartitionState.restore(data)
