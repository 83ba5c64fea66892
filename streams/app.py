"""The Faust application: topics and one agent per domain. Kept thin on purpose.

Everything an agent does to a batch is :class:`streams.pipeline.DomainPipeline`;
this module only moves bytes between Kafka and that pipeline.
"""

from __future__ import annotations

import logging

import faust
import orjson

from streams.config import Settings
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline

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


def create_app(settings: Settings, pipelines: list[DomainPipeline]) -> faust.App:
    """A Faust app with one agent per domain pipeline, and the idle-partition timer."""
    app = faust.App(settings.app_id, **faust_settings(settings))
    raw = dict(key_serializer="raw", value_serializer="raw")
    alert_topics = {short: app.topic(settings.topic(short), **raw) for short in ("alerts.v1", "alerts.welfare.v1")}
    dead_letter_topics = {}

    async def publish(domain: str, result) -> None:
        for dead in result.dead_letters:
            log.warning("dead letter: %s at %s[%d]@%d (reading %d): %s", dead.reason, dead.source.topic,
                        dead.source.partition, dead.source.offset, dead.reading_index, dead.detail)
            await dead_letter_topics[domain].send(key=dead.source.key, value=dead.value, headers=dead.headers())
        for alert in result.alerts:
            await alert_topics[alert.topic].send(key=alert.key, value=orjson.dumps(alert.event))

    def add_agent(pipeline: DomainPipeline) -> None:
        domain = pipeline.domain
        readings = app.topic(settings.topic(domain.topic("readings")), **raw)
        dead_letter_topics[domain.name] = app.topic(settings.topic(domain.topic("dlq")), **raw)

        async def consume(stream):
            async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
                messages = [RawMessage(e.message.value, e.message.topic, e.message.partition, e.message.offset,
                                       e.message.key) for e in events]
                await publish(domain.name, pipeline.process(messages))

        consume.__name__ = consume.__qualname__ = domain.name
        app.agent(readings, name=domain.name)(consume)

    for pipeline in pipelines:
        add_agent(pipeline)

    @app.timer(interval=min(5.0, settings.idle_partition_after_s / 4))
    async def idle_partitions():
        for pipeline in pipelines:
            await publish(pipeline.domain.name, pipeline.advance_idle())

    return app
