"""Topic names and their configs (creation on a real broker is in tests/integration)."""

from streams.config import settings_from
from streams.topics import _configs, topic_names
from tests.conftest import TEST_KEY


def test_every_domain_has_readings_dead_letters_late_and_a_compacted_state_topic():
    settings = settings_from(environ={}, pseudonym_key=TEST_KEY)
    names = topic_names(settings)
    for domain in ("water", "traffic", "waste", "lighting"):
        for kind in ("readings", "dlq", "late", "state"):
            assert f"glasscity.{domain}.{kind}.v1" in names
    assert _configs("glasscity.water.state.v1")["cleanup.policy"] == "compact"
    assert int(_configs("glasscity.water.state.v1")["min.compaction.lag.ms"]) >= 3_600_000
    assert _configs("glasscity.water.readings.v1") == {} and _configs("glasscity.alerts.v1") == {}   # not compacted


def test_alert_topics_keep_alerts_no_longer_than_their_detectors_declare():
    from streams.detectors import REGISTRY, WATCHERS
    from streams.topics import topic_specs

    settings = settings_from(environ={}, pseudonym_key=TEST_KEY, raw_retention_s=3 * 86400.0)
    specs = {spec.short: spec for spec in topic_specs(settings)}
    declarations = [cls.declaration for cls in REGISTRY.values()]
    declarations += [WATCHERS["feed.stalled"].declaration_for(d) for d in ("water", "traffic")]
    for short in ("alerts.v1", "alerts.welfare.v1"):
        retention_ms = int(specs[short].configs["retention.ms"])
        publishers = [d for d in declarations if d.alert_topic == short]
        assert publishers and all(retention_ms <= d.retention_s * 1000 for d in publishers)
        assert any(retention_ms == d.retention_s * 1000 for d in publishers)
    assert int(specs["alerts.welfare.v1"].configs["retention.ms"]) == 30 * 86400 * 1000
    for domain in ("water", "traffic", "waste", "lighting"):
        for kind in ("readings", "dlq", "late"):      # they carry raw ids
            assert specs[f"{domain}.{kind}.v1"].configs == {"retention.ms": str(3 * 86400 * 1000)}
        assert specs[f"{domain}.state.v1"].configs["cleanup.policy"] == "compact"
    for short in ("consent.enrolment.v1", "consent.absence.v1", "consent.objection.v1"):
        assert specs[short] == (short, 1, {"cleanup.policy": "compact"})
    assert specs["audit.v1"] == ("audit.v1", 1, {"retention.ms": "-1"})


# -- creation: the replication factor and the broker's refusals (a fake admin client) ----------------------

import pytest  # noqa: E402


class FakeAdmin:
    created: list = []
    refuse = None

    def __init__(self, **options):
        self.options = options

    def list_topics(self):
        return []

    def create_topics(self, topics):
        if FakeAdmin.refuse is not None:
            raise FakeAdmin.refuse
        FakeAdmin.created = list(topics)

    def close(self):
        pass


@pytest.fixture
def admin(monkeypatch):
    import kafka.admin

    FakeAdmin.created, FakeAdmin.refuse = [], None
    monkeypatch.setattr(kafka.admin, "KafkaAdminClient", FakeAdmin)
    return FakeAdmin


def test_created_topics_get_the_replication_factor(admin):
    from streams.topics import create_topics

    settings = settings_from(environ={}, replication_factor=3, partitions=6)
    create_topics(settings)
    # the shared topics (audit, consent registers) have one partition; every topic gets the factor
    assert {(t.num_partitions, t.replication_factor) for t in admin.created} == {(6, 3), (1, 3)}
    assert {t.name for t in admin.created} == set(topic_names(settings))


def test_a_factor_above_the_brokers_is_a_clear_error(admin):
    from kafka.errors import InvalidReplicationFactorError

    from streams.topics import create_topics

    admin.refuse = InvalidReplicationFactorError("Replication factor: 3 larger than available brokers: 1.")
    with pytest.raises(RuntimeError, match="cannot keep 3 replicas of a topic .*larger than available brokers.*"
                                           "--replication-factor / GLASSCITY_REPLICATION_FACTOR"):
        create_topics(settings_from(environ={}, replication_factor=3))


def test_a_client_without_create_rights_is_told_so(admin):
    from kafka.errors import TopicAuthorizationFailedError

    from streams.topics import create_topics

    admin.refuse = TopicAuthorizationFailedError()
    settings = settings_from(environ={}, security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                             sasl_username="glasscity-ingress", sasl_password="x-secret-x")
    with pytest.raises(RuntimeError, match="does not allow 'glasscity-ingress' to create topics") as error:
        create_topics(settings)
    assert "x-secret-x" not in str(error.value)


def test_no_broker_with_sasl_says_a_refused_login_looks_the_same(monkeypatch):
    import kafka.admin
    from kafka.errors import KafkaTimeoutError

    from streams.topics import create_topics

    def unreachable(**options):
        raise KafkaTimeoutError("Unable to bootstrap")

    monkeypatch.setattr(kafka.admin, "KafkaAdminClient", unreachable)
    settings = settings_from(environ={}, security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                             sasl_username="glasscity-topics", sasl_password="x-secret-x")
    with pytest.raises(RuntimeError, match="no Kafka broker reachable at 127.0.0.1:9092 \\(logging in with SASL "
                                           "SCRAM-SHA-256 as 'glasscity-topics': a refused login") as error:
        create_topics(settings, timeout_s=0.05)
    assert "x-secret-x" not in str(error.value)
