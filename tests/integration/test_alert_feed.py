"""follow_alerts on the real broker: history to the end, live records, welfare only when asked,
unreadable records reported, missing topics named."""

from __future__ import annotations

import asyncio
import dataclasses

import orjson
import pytest

from streams.alerts import alert_event
from streams.control.feed import AlertTopicsMissing, follow_alerts
from streams.detectors import REGISTRY
from streams.detectors.base import Transition
from tests.support.records import produce_records

T0 = 1_780_000_000.0


def _event(detector: str, subject: str, state: str = "raised") -> dict:
    return alert_event(Transition(detector, subject, state, T0, T0 + 60), REGISTRY[detector].declaration)


async def _collect(settings, **options) -> list:
    return [item async for item in follow_alerts(settings, until_end=True, from_beginning=True, **options)]


def test_history_to_the_end_with_welfare_only_when_asked(broker_settings):
    general = [_event("water.burst", f"wm-{i}") for i in range(5)]
    welfare = _event("water.no_use_24h", "wm-old")
    produce_records(broker_settings, [("alerts.v1", orjson.dumps(e)) for e in general]
             + [("alerts.v1", b"{not json"), ("alerts.welfare.v1", orjson.dumps(welfare))])
    items = asyncio.run(asyncio.wait_for(_collect(broker_settings), 60))
    readable = [i.event["id"] for i in items if i.event]
    assert sorted(readable) == sorted(e["id"] for e in general)
    broken = [i for i in items if i.event is None]
    assert len(broken) == 1 and "not JSON" in broken[0].error and broken[0].topic.endswith(".alerts.v1")
    with_welfare = asyncio.run(asyncio.wait_for(_collect(broker_settings, welfare=True), 60))
    assert welfare["id"] in {i.event["id"] for i in with_welfare if i.event}
    assert {i.topic for i in with_welfare if i.event and i.event["id"] == welfare["id"]} == {
        broker_settings.topic("alerts.welfare.v1")}


def test_live_follow_sees_only_what_arrives_after_it_starts(broker_settings):
    produce_records(broker_settings, [("alerts.v1", orjson.dumps(_event("water.burst", "wm-before")))])

    async def run() -> list:
        stop = asyncio.Event()
        seen = []

        async def read():
            async for item in follow_alerts(broker_settings, stop=stop):
                seen.append(item)
                stop.set()

        reader = asyncio.create_task(read())
        await asyncio.sleep(2.0)    # the consumer has started and sought to the end
        await asyncio.to_thread(produce_records, broker_settings,
                                [("alerts.v1", orjson.dumps(_event("traffic.stuck", "det-after")))])
        await asyncio.wait_for(reader, 30)
        return seen

    seen = asyncio.run(run())
    assert [i.event["subject"] for i in seen] == ["det-after"]


def test_missing_topics_are_named(broker_settings):
    elsewhere = dataclasses.replace(broker_settings, topic_prefix=broker_settings.topic_prefix + "x")
    with pytest.raises(AlertTopicsMissing, match=r"glasscity topics create"):
        asyncio.run(asyncio.wait_for(_collect(elsewhere), 60))
