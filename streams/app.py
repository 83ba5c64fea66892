"""The Faust application: topics and one agent per domain. Kept thin on purpose.

Everything an agent does to a batch is :class:`streams.pipeline.WaterPipeline`;
this module only moves bytes between Kafka and that pipeline.
"""

from __future__ import annotations

import logging

import faust
import orjson

from streams.config import Settings
from streams.ingest import RawMessage
from streams.pipeline import WaterPipeline

__all__ = ["create_app"]

log = logging.getLogger("glasscity.worker")


def faust_settings(settings: Settings) -> dict:
    session_s = min(settings.rebalance_timeout_s, 60.0)
    return dict(
        broker=["kafka://" + host for host in settings.bootstrap.split(",")],
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_allow_declare=False,        # topics are created by `glasscity topics create`
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_session_timeout=session_s,
        broker_heartbeat_interval=min(3.0, session_s / 4),
        producer_acks=-1,
    )


def create_app(settings: Settings, pipeline: WaterPipeline) -> faust.App:
    app = faust.App(settings.app_id, **faust_settings(settings))
    raw = dict(key_serializer="raw", value_serializer="raw")
    readings = app.topic(settings.topic("water.readings.v1"), **raw)
    dead_letters = app.topic(settings.topic("water.dlq.v1"), **raw)
    alert_topics = {short: app.topic(settings.topic(short), **raw) for short in ("alerts.v1", "alerts.welfare.v1")}

    async def publish(result) -> None:
        for dead in result.dead_letters:
            log.warning("dead letter: %s at %s[%d]@%d (reading %d): %s", dead.reason, dead.source.topic,
                        dead.source.partition, dead.source.offset, dead.reading_index, dead.detail)
            await dead_letters.send(key=dead.source.key, value=dead.value, headers=dead.headers())
        for alert in result.alerts:
            await alert_topics[alert.topic].send(key=alert.key, value=orjson.dumps(alert.event))

    @app.agent(readings, name="water")
    async def water(stream):
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            messages = [RawMessage(e.message.value, e.message.topic, e.message.partition, e.message.offset,
                                   e.message.key) for e in events]
            await publish(pipeline.process(messages))

    @app.timer(interval=min(5.0, settings.idle_partition_after_s / 4))
    async def idle_partitions():
        await publish(pipeline.advance_idle())

    return app
