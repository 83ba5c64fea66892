"""The control room's view: what the page shows, to whom, and the KPI metrics it feeds."""

from __future__ import annotations

import asyncio
import dataclasses

import orjson
import pytest
from prometheus_client import REGISTRY

from streams import metrics
from streams.alerts import alert_event
from streams.control.feed import FeedItem
from streams.control.room import GATEWAYS, HIDDEN_SUBJECT, PERSONAL_DOMAINS, SUBSCRIBER_BACKLOG, ControlRoom
from streams.detectors import REGISTRY as DETECTORS
from streams.detectors.base import Transition

T0 = 1_780_000_000.0
DOMAINS = ("water", "traffic", "waste", "lighting")
TOPIC = "glasscity.alerts.v1"
WELFARE = "glasscity.alerts.welfare.v1"


def _event(detector: str, subject: str, state: str, at: float, start: float | None = None) -> dict:
    return alert_event(Transition(detector, subject, state, T0 if start is None else start, at),
                       DETECTORS[detector].declaration)


def _item(event: dict | None, topic: str = TOPIC, offset: int = 0, error: str | None = None) -> FeedItem:
    return FeedItem(topic, 0, offset, 0, event, error)


@pytest.fixture
def room(settings):
    positions = {"traffic": {"urn:ngsi-ld:TrafficFlowObserved:TD-1": (5.04, 47.32)},
                 "water": {"wm-aaa": (5.041, 47.321), "wm-bbb": (5.041, 47.321), "wm-ccc": (5.05, 47.33)},
                 GATEWAYS: {"gw-7": (5.045, 47.325)}}
    return ControlRoom(dataclasses.replace(settings, welfare_token="welfare-token-for-tests"), DOMAINS,
                       positions=lambda: positions, clock=lambda: T0 + 7200.0)


def _delay_count(detector: str) -> float:
    return REGISTRY.get_sample_value("glasscity_alert_intervention_delay_seconds_count", {"detector": detector}) or 0.0


def test_welfare_alerts_never_reach_the_general_view(room):
    room.ingest(_item(_event("water.burst", "wm-aaa", "raised", T0 + 60)))
    room.ingest(_item(_event("water.no_use_24h", "wm-bbb", "raised", T0 + 120), topic=WELFARE))
    room.ingest(_item(_event("water.no_use_24h", "wm-ccc", "raised", T0 + 130), topic=WELFARE))
    room.ingest(_item(_event("water.no_use_24h", "wm-ccc", "cleared", T0 + 900), topic=WELFARE))
    general = room.view(welfare=False)
    text = orjson.dumps(general).decode()
    assert "no_use_24h" not in text and "wm-" not in text       # no welfare alert, no household pseudonym
    assert general["feed"][0]["subject"] == HIDDEN_SUBJECT and general["open"]["oldest"][0]["subject"] == HIDDEN_SUBJECT
    assert general["open"]["total"] == 1 and general["open"]["by_domain"]["water"]["1-6h"] == 1
    welfare = room.view(welfare=True)
    assert welfare["open"]["total"] == 2
    assert {r["detector"] for r in welfare["feed"]} == {"water.burst", "water.no_use_24h"}
    assert [r["welfare"] for r in welfare["feed"] if r["detector"] == "water.no_use_24h"] == [True, True, True]
    assert {r["subject"] for r in welfare["feed"]} == {HIDDEN_SUBJECT, "wm-bbb", "wm-ccc"}
    assert welfare["kpi"]["intervention_delay"]["water.no_use_24h"]["count"] == 1
    assert "water.no_use_24h" not in general["kpi"]["intervention_delay"]


def test_intervention_delay_is_observed_once_per_episode(room):
    before = _delay_count("traffic.stuck")
    subject = "urn:ngsi-ld:TrafficFlowObserved:TD-1"
    room.ingest(_item(_event("traffic.stuck", subject, "raised", T0 + 600)))
    room.ingest(_item(_event("traffic.stuck", subject, "raised", T0 + 600)))         # redelivered
    room.ingest(_item(_event("traffic.stuck", subject, "cleared", T0 + 2400)))
    room.ingest(_item(_event("traffic.stuck", subject, "cleared", T0 + 2400)))       # redelivered
    assert _delay_count("traffic.stuck") == before + 1
    view = room.view()
    assert view["kpi"]["intervention_delay"]["traffic.stuck"] == {"count": 1, "median_s": 1800.0, "p90_s": 1800.0}
    assert view["kpi"]["intervention_delay_all"]["count"] == 1
    assert len(view["feed"]) == 2 and view["feed"][0]["state"] == "cleared"     # newest first, duplicates dropped


def test_refresh_sets_the_open_alerts_gauge_for_every_domain_and_band(room):
    room.ingest(_item(_event("waste.overflow", "urn:ngsi-ld:WasteContainer:B1", "raised", T0 + 7000)))   # 200 s old
    room.ingest(_item(_event("lighting.lamp_failure", "urn:ngsi-ld:Streetlight:L1", "raised", T0 - 86400)))  # > 1 d
    room.ingest(_item(_event("water.no_use_24h", "wm-bbb", "raised", T0 + 100), topic=WELFARE))            # ~2 h
    room.refresh()

    def gauge(domain, band):
        return REGISTRY.get_sample_value("glasscity_alerts_open", {"domain": domain, "age": band})

    assert gauge("waste", "0-1h") == 1 and gauge("lighting", "1-7d") == 1 and gauge("water", "1-6h") == 1
    assert gauge("traffic", "0-1h") == 0 and gauge("waste", "7d+") == 0


def test_plan_shows_households_as_cell_counts_and_public_equipment_exactly(room):
    room.ingest(_item(_event("water.burst", "wm-aaa", "raised", T0 + 60)))
    room.ingest(_item(_event("water.night_flow", "wm-bbb", "raised", T0 + 60)))
    room.ingest(_item(_event("traffic.stuck", "urn:ngsi-ld:TrafficFlowObserved:TD-1", "raised", T0 + 60)))
    room.ingest(_item(_event("waste.overflow", "urn:ngsi-ld:WasteContainer:NOWHERE", "raised", T0 + 60)))
    room.ingest(_item(_event("water.no_use_24h", "wm-ccc", "raised", T0 + 60), topic=WELFARE))
    room.ingest(_item(_event("feed.gateway_outage", "gw-7", "raised", T0 + 60)))     # equipment: exact
    plan = room.view()["plan"]
    assert "water" in PERSONAL_DOMAINS and "water" not in plan["sensors"]
    assert sorted(plan["cells"]) == [[5.041, 47.321, 2], [5.05, 47.33, 1]]
    assert plan["cell_alerts"] == [[5.041, 47.321, 2]]                 # two household alerts, one cell
    assert sorted((m["subject"], m["lon"], m["lat"]) for m in plan["markers"]) == [
        ("gw-7", 5.045, 47.325), ("urn:ngsi-ld:TrafficFlowObserved:TD-1", 5.04, 47.32)]
    assert "wm-" not in orjson.dumps(plan).decode()
    assert plan["unplaced"] == 1                                        # the bin no position is known for
    assert plan["bounds"] == [5.04, 47.32, 5.05, 47.33]
    welfare_plan = room.view(welfare=True)["plan"]
    # the welfare role sees its own alert at its cell; general household alerts stay counts per cell
    assert {m["subject"] for m in welfare_plan["markers"]} == {"urn:ngsi-ld:TrafficFlowObserved:TD-1", "wm-ccc",
                                                               "gw-7"}
    assert welfare_plan["cell_alerts"] == [[5.041, 47.321, 2]]


def test_unreadable_records_are_counted_not_folded(room):
    room.ingest(_item(None, error="not JSON"))
    room.ingest(_item({"data": {"detector": "x"}, "subject": "s"}))
    view = room.view()
    assert view["unreadable"] == 2 and view["open"]["total"] == 0 and view["feed"] == []


def test_subscribers_get_the_view_then_alerts_they_may_see(room):
    async def run():
        general, welfare = room.subscribe(False), room.subscribe(True)
        room.ingest(_item(_event("water.burst", "wm-aaa", "raised", T0 + 60)))
        room.ingest(_item(_event("water.no_use_24h", "wm-bbb", "raised", T0 + 60), topic=WELFARE))
        room.refresh()

        def drain(s):
            out = []
            while not s.queue.empty():
                out.append(s.queue.get_nowait())
            return out

        g, w = drain(general), drain(welfare)
        assert [name for name, _ in g] == ["state", "alert", "state"]
        assert [d["detector"] for name, d in g if name == "alert"] == ["water.burst"]
        assert g[-1][1]["open"]["total"] == 1
        assert [d["detector"] for name, d in w if name == "alert"] == ["water.burst", "water.no_use_24h"]
        assert w[-1][1]["open"]["total"] == 2 and w[-1][1]["view"] == "welfare"
        # a subscriber that stops reading is dropped once its backlog is full, the others go on
        stalled = room.subscribe(False)
        for i in range(SUBSCRIBER_BACKLOG + 1):
            room.ingest(_item(_event("traffic.stuck", f"urn:ngsi-ld:TrafficFlowObserved:T{i}", "raised", T0 + i)))
        assert stalled.dropped and stalled not in room.subscribers

    asyncio.run(run())


def test_welfare_subscription_needs_a_configured_role(settings):
    room = ControlRoom(settings, DOMAINS)
    assert not room.welfare_enabled
    with pytest.raises(PermissionError):
        room.subscribe(True)


def test_lighting_saving_comes_from_the_energy_counters(room):
    used = REGISTRY.get_sample_value("glasscity_lighting_energy_joules_total", {"kind": "used"}) or 0.0
    full = REGISTRY.get_sample_value("glasscity_lighting_energy_joules_total", {"kind": "full_power_night"}) or 0.0
    metrics.LIGHTING_ENERGY.labels("used").inc(300.0)
    metrics.LIGHTING_ENERGY.labels("full_power_night").inc(1000.0)
    lighting = room.view()["kpi"]["lighting"]
    assert lighting["used_j"] == used + 300.0 and lighting["full_power_night_j"] == full + 1000.0
    assert lighting["saving"] == pytest.approx(1.0 - (used + 300.0) / (full + 1000.0))


def test_a_re_read_feed_changes_nothing(room):
    """After a feed failure the room reads the topics again from the beginning: nothing is counted twice."""
    history = [_item(_event("traffic.stuck", "urn:ngsi-ld:TrafficFlowObserved:TD-1", "raised", T0 + 6000)),
               _item(_event("traffic.stuck", "urn:ngsi-ld:TrafficFlowObserved:TD-1", "cleared", T0 + 6600)),
               _item(_event("waste.overflow", "urn:ngsi-ld:WasteContainer:B1", "raised", T0 + 6100))]   # last hour
    before = _delay_count("traffic.stuck")
    for item in history + history:
        room.ingest(item)
    view = room.view()
    assert _delay_count("traffic.stuck") == before + 1
    assert len(view["feed"]) == 3 and view["open"]["total"] == 1
    assert view["rates"]["traffic"]["alerts_per_h"] == 1 and view["rates"]["waste"]["alerts_per_h"] == 1


def test_the_gauge_goes_back_to_zero_for_a_domain_this_worker_does_not_run(settings):
    room = ControlRoom(settings, ["water"], clock=lambda: T0 + 600)     # a water-only worker sees every alert
    subject = "urn:ngsi-ld:TrafficFlowObserved:TD-77"
    room.ingest(_item(_event("traffic.stuck", subject, "raised", T0 + 300)))
    room.refresh()
    assert REGISTRY.get_sample_value("glasscity_alerts_open", {"domain": "traffic", "age": "0-1h"}) == 1
    room.ingest(_item(_event("traffic.stuck", subject, "cleared", T0 + 500)))
    room.refresh()
    assert REGISTRY.get_sample_value("glasscity_alerts_open", {"domain": "traffic", "age": "0-1h"}) == 0
