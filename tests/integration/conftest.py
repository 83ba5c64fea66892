"""A real Kafka-protocol broker (Tansu) per test session; one topic set per test."""

import uuid

import pytest

from streams.broker import EmbeddedBroker
from streams.config import settings_from
from streams.topics import create_topics
from streams.broker import free_port
from tests.conftest import TEST_KEY


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    with EmbeddedBroker(port=0, log_path=log) as running:
        yield running


@pytest.fixture
def broker_settings(broker):
    """Settings for this test alone: its own topic prefix, consumer group and metrics port; no control-room
    page (its own tests turn it on, on a free port), so workers of other tests do not read the alert feed."""
    unique = uuid.uuid4().hex[:10]
    settings = settings_from(environ={}, bootstrap=broker.bootstrap, topic_prefix=f"t{unique}",
                             app_id=f"test-{unique}", partitions=4, rebalance_timeout_s=4.0,
                             pseudonym_key=TEST_KEY, metrics_host="127.0.0.1", metrics_port=free_port(),
                             page=False, log_level="info")
    create_topics(settings)
    return settings
