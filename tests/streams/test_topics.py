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
    assert _configs("glasscity.water.readings.v1") == {} and _configs("glasscity.alerts.v1") == {}
