"""Topic names and their creation (kafka-python admin client).

Per domain: ``<domain>.readings.v1`` (input), ``<domain>.dlq.v1`` (dead letters),
``<domain>.late.v1`` (readings later than the allowed lateness, kept, not dropped) and
``<domain>.state.v1`` — the detector state changelog, compacted and co-partitioned with
the readings (partition p of state holds the state of readings partition p).
"""

from __future__ import annotations

import time

from streams.config import Settings

__all__ = ["ALERT_TOPICS", "DOMAIN_TOPIC_KINDS", "COMPACTED_KINDS", "short_names", "topic_names", "create_topics"]

#: Short names; the full name is ``<prefix>.<short>`` (default prefix "glasscity").
ALERT_TOPICS = ("alerts.v1", "alerts.welfare.v1")
#: Topics every domain has: ``<domain>.<kind>.v1``.
DOMAIN_TOPIC_KINDS = ("readings", "dlq", "late", "state")
#: Kinds whose topic keeps only the latest record per key.
COMPACTED_KINDS = ("state",)
#: How long a superseded state record is kept from compaction (ms): one day.
COMPACTION_LAG_MS = 86_400_000


def short_names(settings: Settings) -> list[str]:
    """Readings and dead-letter topics of the selected domains, then the alert topics."""
    from streams.domains import select_domains

    names = []
    for domain in select_domains(settings.domains):
        names += [domain.topic(kind) for kind in DOMAIN_TOPIC_KINDS]
    return names + list(ALERT_TOPICS)


def topic_names(settings: Settings) -> list[str]:
    return [settings.topic(short) for short in short_names(settings)]


def create_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, str]:
    """Create the topics that are missing; returns {topic: "created" | "exists"}."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import (AuthorizationError, InvalidReplicationFactorError, KafkaError,
                              SaslAuthenticationFailedError, TopicAlreadyExistsError, UnsupportedSaslMechanismError)

    from streams.kafka_security import kafka_python_security

    security = kafka_python_security(settings)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap.split(","), client_id="glasscity-topics",
                                     request_timeout_ms=10000, **security)
            break
        except (SaslAuthenticationFailedError, UnsupportedSaslMechanismError) as error:
            raise RuntimeError(f"the broker at {settings.bootstrap} refused SASL {settings.sasl_mechanism} "
                               f"authentication as {settings.sasl_username!r}: {type(error).__name__}") from None
        except KafkaError:
            if time.monotonic() > deadline:
                login = (f" (logging in with SASL {settings.sasl_mechanism} as {settings.sasl_username!r}: a refused "
                         f"login looks the same to the client, see the errors logged above)"
                         if settings.sasl_username else "")
                raise RuntimeError(f"no Kafka broker reachable at {settings.bootstrap}{login}") from None
            time.sleep(0.25)
    try:
        existing = set(admin.list_topics())
        outcome = {}
        missing = [t for t in topic_names(settings) if t not in existing]
        for name in topic_names(settings):
            outcome[name] = "exists" if name in existing else "created"
        if missing:
            try:
                admin.create_topics([NewTopic(name, settings.partitions, settings.replication_factor,
                                              topic_configs=_configs(name)) for name in missing])
            except TopicAlreadyExistsError:
                pass
            except InvalidReplicationFactorError as error:
                raise RuntimeError(f"the broker at {settings.bootstrap} cannot keep {settings.replication_factor} "
                                   f"replicas of a topic ({error}); set --replication-factor / "
                                   f"GLASSCITY_REPLICATION_FACTOR to at most its number of brokers") from None
            except AuthorizationError as error:
                raise RuntimeError(f"the broker at {settings.bootstrap} does not allow "
                                   f"{settings.sasl_username or 'this client'!r} to create topics "
                                   f"({type(error).__name__}); see `glasscity acls`") from None
        return outcome
    finally:
        admin.close()


def _configs(name: str) -> dict:
    if any(name.endswith(f".{kind}.v1") for kind in COMPACTED_KINDS):
        # min.compaction.lag.ms: a row overwritten by an unfinished write (rows after the last
        # clock, ignored on restore) keeps its previous version in the log for a day
        return {"cleanup.policy": "compact", "min.compaction.lag.ms": str(COMPACTION_LAG_MS)}
    return {}
