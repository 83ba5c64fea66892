"""Broker security settings: parsed from flags and GLASSCITY_* variables, checked together, translated once
(streams/kafka_security.py) into kafka-python, aiokafka and Faust options, and given to every client.

The literal password of these tests must never appear in a repr, --help, a log line or an error message.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl
import subprocess
import sys

import pytest

from streams.cli import SECURITY, WORKER, build_parser, main
from streams.config import SETTING_FIELDS, SettingsError, env_name, settings_from
from streams.kafka_security import (SECURITY_SETTINGS, aiokafka_security, faust_credentials, kafka_python_security,
                                    sasl_password, security_environment, ssl_context)
from tests.conftest import TEST_KEY

PASSWORD = "pw-Zq8!never-print-me-41"


def make(**values):
    return settings_from(environ={}, pseudonym_key=TEST_KEY, **values)


def sasl(**values):
    base = dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512", sasl_username="glasscity-worker",
                sasl_password=PASSWORD)
    base.update(values)
    return make(**base)


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "worker.password"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    from tests.support.certs import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))


# -- settings: names, parsing, precedence ------------------------------------------------------------

def test_env_names_are_unique_and_the_password_file_has_its_own():
    names = [env_name(f) for f in SETTING_FIELDS.values()]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert env_name(SETTING_FIELDS["sasl_password_file"]) == "GLASSCITY_SASL_PASSWORD_FILE"
    assert env_name(SETTING_FIELDS["sasl_password"]) == "GLASSCITY_SASL_PASSWORD"
    assert env_name(SETTING_FIELDS["ssl_keyfile"]) == "GLASSCITY_SSL_KEYFILE"
    assert env_name(SETTING_FIELDS["ssl_cafile"]) == "GLASSCITY_SSL_CAFILE"
    assert env_name(SETTING_FIELDS["replication_factor"]) == "GLASSCITY_REPLICATION_FACTOR"
    assert env_name(SETTING_FIELDS["thresholds_file"]) == "GLASSCITY_THRESHOLDS"   # unchanged
    assert set(SECURITY) == set(SECURITY_SETTINGS) and set(SECURITY) <= set(WORKER)


def test_defaults_are_plaintext_with_one_replica():
    settings = make()
    assert settings.security_protocol == "PLAINTEXT" and settings.replication_factor == 1
    assert settings.ssl_check_hostname is True
    assert kafka_python_security(settings) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None


def test_settings_from_the_environment(password_file):
    settings = settings_from(None, {"GLASSCITY_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                                    "GLASSCITY_SASL_MECHANISM": "SCRAM-SHA-256",
                                    "GLASSCITY_SASL_USERNAME": "glasscity-ingress",
                                    "GLASSCITY_SASL_PASSWORD_FILE": str(password_file),
                                    "GLASSCITY_REPLICATION_FACTOR": "3"})
    assert (settings.security_protocol, settings.sasl_mechanism, settings.sasl_username) == \
        ("SASL_PLAINTEXT", "SCRAM-SHA-256", "glasscity-ingress")
    assert settings.sasl_password == "" and settings.sasl_password_file == str(password_file)
    assert sasl_password(settings) == PASSWORD          # one line, trailing newline dropped
    assert settings.replication_factor == 3


def test_flags_win_over_the_environment(password_file):
    args = build_parser().parse_args(["worker", "--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "PLAIN",
                                      "--sasl-username", "from-flag", "--sasl-password-file", str(password_file),
                                      "--replication-factor", "2", "--ssl-check-hostname", "0"])
    settings = settings_from(args, {"GLASSCITY_SASL_USERNAME": "from-env", "GLASSCITY_SECURITY_PROTOCOL": "SSL",
                                    "GLASSCITY_REPLICATION_FACTOR": "5"})
    assert settings.sasl_username == "from-flag" and settings.security_protocol == "SASL_PLAINTEXT"
    assert settings.replication_factor == 2 and settings.ssl_check_hostname is False


@pytest.mark.parametrize("raw, value", [("1", True), ("true", True), ("YES", True), ("on", True),
                                        ("0", False), ("false", False), ("No", False), ("off", False)])
def test_ssl_check_hostname_is_an_on_off_value(raw, value):
    assert settings_from(None, {"GLASSCITY_SSL_CHECK_HOSTNAME": raw}).ssl_check_hostname is value


def test_bad_single_values_are_clear_errors():
    with pytest.raises(SettingsError, match="GLASSCITY_SSL_CHECK_HOSTNAME='maybe' is not a valid boolean"):
        settings_from(None, {"GLASSCITY_SSL_CHECK_HOSTNAME": "maybe"})
    with pytest.raises(SettingsError, match="--security-protocol / GLASSCITY_SECURITY_PROTOCOL: must be one of "
                                            "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"):
        make(security_protocol="TLS")
    with pytest.raises(SettingsError, match="GLASSCITY_SASL_MECHANISM: must be one of"):
        sasl(sasl_mechanism="GSSAPI")
    with pytest.raises(SettingsError, match="--replication-factor / GLASSCITY_REPLICATION_FACTOR: must be >= 1"):
        make(replication_factor=0)
    with pytest.raises(SettingsError, match="GLASSCITY_REPLICATION_FACTOR='three' is not a valid int"):
        settings_from(None, {"GLASSCITY_REPLICATION_FACTOR": "three"})


# -- cross-field validation ----------------------------------------------------------------------------

@pytest.mark.parametrize("missing, message", [
    ("sasl_mechanism", "GLASSCITY_SASL_MECHANISM is required with SASL_PLAINTEXT"),
    ("sasl_username", "GLASSCITY_SASL_USERNAME is required with SASL_PLAINTEXT"),
    ("sasl_password", "a SASL password is required with SASL_PLAINTEXT: set --sasl-password-file"),
])
def test_sasl_needs_mechanism_username_and_password(missing, message):
    with pytest.raises(SettingsError, match=message):
        sasl(**{missing: ""})


def test_the_password_is_set_once(password_file):
    with pytest.raises(SettingsError, match="set the SASL password once") as error:
        sasl(sasl_password_file=str(password_file))
    assert PASSWORD not in str(error.value)


def test_an_unreadable_or_empty_password_file_is_named_not_shown(tmp_path):
    with pytest.raises(SettingsError, match=r"GLASSCITY_SASL_PASSWORD_FILE: cannot read .*nope: No such file"):
        sasl(sasl_password="", sasl_password_file=str(tmp_path / "nope"))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SettingsError, match="is empty"):
        sasl(sasl_password="", sasl_password_file=str(empty))
    two = tmp_path / "two-lines"
    two.write_text(PASSWORD + "\nsecond-line-secret\n")
    with pytest.raises(SettingsError, match="holds more than one line") as error:
        sasl(sasl_password="", sasl_password_file=str(two))
    assert PASSWORD not in str(error.value) and "second-line-secret" not in str(error.value)


def test_credentials_without_a_sasl_protocol_are_refused_not_ignored():
    # a user name and password with PLAINTEXT would silently connect unauthenticated
    with pytest.raises(SettingsError, match="set, but --security-protocol / GLASSCITY_SECURITY_PROTOCOL is "
                                            "PLAINTEXT, so no SASL authentication would happen") as error:
        make(sasl_username="glasscity-worker", sasl_password=PASSWORD)
    assert PASSWORD not in str(error.value)
    with pytest.raises(SettingsError, match="so no TLS would be used"):
        sasl(ssl_cafile="/etc/hostname")


def test_tls_files_must_exist(tmp_path):
    with pytest.raises(SettingsError, match=r"--ssl-cafile / GLASSCITY_SSL_CAFILE: no such file .*missing.pem"):
        make(security_protocol="SSL", ssl_cafile=str(tmp_path / "missing.pem"))
    with pytest.raises(SettingsError, match="GLASSCITY_SSL_CERTFILE: no such file"):
        make(security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u", sasl_password=PASSWORD,
             ssl_certfile=str(tmp_path / "client.pem"))
    key = tmp_path / "client.key"
    key.write_text("not really a key")
    with pytest.raises(SettingsError, match="GLASSCITY_SSL_KEYFILE needs --ssl-certfile"):
        make(security_protocol="SSL", ssl_keyfile=str(key))


def test_main_exits_2_on_bad_security_settings_without_echoing_the_password(capsys):
    assert main(["topics", "list", "--sasl-username", "someone", "--sasl-password", PASSWORD]) == 2
    captured = capsys.readouterr()
    assert "no SASL authentication would happen" in captured.err
    assert PASSWORD not in captured.err + captured.out


# -- secrets stay secret ----------------------------------------------------------------------------------

def test_repr_hides_the_password_and_help_never_shows_it(password_file):
    settings = sasl()
    assert PASSWORD not in repr(settings) and "sasl_password='<secret>'" in repr(settings)
    for command in ("worker", "topics", "simulate", "acls", "dlq replay"):
        result = subprocess.run([sys.executable, "-m", "streams", *command.split(), "--help"], capture_output=True,
                                text=True, timeout=60,
                                env={"PATH": "/usr/bin:/bin", "GLASSCITY_SASL_PASSWORD": PASSWORD,
                                     "GLASSCITY_SECURITY_PROTOCOL": "SASL_SSL"})
        assert result.returncode == 0, result.stderr
        assert PASSWORD not in result.stdout + result.stderr
        assert "--sasl-password" in result.stdout and "GLASSCITY_SASL_PASSWORD_FILE" in result.stdout


def test_credentials_objects_do_not_show_the_password():
    assert PASSWORD not in repr(faust_credentials(sasl()))


def test_a_refused_password_from_the_environment_is_not_echoed():
    with pytest.raises(SettingsError) as error:
        settings_from(None, {"GLASSCITY_SASL_PASSWORD": PASSWORD, "GLASSCITY_SECURITY_PROTOCOL": "PLAINTEXT",
                             "GLASSCITY_SASL_USERNAME": "u"})
    assert PASSWORD not in str(error.value)


def test_no_log_line_carries_the_password(caplog, monkeypatch):
    import streams.kafka_security

    monkeypatch.setattr(streams.kafka_security, "_warned_plain_text", False)   # it warns once per process
    with caplog.at_level(logging.DEBUG):
        kafka_python_security(sasl(sasl_mechanism="PLAIN"))   # warns: PLAIN over an unencrypted connection
        faust_credentials(sasl())
    assert PASSWORD not in caplog.text
    assert "unencrypted" in caplog.text


# -- the translation for each protocol and mechanism -----------------------------------------------------

@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_client_options(mechanism, password_file):
    settings = sasl(sasl_mechanism=mechanism, sasl_password="", sasl_password_file=str(password_file))
    expected = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
                "sasl_plain_username": "glasscity-worker", "sasl_plain_password": PASSWORD}
    assert kafka_python_security(settings) == expected
    assert aiokafka_security(settings) == expected


def test_the_password_file_is_read_when_a_client_is_made(password_file):
    settings = sasl(sasl_password="", sasl_password_file=str(password_file))
    password_file.write_text("rotated-secret\n")
    assert kafka_python_security(settings)["sasl_plain_password"] == "rotated-secret"


def test_ssl_options_are_one_verifying_context(pki):
    settings = make(security_protocol="SSL", ssl_cafile=str(pki.ca))
    options = kafka_python_security(settings)
    assert set(options) == {"security_protocol", "ssl_context"} and options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True
    assert any(c["subject"] == ((("commonName", "test-ca"),),) for c in context.get_ca_certs())
    relaxed = ssl_context(make(security_protocol="SSL", ssl_cafile=str(pki.ca), ssl_check_hostname=False))
    assert relaxed.check_hostname is False and relaxed.verify_mode == ssl.CERT_REQUIRED


def test_sasl_ssl_with_a_client_certificate(pki):
    settings = sasl(security_protocol="SASL_SSL", ssl_cafile=str(pki.ca), ssl_certfile=str(pki.client_cert),
                    ssl_keyfile=str(pki.client_key))
    options = kafka_python_security(settings)
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_a_broken_tls_file_is_a_settings_error_not_a_traceback(tmp_path, pki):
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    settings = make(security_protocol="SSL", ssl_cafile=str(bogus))
    with pytest.raises(SettingsError, match="TLS settings .* cannot be used"):
        kafka_python_security(settings)


def test_option_names_are_the_clients_own():
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient

    names = set(kafka_python_security(sasl())) | {"ssl_context"}
    for client in (KafkaAdminClient, KafkaProducer, KafkaConsumer):
        assert names <= set(client.DEFAULT_CONFIG), client
    for client in (AIOKafkaConsumer, AIOKafkaProducer):
        assert names <= set(inspect.signature(client).parameters), client


# -- Faust --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_faust_sasl_credentials_carry_the_mechanism_to_aiokafka(mechanism):
    import faust
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
    from faust.types.auth import AuthProtocol, SASLMechanism

    credentials = faust_credentials(sasl(sasl_mechanism=mechanism))
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.mechanism == SASLMechanism(mechanism) and credentials.protocol == AuthProtocol.SASL_PLAINTEXT
    assert (credentials.username, credentials.password, credentials.ssl_context) == ("glasscity-worker", PASSWORD, None)
    auth = credentials_to_aiokafka_auth(credentials)
    assert auth == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
                    "sasl_plain_username": "glasscity-worker", "sasl_plain_password": PASSWORD, "ssl_context": None}


def test_faust_tls_credentials(pki):
    import faust
    from faust.types.auth import AuthProtocol

    ssl_only = faust_credentials(make(security_protocol="SSL", ssl_cafile=str(pki.ca)))
    assert isinstance(ssl_only, faust.SSLCredentials) and isinstance(ssl_only.context, ssl.SSLContext)
    assert ssl_only.protocol == AuthProtocol.SSL
    both = faust_credentials(sasl(security_protocol="SASL_SSL", ssl_cafile=str(pki.ca)))
    assert isinstance(both, faust.SASLCredentials) and both.protocol == AuthProtocol.SASL_SSL
    assert isinstance(both.ssl_context, ssl.SSLContext)


def test_the_faust_app_gets_the_credentials_and_the_replication_factor():
    import faust

    from streams.app import faust_settings

    settings = sasl(replication_factor=3)
    app = faust.App("security-test", **faust_settings(settings))
    assert app.conf.broker_credentials.mechanism.value == "SCRAM-SHA-512"
    assert app.conf.broker_credentials.username == "glasscity-worker"
    assert app.conf.topic_replication_factor == 3
    assert app.conf.topic_disable_leader is True   # no undeclared leader topic to grant under ACLs


# -- child processes ---------------------------------------------------------------------------------------

def test_a_child_process_connects_as_its_parent(password_file, pki):
    parent = sasl(security_protocol="SASL_SSL", sasl_password="", sasl_password_file=str(password_file),
                  ssl_cafile=str(pki.ca), ssl_check_hostname=False)
    env = security_environment(parent)
    assert set(env) == {env_name(SETTING_FIELDS[n]) for n in SECURITY_SETTINGS}
    assert PASSWORD not in "".join(env.values())     # the file travels as its path
    child = settings_from(None, {**env, "GLASSCITY_SASL_USERNAME": env["GLASSCITY_SASL_USERNAME"]})
    assert all(getattr(child, n) == getattr(parent, n) for n in SECURITY_SETTINGS)
    # ... and a parent on PLAINTEXT clears whatever the caller's environment held
    plain = security_environment(make())
    assert plain["GLASSCITY_SECURITY_PROTOCOL"] == "PLAINTEXT" and plain["GLASSCITY_SASL_USERNAME"] == ""


def test_the_demo_and_test_workers_get_the_security_environment(tmp_path, monkeypatch):
    import streams.demo as demo

    started = {}

    class FakePopen:
        def __init__(self, argv, env, **kwargs):
            started.update(env)

    monkeypatch.setattr(demo.subprocess, "Popen", FakePopen)
    monkeypatch.setenv("GLASSCITY_SASL_USERNAME", "leaked-from-the-callers-environment")
    demo.start_worker(make(), tmp_path / "worker.log")
    assert started["GLASSCITY_SECURITY_PROTOCOL"] == "PLAINTEXT" and started["GLASSCITY_SASL_USERNAME"] == ""


# -- every client gets the options --------------------------------------------------------------------------

class _Made(Exception):
    """Raised by a fake client constructor once it has recorded its options."""


class _EmptyDlq:
    """A consumer of an empty one-partition dead-letter topic (so the replay goes on to make its producer)."""

    def partitions_for_topic(self, topic):
        return {0}

    def assign(self, partitions):
        pass

    def seek_to_beginning(self, *partitions):
        pass

    def end_offsets(self, partitions):
        return {tp: 0 for tp in partitions}

    def poll(self, timeout_ms):
        return {}

    def close(self):
        pass


@pytest.fixture
def clients(monkeypatch):
    """Every kafka-python and aiokafka client constructor replaced: it records its options and raises."""
    import aiokafka
    import kafka
    import kafka.admin

    made: list[tuple[str, dict]] = []
    consumers = {"returns": None}

    def fake(name):
        def construct(*args, **kwargs):
            made.append((name, kwargs))
            if name == "KafkaConsumer" and consumers["returns"] is not None:
                return consumers["returns"]
            raise _Made(name)
        return construct

    monkeypatch.setattr(kafka, "KafkaConsumer", fake("KafkaConsumer"))
    monkeypatch.setattr(kafka, "KafkaProducer", fake("KafkaProducer"))
    monkeypatch.setattr(kafka.admin, "KafkaAdminClient", fake("KafkaAdminClient"))
    monkeypatch.setattr(aiokafka, "AIOKafkaConsumer", fake("AIOKafkaConsumer"))
    monkeypatch.setattr(aiokafka, "AIOKafkaProducer", fake("AIOKafkaProducer"))
    return made, consumers


def test_every_tool_that_talks_to_kafka_uses_the_security_options(clients):
    from streams.acls import apply_acls
    from streams.demo import AlertReader
    from streams.dlq import replay_dead_letters
    from streams.durable import read_changelog
    from streams.simulate.produce import produce
    from streams.topics import create_topics

    made, consumers = clients
    settings = sasl()
    tools = {
        "glasscity topics create": (lambda: create_topics(settings, timeout_s=0.1), "KafkaAdminClient"),
        "glasscity simulate": (lambda: produce([], settings), "KafkaProducer"),
        "glasscity dlq replay (reading)": (lambda: replay_dead_letters(settings, "water"), "KafkaConsumer"),
        "glasscity acls --apply": (lambda: apply_acls(settings, []), "KafkaAdminClient"),
        "worker changelog restore": (lambda: asyncio.run(read_changelog(
            settings.bootstrap, "t", {0: 0}, security=aiokafka_security(settings))), "AIOKafkaConsumer"),
    }
    for tool, (run, client) in tools.items():
        made.clear()
        with pytest.raises(_Made):
            run()
        assert [name for name, _ in made] == [client], tool
    checked = list(tools)

    made.clear()
    consumers["returns"] = _EmptyDlq()
    with pytest.raises(_Made):
        replay_dead_letters(settings, "water")       # goes on to make its producer
    assert [name for name, _ in made] == ["KafkaConsumer", "KafkaProducer"]
    consumers["returns"] = None
    checked.append("glasscity dlq replay (re-injecting)")

    made.clear()
    reader = AlertReader(settings)
    reader.run()                                    # the demo's and the tests' alert reader
    assert isinstance(reader.error, _Made) and [name for name, _ in made] == ["KafkaConsumer"]
    checked.append("demo alert reader")

    assert len(checked) == 7
    # (the last two clients are still in `made`; every client made above was checked the same way)


@pytest.mark.parametrize("password_from", ["setting", "file"])
def test_the_options_each_client_received(clients, password_from, password_file):
    from streams.dlq import replay_dead_letters
    from streams.topics import create_topics

    made, consumers = clients
    settings = sasl() if password_from == "setting" else \
        sasl(sasl_password="", sasl_password_file=str(password_file))
    for run in (lambda: create_topics(settings, timeout_s=0.1), lambda: replay_dead_letters(settings, "water")):
        with pytest.raises(_Made):
            run()
    consumers["returns"] = _EmptyDlq()
    with pytest.raises(_Made):
        replay_dead_letters(settings, "water")
    assert len(made) == 4
    for name, options in made:
        assert options["security_protocol"] == "SASL_PLAINTEXT", name
        assert options["sasl_mechanism"] == "SCRAM-SHA-512", name
        assert options["sasl_plain_username"] == "glasscity-worker", name
        assert options["sasl_plain_password"] == PASSWORD, name
