"""Purpose binding (streams.detectors.access): a detector gets only what it declared, the run order
follows from the declarations, and any single detector can be made dormant without breaking another."""

import dataclasses

import numpy as np
import pytest

from streams.detectors import REGISTRY
from streams.detectors.access import (
    DeclaredState, UndeclaredAccess, declared_fields, field_specs, owned_fields, prepare_reads, run_order,
)
from streams.domains import DOMAINS
from streams.pipeline import DomainPipeline
from streams.state import PartitionState
from streams.detectors.water.meter_silent import MeterSilent
from streams.detectors.water.continuous_flow import ContinuousFlow
from streams.detectors.feed.gateway_outage import GatewayOutage
from tests.streams.detectors.corpus import PSEUDONYMS, SETTINGS, raw_messages, simulation

WATER = DOMAINS["water"]
DOMAIN_OF = {name: DOMAINS[cls.declaration.domain] for name, cls in REGISTRY.items()}


def with_detectors(domain, detectors):
    return dataclasses.replace(domain, detectors=tuple(detectors))


def test_every_detector_declares_only_fields_that_exist_and_owns_each_field_once():
    for name, domain in DOMAINS.items():
        specs = field_specs(domain)
        owners = {}
        for cls in domain.detectors:
            for field in cls.state_reads:
                assert field in specs, f"{cls.declaration.name} reads {field}, declared by nobody"
                assert field not in owned_fields(cls), f"{cls.declaration.name} both owns and reads {field}"
            for field in owned_fields(cls):
                assert field not in owners, f"{field} owned by {owners[field]} and {cls.declaration.name}"
                owners[field] = cls.declaration.name
            assert set(cls.columns) <= {c.column for c in domain.columns}, cls.declaration.name


class ReadsAnUndeclaredColumn(ContinuousFlow):
    columns = ()          # reads waterConsumption without saying so


class ReadsAnUndeclaredField(MeterSilent):
    state_reads = tuple(f for f in MeterSilent.state_reads if f != "gateway.outage_since")


def test_an_undeclared_column_fails_at_start_up():
    with pytest.raises(UndeclaredAccess, match="water.continuous_flow reads the column 'waterConsumption'"):
        DomainPipeline(with_detectors(WATER, [ReadsAnUndeclaredColumn]), SETTINGS, PSEUDONYMS)


def test_an_undeclared_state_field_fails_at_start_up():
    with pytest.raises(UndeclaredAccess, match="water.meter_silent uses gateway field 'outage_since'"):
        DomainPipeline(with_detectors(WATER, [GatewayOutage, ReadsAnUndeclaredField]), SETTINGS, PSEUDONYMS)


def test_a_read_of_a_field_nobody_declares_fails_at_start_up():
    class ReadsNothingThatExists(ContinuousFlow):
        state_reads = ("no_such_field",)

    with pytest.raises(UndeclaredAccess, match="reads state field 'no_such_field', which no tracker"):
        DomainPipeline(with_detectors(WATER, [ReadsNothingThatExists]), SETTINGS, PSEUDONYMS)


def test_fields_read_from_others_are_read_only_and_own_fields_writable():
    state = PartitionState()
    WATER.tracker.prepare(state)
    detector = MeterSilent()
    detector.prepare(state)
    prepare_reads(state, detector, field_specs(WATER))
    state.subjects.slots_for(["m"])
    view = DeclaredState(state, detector)
    assert not view.subject("last_seen").flags.writeable
    assert not view.group_column("gateway", "outage_since").flags.writeable
    assert view.subject("silent_since").flags.writeable
    with pytest.raises(ValueError):
        view.subject("last_seen")[0] = 1.0
    with pytest.raises(UndeclaredAccess, match="without declaring it"):
        view.subject("last_use")                      # no_use_24h's business, not meter_silent's
    with pytest.raises(UndeclaredAccess, match="'district' group"):
        view.group("district")


def test_run_order_comes_from_the_declarations_not_the_listed_order():
    listed = [cls() for cls in reversed(WATER.detectors)]
    ordered = [d.declaration.name for d in run_order(listed, WATER.tracker)]
    assert ordered.index("feed.gateway_outage") < ordered.index("water.meter_silent")
    assert ordered.index("feed.gateway_outage") < ordered.index("water.no_use_24h")
    traffic = [d.declaration.name for d in run_order([c() for c in reversed(DOMAINS["traffic"].detectors)],
                                                     DOMAINS["traffic"].tracker)]
    assert traffic.index("traffic.stuck") < traffic.index("traffic.incident") < traffic.index("traffic.anomaly_score")
    # with no dependency between them, the listed order stays
    free = [d.declaration.name for d in listed if not (declared_fields(d) - owned_fields(d)) & {
        f for other in listed for f in owned_fields(other)}]
    assert [n for n in ordered if n in free] == free


def test_the_run_order_gives_the_same_alerts_whatever_the_listed_order():
    def alerts(domain):
        sim = simulation(domain)
        pipeline = DomainPipeline(domain, SETTINGS, PSEUDONYMS, clock=lambda: sim.end + 3600)
        return sorted((a.event["data"]["detector"], a.event["subject"], a.event["data"]["state"], a.event["time"])
                      for a in pipeline.process(raw_messages(sim)).alerts)

    listed = alerts(WATER)
    assert any(a[0] == "water.meter_silent" for a in listed) and any(a[0] == "feed.gateway_outage" for a in listed)
    assert alerts(with_detectors(WATER, reversed(WATER.detectors))) == listed


def test_two_owners_of_one_field_and_a_cycle_are_refused():
    class AlsoOwnsSilentSince(ContinuousFlow):
        subject_fields = (("silent_since", np.float64, np.nan),)

    with pytest.raises(ValueError, match="'silent_since' is declared by both"):
        run_order([MeterSilent(), AlsoOwnsSilentSince()])

    class A(ContinuousFlow):
        subject_fields = (("a_field", np.float64, np.nan),)
        state_reads = ("b_field",)

    class B(ContinuousFlow):
        subject_fields = (("b_field", np.float64, np.nan),)
        state_reads = ("a_field",)

    with pytest.raises(ValueError, match="in a cycle"):
        run_order([A(), B()])


def dormant(cls):
    return type(cls.__name__, (cls,), {"declaration": dataclasses.replace(cls.declaration, status="dormant")})


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_any_single_detector_dormant_leaves_every_other_working(name):
    """The dormant one raises nothing; every detector that does not read its state finds exactly what it
    finds with all running; those that read it still run (a field of a dormant owner stays at its fill)."""
    domain = DOMAIN_OF[name]
    sim = simulation(domain)
    messages = raw_messages(sim)

    def run(d):
        pipeline = DomainPipeline(d, SETTINGS, PSEUDONYMS, clock=lambda: sim.end + 3600)
        return [a.event for a in pipeline.process(messages).alerts]

    everything = run(domain)
    without = run(with_detectors(domain, [dormant(c) if c.declaration.name == name else c
                                          for c in domain.detectors]))
    assert not [e for e in without if e["data"]["detector"] == name]
    owned = owned_fields(REGISTRY[name])
    for cls in domain.detectors:
        other = cls.declaration.name
        if other == name or set(cls.state_reads) & owned:
            continue
        assert [e for e in without if e["data"]["detector"] == other] == \
            [e for e in everything if e["data"]["detector"] == other], other


def test_state_restored_from_a_run_with_the_owner_active_reads_as_fill_once_it_is_dormant():
    """A gateway outage open when the partition is handed over to a pipeline where feed.gateway_outage is
    dormant: its outage_since must not hold back the meters' alerts for ever."""
    sim = simulation(WATER)
    messages = raw_messages(sim)
    running = DomainPipeline(WATER, SETTINGS, PSEUDONYMS, clock=lambda: sim.end + 3600)
    for start in range(0, len(messages), 20):
        running.process(messages[start:start + 20])
        if not np.all(np.isnan(running.states[0].group_column("gateway", "outage_since")[
                :len(running.states[0].group("gateway"))])):
            break
    else:
        pytest.fail("the corpus city has no gateway outage")
    snapshot = running.revoke(0)
    quiet = with_detectors(WATER, [dormant(c) if c is GatewayOutage else c for c in WATER.detectors])
    taking_over = DomainPipeline(quiet, SETTINGS, PSEUDONYMS, clock=lambda: sim.end + 3600)
    taking_over.adopt(0, snapshot)
    assert np.all(np.isnan(taking_over.states[0].group_column("gateway", "outage_since")))
