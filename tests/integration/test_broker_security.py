"""Broker security against the real embedded broker (Tansu 0.6): what it can show, and what it cannot.

* The replication factor reaches the broker's CreateTopics (Tansu keeps any factor it is
  given, listing its one node that many times; a real cluster refuses more replicas than
  brokers, which ``create_topics`` reports as a settings problem, see tests/streams/test_topics.py).
* TLS end to end: every client — topics, simulator, the Faust worker and its changelog
  reader, the alert reader, dlq replay — through a TLS-terminating gateway in front of the
  broker (the bundled Tansu has no working TLS listener), with the broker's certificate
  verified; a client trusting another CA, or speaking PLAINTEXT, gets nowhere; with client
  certificates required, the configured certificate is presented.
* SASL end to end: the same clients log in with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
  (password from a file, as in docker/) at an authenticating gateway in front of the broker,
  also over TLS (SASL_SSL); a wrong password is refused and the worker exits. Tansu itself
  offers SCRAM only, with users kept in its storage: with memory storage and
  ``--authentication`` no first user can be created, so nobody could log in to it.
* ACLs: Tansu has no authorizer — it answers DescribeAcls with nothing and never answers
  CreateAcls — and ``apply_acls`` says so.
"""

from __future__ import annotations

import time
import uuid

import pytest
from kafka.admin import KafkaAdminClient

from streams.acls import AclError, acl_bindings, apply_acls
from streams.broker import EmbeddedBroker, free_port, stop_process
from streams.config import settings_from
from streams.demo import AlertReader, metric_sum, start_worker, wait_until_consumed
from streams.kafka_security import kafka_python_security
from streams.simulate import WaterScenario, simulate_water
from streams.simulate.produce import produce
from streams.topics import create_topics, topic_names
from tests.conftest import TEST_KEY
from tests.support.certs import make_pki
from tests.support.gateway import Gateway

START = 1_790_000_000.0 - 1_790_000_000.0 % 3600


def _unique_settings(bootstrap: str, **extra):
    unique = uuid.uuid4().hex[:10]
    values = dict(bootstrap=bootstrap, topic_prefix=f"s{unique}", app_id=f"sec-{unique}", partitions=2,
                  rebalance_timeout_s=4.0, pseudonym_key=TEST_KEY, metrics_host="127.0.0.1",
                  metrics_port=free_port(), log_level="info")
    values.update(extra)
    return settings_from(environ={}, **values)


def _replicas(settings) -> set[int]:
    """The replica counts of every partition of every topic of ``settings``."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, **kafka_python_security(settings))
    try:
        described = admin.describe_topics(topic_names(settings))
    finally:
        admin.close()
    assert {t["name"] for t in described} == set(topic_names(settings))
    return {len(p["replica_nodes"]) for t in described for p in t["partitions"]}


def test_the_replication_factor_reaches_the_broker(broker):
    three = _unique_settings(broker.bootstrap, replication_factor=3)
    assert set(create_topics(three).values()) == {"created"}
    assert _replicas(three) == {3}
    one = _unique_settings(broker.bootstrap)
    create_topics(one)
    assert _replicas(one) == {1}


def test_acls_cannot_be_applied_to_the_embedded_broker_and_it_says_so(broker_settings):
    started = time.monotonic()
    with pytest.raises(AclError, match="does not implement ACLs"):
        apply_acls(broker_settings, acl_bindings(broker_settings), timeout_s=3.0)
    assert time.monotonic() - started < 30


# -- TLS ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls(pki, tmp_path_factory):
    """The broker behind a TLS-terminating gateway; the broker advertises the gateway's address."""
    port = free_port()
    log = tmp_path_factory.mktemp("tls-broker") / "broker.log"
    with EmbeddedBroker(port=0, log_path=log, advertised=f"127.0.0.1:{port}") as broker, \
            Gateway(port, (broker.host, broker.port), pki.server_cert, pki.server_key) as gateway:
        yield gateway


def _city_over(settings, tmp_path, topics_settings=None, ingress_settings=None) -> dict:
    """Topics, worker, simulator, alert reader and dlq replay, each with its own settings; returns findings."""
    from streams.dlq import replay_dead_letters

    assert set(create_topics(topics_settings or settings).values()) == {"created"}     # admin client
    simulation = simulate_water(WaterScenario(households=40, days=2, seed=5, start=START, no_use=1,
                                              meter_silent=0, gateway_outage=0, malformed=3))
    worker = start_worker(settings, tmp_path / "worker.log")                          # Faust + changelog reader
    reader = AlertReader(settings)                                                     # kafka-python consumer
    reader.start()
    try:
        produce(simulation, ingress_settings or settings)                              # kafka-python producer
        samples = wait_until_consumed(worker, settings.metrics_port, simulation.valid_readings,
                                      len(simulation.malformed), timeout_s=180)
        deadline = time.monotonic() + 30
        while not any(a["data"]["detector"] == "water.no_use_24h" for a in reader.alerts) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        reader.stop()
        code = stop_process(worker, grace_s=10.0)
    log = (tmp_path / "worker.log").read_text()
    assert reader.error is None, reader.error
    assert code == 0, log[-3000:]
    assert metric_sum(samples, "glasscity_invalid_total", domain="water") == 3
    welfare = [a for a in reader.alerts if a["data"]["detector"] == "water.no_use_24h"]
    assert welfare and all(reader.topics_of[a["id"]] == settings.topic("alerts.welfare.v1") for a in welfare)
    assert "restored water state from" in log                                         # the changelog reader
    report = replay_dead_letters(settings, "water", dry_run=True)                      # dlq consumer
    assert report.read == 3 and report.failed == 0
    return {"log": log}


def test_every_client_works_over_tls(tls, pki, tmp_path):
    settings = _unique_settings(tls.address, security_protocol="SSL", ssl_cafile=str(pki.ca), domains="water")
    _city_over(settings, tmp_path)
    assert tls.connections >= 5


def _bootstraps(settings) -> bool:
    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, bootstrap_timeout_ms=4000,
                                 request_timeout_ms=4000, **kafka_python_security(settings))
    except Exception:
        return False
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()


def test_the_broker_certificate_is_verified(tls, pki):
    assert _bootstraps(_unique_settings(tls.address, security_protocol="SSL", ssl_cafile=str(pki.ca)))
    assert not _bootstraps(_unique_settings(tls.address, security_protocol="SSL", ssl_cafile=str(pki.other_ca)))
    assert not _bootstraps(_unique_settings(tls.address))                              # PLAINTEXT to a TLS port


def test_a_client_certificate_is_presented_when_required(tls, pki):
    port = free_port()
    with Gateway(port, tls.upstream, pki.server_cert, pki.server_key, client_ca=pki.ca) as mutual:
        with_cert = _unique_settings(mutual.address, security_protocol="SSL", ssl_cafile=str(pki.ca),
                                     ssl_certfile=str(pki.client_cert), ssl_keyfile=str(pki.client_key))
        assert _bootstraps(with_cert)
        assert not _bootstraps(_unique_settings(mutual.address, security_protocol="SSL", ssl_cafile=str(pki.ca)))


# -- SASL ------------------------------------------------------------------------------------------------

USERS = {"glasscity-worker": "worker-pw-3f9a", "glasscity-ingress": "ingress-pw-77c1",
         "glasscity-topics": "topics-pw-0b2e"}


@pytest.fixture(scope="module")
def sasl_gateway(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("sasl-broker") / "broker.log"
    with EmbeddedBroker(port=0, log_path=log, advertised=f"127.0.0.1:{port}") as broker, \
            Gateway(port, (broker.host, broker.port), users=USERS) as gateway:
        yield gateway


def _as(address, user, mechanism, tmp_path, protocol="SASL_PLAINTEXT", **extra):
    secret = tmp_path / f"{user}.password"
    secret.write_text(USERS.get(user, "not-a-user-pw") + "\n")
    return _unique_settings(address, security_protocol=protocol, sasl_mechanism=mechanism, sasl_username=user,
                            sasl_password_file=str(secret), domains="water", **extra)


def test_every_client_logs_in_with_its_own_principal(sasl_gateway, tmp_path):
    worker = _as(sasl_gateway.address, "glasscity-worker", "SCRAM-SHA-512", tmp_path)
    same = dict(topic_prefix=worker.topic_prefix, app_id=worker.app_id)
    topics = _as(sasl_gateway.address, "glasscity-topics", "PLAIN", tmp_path, **same)
    ingress = _as(sasl_gateway.address, "glasscity-ingress", "SCRAM-SHA-256", tmp_path, **same)
    _city_over(worker, tmp_path, topics_settings=topics, ingress_settings=ingress)
    logins = set(sasl_gateway.logins)
    assert {("SCRAM-SHA-512", "glasscity-worker"), ("PLAIN", "glasscity-topics"),
            ("SCRAM-SHA-256", "glasscity-ingress")} <= logins
    assert not sasl_gateway.refused


def test_a_wrong_password_is_refused_and_the_worker_exits(sasl_gateway, tmp_path):
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    settings = _unique_settings(sasl_gateway.address, security_protocol="SASL_PLAINTEXT",
                                sasl_mechanism="SCRAM-SHA-512", sasl_username="glasscity-worker",
                                sasl_password_file=str(wrong))
    refused_before = len(sasl_gateway.refused)
    assert not _bootstraps(settings)
    assert ("SCRAM-SHA-512", "glasscity-worker") in sasl_gateway.refused[refused_before:]
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        code = worker.wait(60)
    finally:
        stop_process(worker)
    log = (tmp_path / "worker.log").read_text()
    assert code == 1 and "SaslAuthenticationFailed" in log, log[-2000:]
    assert "not-the-password" not in log
    assert not _bootstraps(_unique_settings(sasl_gateway.address))                    # no login at all


def test_sasl_over_tls(pki, tmp_path):
    port = free_port()
    with EmbeddedBroker(port=0, log_path=tmp_path / "broker.log", advertised=f"127.0.0.1:{port}") as broker, \
            Gateway(port, (broker.host, broker.port), pki.server_cert, pki.server_key, users=USERS) as both:
        settings = _as(both.address, "glasscity-worker", "SCRAM-SHA-256", tmp_path, protocol="SASL_SSL",
                       ssl_cafile=str(pki.ca))
        assert _bootstraps(settings)
        assert set(both.logins) == {("SCRAM-SHA-256", "glasscity-worker")}
        assert not _bootstraps(_as(both.address, "glasscity-worker", "SCRAM-SHA-256", tmp_path))   # no TLS
