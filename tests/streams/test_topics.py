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
