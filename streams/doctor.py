"""``glasscity doctor``: check a deployment's configuration and say what to fix.

Checks, in this order (later ones need the earlier ones' answers):

1. **settings**: the flags and ``GLASSCITY_*`` variables validate, and so does the thresholds file;
2. **broker tcp**: every bootstrap server accepts a TCP connection;
3. **broker kafka**: each answers a Kafka ApiVersions request (an aiokafka connection, with the
   configured TLS/SASL), so a web server or another service on that port is reported as
   "not a Kafka broker";
4. **topics**: every topic of :func:`streams.topics.topic_specs` exists, with its expected
   partition count and configs (read with ListTopics, Metadata and DescribeConfigs only: the
   doctor never creates a topic);
5. **pseudonym key**: set, at least 16 bytes, not a placeholder, its file not readable by others;
6. **metrics port**: free to bind, or already serving glasscity's ``/metrics`` (a running worker).
7. **page port**: the same for the control room's page, a warning only (the worker runs on without it).

Each check prints one line, ``ok``, ``warn`` or ``FAIL``, then what was found and, unless ok,
what to do. :func:`run_doctor` returns 0 when nothing failed (warnings are advice), else 1.
Secrets are never printed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import sys
import urllib.request
from typing import Callable
from typing import NamedTuple

from streams.config import Settings, SettingsError, settings_from

__all__ = ["Finding", "run_doctor", "check_settings", "check_broker_tcp", "check_broker_kafka", "check_topics",
           "check_pseudonym_key", "check_metrics_port", "placeholder_reason"]

OK, WARN, FAIL = "ok", "warn", "FAIL"
#: Words that mark a key someone meant to replace (lower case).
PLACEHOLDER_WORDS = ("changeme", "change-me", "change_me", "placeholder", "example", "replace", "your-key",
                     "yourkey", "secret", "password", "dummy", "default", "xxxx", "test", "demo", "sample")
#: Fewer distinct bytes than this in a key means it was typed, not generated (e.g. "aaaaaaaaaaaaaaaa").
MIN_DISTINCT_BYTES = 8


class Finding(NamedTuple):
    status: str     # ok | warn | FAIL
    check: str      # e.g. "broker kafka"
    found: str      # what was seen
    fix: str = ""   # what to do (empty when ok)

    def line(self) -> str:
        return f"{self.status:4} {self.check}: {self.found}" + (f" -- fix: {self.fix}" if self.fix else "")


def _servers(settings: Settings) -> list[tuple[str, int]]:
    servers = []
    for item in settings.bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        try:
            servers.append((host or "127.0.0.1", int(port)))
        except ValueError:
            raise SettingsError(f"--bootstrap / GLASSCITY_BOOTSTRAP: {item.strip()!r} is not host:port") from None
    return servers


def check_settings(args) -> tuple[Settings | None, list[Finding]]:
    """The settings object and the thresholds file, as the worker builds them."""
    from streams.detectors import CONFIGURABLE
    from streams.detectors.thresholds import load_thresholds
    from streams.domains import select_domains

    try:
        settings = settings_from(args)
        _servers(settings)
        domains = select_domains(settings.domains)
        load_thresholds(settings.thresholds_file, CONFIGURABLE)
    except (SettingsError, ValueError) as error:
        return None, [Finding(FAIL, "settings", str(error), "correct the flag or GLASSCITY_* variable named "
                                                            "(`glasscity config reference` lists them)")]
    names = ", ".join(d.name for d in domains)
    thresholds = f", thresholds from {settings.thresholds_file}" if settings.thresholds_file else ""
    return settings, [Finding(OK, "settings", f"valid (bootstrap {settings.bootstrap}, topic prefix "
                                              f"{settings.topic_prefix}, domains {names}{thresholds})")]


def check_broker_tcp(settings: Settings, timeout_s: float) -> list[Finding]:
    findings = []
    for host, port in _servers(settings):
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                findings.append(Finding(OK, "broker tcp", f"{host}:{port} accepts connections"))
        except OSError as error:
            findings.append(Finding(FAIL, "broker tcp", f"nothing accepts connections at {host}:{port} "
                                                        f"({error.strerror or error})",
                                    f"start a broker (`glasscity broker --port {port}`) or point --bootstrap / "
                                    f"GLASSCITY_BOOTSTRAP at a running one"))
    return findings


async def _api_versions(host: str, port: int, settings: Settings, timeout_s: float) -> int:
    """Number of APIs the server announces in its ApiVersions answer (aiokafka's connection handshake)."""
    from aiokafka.conn import create_conn

    from streams.kafka_security import aiokafka_security

    connection = await asyncio.wait_for(
        create_conn(host, port, client_id="glasscity-doctor", request_timeout_ms=int(timeout_s * 1000),
                    **aiokafka_security(settings)), timeout_s * 2)
    try:
        return len(connection._versions)    # filled by the handshake's ApiVersions response
    finally:
        connection.close()


def check_broker_kafka(settings: Settings, timeout_s: float) -> list[Finding]:
    from aiokafka.errors import KafkaError, UnsupportedSaslMechanismError

    findings = []
    for host, port in _servers(settings):
        try:
            count = asyncio.run(_api_versions(host, port, settings, timeout_s))
            findings.append(Finding(OK, "broker kafka", f"{host}:{port} is a Kafka broker (ApiVersions: {count} "
                                                        f"APIs)"))
        except UnsupportedSaslMechanismError as error:
            findings.append(Finding(FAIL, "broker kafka", f"{host}:{port} does not offer SASL "
                                                          f"{settings.sasl_mechanism}: {error}",
                                    "set --sasl-mechanism to one the broker enables"))
        except SettingsError as error:     # TLS files or password file unusable
            findings.append(Finding(FAIL, "broker kafka", str(error), "fix the TLS/SASL settings named"))
        except (OSError, KafkaError, asyncio.TimeoutError, ValueError, AssertionError) as error:
            login = (f" or refused the SASL {settings.sasl_mechanism} login of {settings.sasl_username!r}"
                     if settings.sasl_username else "")
            findings.append(Finding(FAIL, "broker kafka", f"{host}:{port} accepts connections but is not a Kafka "
                                                          f"broker{login} (no ApiVersions answer: "
                                                          f"{type(error).__name__}{': ' if str(error) else ''}"
                                                          f"{str(error)[:120]})",
                                    "point --bootstrap / GLASSCITY_BOOTSTRAP at the Kafka listener (host:port), "
                                    "not another service on that port"))
    return findings


async def _describe(settings: Settings, names: list[str], timeout_s: float) -> tuple[set, dict, dict]:
    """(existing topic names, {name: partition count}, {name: {config: value}}) for ``names``."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from streams.kafka_security import aiokafka_security

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="glasscity-doctor",
                                request_timeout_ms=int(timeout_s * 1000), **aiokafka_security(settings))
    await asyncio.wait_for(admin.start(), timeout_s * 2)
    try:
        existing = set(await admin.list_topics())
        present = [n for n in names if n in existing]     # describing a missing topic may auto-create it
        partitions, configs = {}, {}
        if present:
            for topic in await admin.describe_topics(present):
                partitions[topic["topic"]] = len(topic["partitions"])
            resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in present]
            for response in await admin.describe_configs(resources):
                for resource in response.resources:
                    _code, _message, _type, name, entries = resource[:5]
                    configs[name] = {entry[0]: entry[1] for entry in entries}
        return existing, partitions, configs
    finally:
        await admin.close()


def check_topics(settings: Settings, timeout_s: float) -> list[Finding]:
    from aiokafka.errors import KafkaError

    from streams.topics import topic_specs

    specs = {settings.topic(spec.short): spec for spec in topic_specs(settings)}
    try:
        existing, partitions, configs = asyncio.run(_describe(settings, list(specs), timeout_s))
    except (OSError, KafkaError, asyncio.TimeoutError) as error:
        return [Finding(FAIL, "topics", f"cannot list topics at {settings.bootstrap}: {type(error).__name__} "
                                        f"{error}"[:200], "see the broker checks above")]
    findings = []
    missing = [name for name in specs if name not in existing]
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        findings.append(Finding(FAIL, "topics", f"{len(missing)} of {len(specs)} missing: {shown}",
                                "`glasscity topics create` with the same --bootstrap, --topic-prefix and "
                                "--domains"))
    wrong_counts = [f"{name} has {partitions[name]} (expected {spec.partitions})"
                    for name, spec in specs.items() if name in partitions and partitions[name] != spec.partitions]
    if wrong_counts:
        findings.append(Finding(FAIL, "topics", "partition counts differ: " + "; ".join(wrong_counts[:4]),
                                "set --partitions / GLASSCITY_PARTITIONS to the topics' count, or recreate "
                                "the topics (state is co-partitioned with readings)"))
    wrong_configs = []
    for name, spec in specs.items():
        if name not in configs:
            continue
        for key, value in spec.configs.items():
            actual = configs[name].get(key)
            if actual != value:
                wrong_configs.append(f"{name} {key}={actual if actual is not None else '(unset)'} "
                                     f"(expected {value})")
    if wrong_configs:
        findings.append(Finding(WARN, "topics", "configs differ: " + "; ".join(wrong_configs[:4]) +
                                (f" and {len(wrong_configs) - 4} more" if len(wrong_configs) > 4 else ""),
                                "alter them (kafka-configs.sh --alter) or recreate the topics: `glasscity "
                                "topics create` leaves existing topics as they are"))
    if not findings:
        findings.append(Finding(OK, "topics", f"all {len(specs)} exist with the expected partition counts and "
                                              f"configs"))
    return findings


def placeholder_reason(key: bytes) -> str | None:
    """Why ``key`` looks like a placeholder rather than a generated secret, or None."""
    lowered = key.lower()
    for word in PLACEHOLDER_WORDS:
        if word.encode() in lowered:
            return f"it contains the word {word!r}"
    if len(set(key)) < MIN_DISTINCT_BYTES:
        return f"it has only {len(set(key))} distinct characters"
    return None


GENERATE_KEY = ("generate one (`openssl rand -hex 32 > pseudonym.key; chmod 600 pseudonym.key`) and set "
                "GLASSCITY_PSEUDONYM_KEY_FILE=pseudonym.key")


def check_pseudonym_key(settings: Settings) -> list[Finding]:
    if not (settings.pseudonym_key or settings.pseudonym_key_file):
        return [Finding(FAIL, "pseudonym key", "not set (the worker refuses to start without it)", GENERATE_KEY)]
    try:
        key = settings.require_pseudonym_key()
    except SettingsError as error:
        return [Finding(FAIL, "pseudonym key", str(error), GENERATE_KEY)]
    reason = placeholder_reason(key)
    if reason:
        return [Finding(FAIL, "pseudonym key", f"looks like a placeholder: {reason}", GENERATE_KEY)]
    findings = [Finding(OK, "pseudonym key", f"set ({len(key)} bytes{', from a file' if settings.pseudonym_key_file else ''})")]
    if settings.pseudonym_key_file:
        mode = os.stat(settings.pseudonym_key_file).st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            findings.append(Finding(WARN, "pseudonym key", f"{settings.pseudonym_key_file} is readable by other "
                                                           f"users (mode {stat.filemode(mode)})",
                                    f"chmod 600 {settings.pseudonym_key_file}"))
    return findings


def _serves(host: str, port: int, path: str, marker: bytes, timeout_s: float) -> bool:
    """Whether http://host:port/path answers with ``marker`` in its body (a glasscity worker serves it)."""
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return marker in response.read(16_000_000)
    except (OSError, ValueError):
        return False


def _bind_error(host: str, port: int) -> OSError | None:
    """Why ``host``:``port`` cannot be bound, or None. SO_REUSEADDR as both of the worker's servers bind
    (http.server and aiohttp set it): old connections in TIME_WAIT do not block it."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
        return None
    except OSError as error:
        return error


def _check_port(name: str, host: str, port: int, ours: Callable[[], bool], served: str,
                taken: Callable[[OSError], Finding]) -> list[Finding]:
    if port == 0:
        return [Finding(OK, name, "0: the worker takes any free port and prints it")]
    error = _bind_error(host, port)
    if error is None:
        return [Finding(OK, name, f"{host}:{port} is free")]
    if ours():
        return [Finding(OK, name, f"{host}:{port} already serves {served} (a worker runs there)")]
    return [taken(error)]


def check_metrics_port(settings: Settings, timeout_s: float) -> list[Finding]:
    host, port = settings.metrics_host, settings.metrics_port
    return _check_port(
        "metrics port", host, port, lambda: _serves(host, port, "/metrics", b"glasscity_", timeout_s),
        "glasscity /metrics",
        lambda error: Finding(FAIL, "metrics port", f"cannot bind {host}:{port}: {error.strerror or error}, and it "
                                                    f"does not serve glasscity /metrics",
                              "choose another --metrics-port / GLASSCITY_METRICS_PORT (0 = any free port) or stop "
                              "what holds it"))


def check_page_port(settings: Settings, timeout_s: float) -> list[Finding]:
    """The control room's page port: a taken one is a warning (the worker then runs without its page)."""
    host, port = settings.page_host, settings.page_port
    if not settings.page:
        return [Finding(OK, "page port", "the control-room page is off (--page 0)")]
    return _check_port(
        "page port", host, port, lambda: _serves(host, port, "/api/state", b'"view"', timeout_s),
        "the control-room page",
        lambda error: Finding(WARN, "page port", f"cannot bind {host}:{port}: {error.strerror or error}; a worker "
                                                 f"started now would run without its control-room page",
                              "choose another --page-port / GLASSCITY_PAGE_PORT (0 = any free port) or stop what "
                              "holds it"))


def run_doctor(args, timeout_s: float = 5.0, out=None) -> int:
    """Run every check, print one line each as it completes; 0 if none failed, else 1."""
    out = out or sys.stdout
    failed = False

    def report(findings: list[Finding]) -> bool:
        nonlocal failed
        for finding in findings:
            print(finding.line(), file=out, flush=True)
            failed = failed or finding.status == FAIL
        return all(f.status != FAIL for f in findings)

    settings, findings = check_settings(args)
    if not report(findings):
        print(f"{WARN:4} broker, topics, pseudonym key, metrics port: not checked until the settings are valid",
              file=out)
        return 1
    if report(check_broker_tcp(settings, timeout_s)) and report(check_broker_kafka(settings, timeout_s)):
        report(check_topics(settings, timeout_s))
    else:
        print(f"{WARN:4} topics: not checked without a Kafka broker", file=out)
    report(check_pseudonym_key(settings))
    report(check_metrics_port(settings, timeout_s))
    report(check_page_port(settings, timeout_s))
    return 1 if failed else 0
