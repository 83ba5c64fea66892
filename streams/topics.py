"""Topic names and their creation (kafka-python admin client)."""

from __future__ import annotations

import time

from streams.config import Settings

__all__ = ["ALERT_TOPICS", "short_names", "topic_names", "create_topics"]

#: Short names; the full name is ``<prefix>.<short>`` (default prefix "glasscity").
ALERT_TOPICS = ("alerts.v1", "alerts.welfare.v1")


def short_names(settings: Settings) -> list[str]:
    """Readings and dead-letter topics of the selected domains, then the alert topics."""
    from streams.domains import select_domains

    names = []
    for domain in select_domains(settings.domains):
        names += [domain.topic("readings"), domain.topic("dlq")]
    return names + list(ALERT_TOPICS)


def topic_names(settings: Settings) -> list[str]:
    return [settings.topic(short) for short in short_names(settings)]


def create_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, str]:
    """Create the topics that are missing; returns {topic: "created" | "exists"}."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap.split(","), client_id="glasscity-topics",
                                     request_timeout_ms=10000)
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no Kafka broker reachable at {settings.bootstrap}") from None
            time.sleep(0.25)
    try:
        existing = set(admin.list_topics())
        outcome = {}
        missing = [t for t in topic_names(settings) if t not in existing]
        for name in topic_names(settings):
            outcome[name] = "exists" if name in existing else "created"
        if missing:
            try:
                admin.create_topics([NewTopic(name, settings.partitions, 1) for name in missing])
            except TopicAlreadyExistsError:
                pass
        return outcome
    finally:
        admin.close()
