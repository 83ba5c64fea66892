"""Shared checks run on every registered detector."""

import dataclasses
import math

import numpy as np
import pytest

from streams.config import settings_from
from streams.detectors import REGISTRY, Detector, water_detectors
from streams.detectors.base import Declaration
from streams.state import WaterPartitionState

DETECTORS = sorted(REGISTRY)


def test_registry_is_what_the_worker_runs():
    assert {d.declaration.name for d in water_detectors(settings_from(environ={}))} == set(REGISTRY)
    assert [d.declaration.name for d in water_detectors(settings_from(environ={}))][0] == "feed.gateway_outage"


@pytest.mark.parametrize("name", DETECTORS)
def test_declaration_is_complete(name):
    cls = REGISTRY[name]
    assert issubclass(cls, Detector)
    d = cls.declaration
    assert d.name == name and name.split(".")[0] in ("water", "feed")
    for field in dataclasses.fields(Declaration):
        assert getattr(d, field.name), field.name
    assert d.alert_topic in ("alerts.v1", "alerts.welfare.v1")
    assert (d.alert_topic == "alerts.welfare.v1") == (name == "water.no_use_24h")


def test_declaration_refuses_empty_fields():
    with pytest.raises(ValueError, match="must not be empty"):
        Declaration(name="x.y", domain="water", purpose="", legal_basis="l", reads=("a",), recipients="r",
                    alert_topic="alerts.v1", severity="info", subject_kind="gateway", retention="r",
                    human_oversight="h")


@pytest.mark.parametrize("name", DETECTORS)
def test_sweep_on_empty_state_finds_nothing(name):
    assert REGISTRY[name]().sweep(WaterPartitionState(), 1_800_000_000.0) == []


def state_with_one_meter(last_seen, last_use, gateway_seen):
    state = WaterPartitionState(0)
    state.meters.slots_for(["wm-a"])
    state.gateway_slots_for(["gw-1"])
    state.meter("last_seen")[0] = last_seen
    state.meter("last_use")[0] = last_use
    state.meter("meter_gateway")[0] = 0
    state.gateway("gateway_last_seen")[0] = gateway_seen
    return state


@pytest.mark.parametrize("name, subject", [("water.no_use_24h", "wm-a"), ("water.meter_silent", "wm-a"),
                                           ("feed.gateway_outage", "gw-1")])
def test_raise_then_clear_survives_a_state_round_trip(name, subject):
    day = 86400.0
    if name == "water.no_use_24h":
        state, w = state_with_one_meter(2 * day, day - 60, 2 * day), 2 * day + 600
    else:
        state, w = state_with_one_meter(day, day, day), 2 * day
    detector = REGISTRY[name]()
    raised = detector.sweep(state, w)
    assert [(t.detector, t.subject, t.state) for t in raised] == [(name, subject, "raised")]
    assert detector.sweep(state, w + 300) == []                      # raised once, not again
    state = WaterPartitionState.restore(state.snapshot())            # the open episode survives
    state.meter("last_seen")[0] = state.meter("last_use")[0] = state.gateway("gateway_last_seen")[0] = w + 400
    cleared = detector.sweep(state, w + 600)
    assert [(t.state, t.episode_start) for t in cleared] == [("cleared", raised[0].episode_start)]
    assert not math.isnan(raised[0].episode_start)


def test_snapshot_rejects_corrupt_data():
    with pytest.raises(Exception):
        WaterPartitionState.restore(b"not a snapshot")
    state = WaterPartitionState(1)
    state.meters.slots_for(["a", "b"])
    assert np.isnan(WaterPartitionState.restore(state.snapshot()).meter("last_seen")).all()
