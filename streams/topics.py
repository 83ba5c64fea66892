"""Topic names, their configs and their creation (kafka-python admin client).

Per domain: ``<domain>.readings.v1`` (input), ``<domain>.dlq.v1`` (dead letters),
``<domain>.late.v1`` (readings later than the allowed lateness, kept, not dropped) and
``<domain>.state.v1`` — the detector state changelog, compacted and co-partitioned with
the readings (partition p of state holds the state of readings partition p).

Shared by all domains: the alert topics (``alerts.v1``, ``alerts.welfare.v1``), whose
``retention.ms`` is the shortest declared retention (``Declaration.retention_s``) of the
detectors that publish to them, so no alert outlives what its detector declares; the audit
topic ``audit.v1`` (one partition, kept forever: the copy of the audit log); and the three
consent registers (:mod:`streams.consent`; one partition each, compacted).
Readings, dead letters and late readings carry raw meter ids: they are kept
``raw_retention_s`` (a setting).
"""

from __future__ import annotations

import time
from typing import NamedTuple

from streams.config import Settings

__all__ = ["ALERT_TOPICS", "AUDIT_TOPIC", "DOMAIN_TOPIC_KINDS", "COMPACTED_KINDS", "TopicSpec", "topic_specs",
           "short_names", "topic_names", "create_topics", "alert_retention_s"]

#: Short names; the full name is ``<prefix>.<short>`` (default prefix "glasscity").
ALERT_TOPICS = ("alerts.v1", "alerts.welfare.v1")
#: Topics every domain has: ``<domain>.<kind>.v1``.
DOMAIN_TOPIC_KINDS = ("readings", "dlq", "late", "state")
#: Kinds whose topic keeps only the latest record per key.
COMPACTED_KINDS = ("state",)
#: How long a superseded state record is kept from compaction (ms): one day.
COMPACTION_LAG_MS = 86_400_000
#: The audit log's copy (short name).
AUDIT_TOPIC = "audit.v1"
#: Kinds holding raw meter ids (kept ``raw_retention_s``).
RAW_KINDS = ("readings", "dlq", "late")


class TopicSpec(NamedTuple):
    short: str           # e.g. "water.readings.v1"
    partitions: int
    configs: dict        # topic configs (strings), e.g. {"cleanup.policy": "compact"}


def alert_retention_s(alert_topic: str) -> float:
    """The retention of an alert topic (s): the shortest declared by the detectors publishing there."""
    from streams.detectors import REGISTRY, WATCHERS
    from streams.domains import DOMAINS
    from streams.register import declarations_in_order, topic_retention_s

    declared = [d for d, _cls, _where in declarations_in_order(REGISTRY, WATCHERS, DOMAINS)]
    return topic_retention_s(declared)[alert_topic]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic of the selected domains and the shared ones, with partitions and configs."""
    from streams.consent import REGISTER_TOPICS
    from streams.domains import select_domains

    specs = []
    raw_ms = {"retention.ms": str(int(settings.raw_retention_s * 1000))}
    for domain in select_domains(settings.domains):
        for kind in DOMAIN_TOPIC_KINDS:
            configs = _configs(f".{kind}.v1") if kind in COMPACTED_KINDS else raw_ms if kind in RAW_KINDS else {}
            specs.append(TopicSpec(domain.topic(kind), settings.partitions, dict(configs)))
    for short in ALERT_TOPICS:
        specs.append(TopicSpec(short, settings.partitions, {"retention.ms": str(int(alert_retention_s(short) * 1000))}))
    specs.append(TopicSpec(AUDIT_TOPIC, 1, {"retention.ms": "-1"}))
    for short in REGISTER_TOPICS.values():
        specs.append(TopicSpec(short, 1, {"cleanup.policy": "compact"}))
    return specs


def short_names(settings: Settings) -> list[str]:
    """Readings, dead-letter, late and state topics of the selected domains, then the shared topics."""
    return [spec.short for spec in topic_specs(settings)]


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
        specs = {settings.topic(spec.short): spec for spec in topic_specs(settings)}
        missing = [name for name in specs if name not in existing]
        for name in specs:
            outcome[name] = "exists" if name in existing else "created"
        if missing:
            try:
                admin.create_topics([NewTopic(name, specs[name].partitions, settings.replication_factor,
                                              topic_configs=specs[name].configs) for name in missing])
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
