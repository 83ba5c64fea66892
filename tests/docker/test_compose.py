"""docker/compose.yml and the Grafana dashboard are valid and keep the documented contract.

There may be no container engine where the tests run: the compose file is checked with
``docker-compose config`` (Debian's package, installed on first use as root), which
parses, validates and interpolates it without an engine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.apt import ensure_binary

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yml"
DASHBOARD_DIR = DOCKER / "grafana" / "dashboards"



def _exported_metrics() -> tuple[set[str], set[str]]:
    """(metric names as Prometheus shows them, every sample name they expose), by introspecting the
    prometheus-client registry once the worker's modules are imported: a counter is ``<name>_total``, a
    histogram ``<name>`` with ``_bucket``, ``_sum`` and ``_count``; ``_created`` samples are left out."""
    import streams.app  # noqa: F401  (imports everything the worker registers)
    import streams.metrics  # noqa: F401
    from prometheus_client import REGISTRY

    metrics, samples = set(), set()
    for family in REGISTRY.collect():
        if not family.name.startswith("glasscity_"):
            continue
        if family.type == "counter":
            metrics.add(family.name + "_total")
            samples.add(family.name + "_total")
        elif family.type == "histogram":
            metrics.add(family.name)
            samples |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count")}
        else:
            metrics.add(family.name)
            samples.add(family.name)
    return metrics, samples


# Every metric the worker exports; the dashboard may use nothing else and must show each of them.
DOCUMENTED_METRICS, ALLOWED_SERIES = _exported_metrics()

SECRET_VARS = ("GLASSCITY_PSEUDONYM_KEY", "GRAFANA_ADMIN_PASSWORD")
# Obviously fake values, only for interpolation in this test.
TEST_ENV = {"GLASSCITY_PSEUDONYM_KEY": "compose-test-sentinel-key-0000",
            "GRAFANA_ADMIN_PASSWORD": "compose-test-sentinel-password"}
SERVICES = {"kafka", "acls", "kafka-setup", "topics", "worker", "prometheus", "grafana"}
#: The glasscity services that talk to Kafka, and the principal (SASL user) each logs in as.
KAFKA_CLIENTS = {"topics": "glasscity-topics", "worker": "glasscity-worker"}
#: Every principal kafka-setup gives a SCRAM credential (clients on the host use the others).
PRINCIPALS = {"glasscity-worker", "glasscity-topics", "glasscity-ingress", "glasscity-operations",
              "glasscity-welfare", "glasscity-registrar", "glasscity-auditor"}


def _compose(*args: str, env_overrides: dict[str, str] | None = None, drop: tuple[str, ...] = ()) \
        -> subprocess.CompletedProcess:
    exe = ensure_binary("docker-compose", "docker-compose")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLASSCITY_", "COMPOSE_", "GRAFANA_"))}
    env.update(TEST_ENV)
    env.update(env_overrides or {})
    for name in drop:
        env.pop(name, None)
    return subprocess.run([exe, "-f", str(COMPOSE), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def _key_paths(yaml_text: str) -> dict[tuple[str, ...], str]:
    """Map every mapping key path of block-style YAML (as ``config`` prints it) to its inline value."""
    paths: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []
    for line in yaml_text.splitlines():
        m = re.match(r"^( *)([A-Za-z0-9_.\-]+|'[^']*'|\"[^\"]*\"):(?: (.*))?$", line)
        if not m:
            continue
        indent, key, value = len(m.group(1)), m.group(2).strip("'\""), (m.group(3) or "").strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        paths[tuple(k for _, k in stack)] = value
    return paths


@pytest.fixture(scope="module")
def config() -> dict[tuple[str, ...], str]:
    proc = _compose("config")
    assert proc.returncode == 0, f"docker-compose config failed:\n{proc.stderr}"
    return _key_paths(proc.stdout)


def test_compose_file_is_valid_and_has_the_services(config):
    proc = _compose("config", "--services")
    assert proc.returncode == 0, proc.stderr
    assert SERVICES <= set(proc.stdout.split())
    for service in SERVICES:
        assert ("services", service) in config


@pytest.fixture(scope="module")
def config_text() -> str:
    proc = _compose("config")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _service_block(text: str, service: str) -> str:
    """The lines of one service in ``config``'s block-style output."""
    lines = text.splitlines()
    start = lines.index(f"  {service}:")
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^  \S|^\S", lines[i])), len(lines))
    return "\n".join(lines[start:end])


def _environment(config, service: str) -> dict[str, str]:
    return {path[-1]: value.strip("'\"") for path, value in config.items()
            if path[:3] == ("services", service, "environment") and len(path) == 4}


def test_worker_environment(config):
    env = {path[-1]: value for path, value in config.items()
           if path[:3] == ("services", "worker", "environment") and len(path) == 4}
    for name in ("GLASSCITY_BOOTSTRAP", "GLASSCITY_PARTITIONS", "GLASSCITY_PSEUDONYM_KEY",
                 "GLASSCITY_METRICS_PORT"):
        assert name in env, f"worker environment lacks {name}"
    assert env["GLASSCITY_BOOTSTRAP"].strip("'\"") == "kafka:9092"
    # The key reaches the worker from the caller's environment / docker/.env ...
    assert env["GLASSCITY_PSEUDONYM_KEY"].strip("'\"") == TEST_ENV["GLASSCITY_PSEUDONYM_KEY"]
    assert ("services", "topics", "environment", "GLASSCITY_BOOTSTRAP") in config


def test_compose_refuses_to_run_without_the_secrets(tmp_path):
    # ... and without it the configuration is an error, not a worker with an empty key.
    # (A docker/.env beside the compose file would supply it, so only run when absent.)
    if (DOCKER / ".env").exists():
        pytest.skip("docker/.env exists and supplies the secrets")
    for name in SECRET_VARS:
        proc = _compose("config", "-q", drop=(name,))
        assert proc.returncode != 0, f"compose config accepted a missing {name}"
        assert name in proc.stderr


def _files_that_may_hold_secrets() -> list[Path]:
    return [p for p in DOCKER.rglob("*") if p.is_file() and p.name != ".env"]


def test_no_secret_value_in_the_repository_files():
    assignment = re.compile(r"(?P<name>[A-Z0-9_]*(?:KEY|PASSWORD|SECRET|TOKEN)[A-Z0-9_]*)\s*[:=]\s*(?P<value>\S.*)$")
    for path in _files_that_may_hold_secrets():
        text = path.read_text(errors="replace")
        for sentinel in TEST_ENV.values():
            assert sentinel not in text, f"{path}: holds a test secret value"
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                continue
            m = assignment.search(line)
            if not m:
                continue
            value = m.group("value").strip().strip("'\"")
            if m.group("name").endswith("_FILE") and value.startswith("/run/secrets/"):
                continue   # a file that holds the secret (a mounted Compose secret), not a secret
            if path.name == ".env.example":
                assert value.startswith("replace-with"), f"{path}: {m.group('name')} is not a placeholder"
            else:
                assert value.startswith("${"), f"{path}: {m.group('name')} has a literal value, not ${{...}}"
    example = (DOCKER / ".env.example").read_text()
    for name in SECRET_VARS:
        assert re.search(rf"^{name}=", example, re.M), f".env.example does not document {name}"


# -- least privilege: SASL for every client, ACLs from `glasscity acls` -----------------------------------

def _listeners(env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """listener name -> (bind address, security protocol)."""
    protocols = dict(item.split(":", 1) for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    bound = {}
    for item in env["KAFKA_LISTENERS"].split(","):
        name, _, address = item.partition("://")
        bound[name] = (address.rpartition(":")[0], protocols[name])
    return bound


def test_the_broker_authenticates_every_client_and_denies_by_default(config):
    env = _environment(config, "kafka")
    listeners = _listeners(env)
    for name, (host, protocol) in listeners.items():
        # a listener without authentication is reachable from the broker's own loopback only
        assert protocol.startswith("SASL_") or host == "127.0.0.1", f"{name} is {protocol} on {host or 'any address'}"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    # the only super user is the unauthenticated principal of those loopback listeners
    assert env["KAFKA_SUPER_USERS"] == "User:ANONYMOUS"
    assert listeners[env["KAFKA_INTER_BROKER_LISTENER_NAME"]][0] == "127.0.0.1"
    assert listeners[env["KAFKA_CONTROLLER_LISTENER_NAMES"]][0] == "127.0.0.1"
    # the host port leads to a SASL listener
    published = [v for p, v in config.items() if p[:3] == ("services", "kafka", "ports")] or \
        re.findall(r"127\.0\.0\.1:9094:9094", COMPOSE.read_text())
    assert published
    host_listener = next(n for n, (h, _) in listeners.items() if n == "HOST")
    assert listeners[host_listener][1].startswith("SASL_") and ":9094" in env["KAFKA_LISTENERS"]
    jaas = (DOCKER / "kafka" / "kafka_server_jaas.conf").read_text()
    assert "ScramLoginModule required" in jaas and "password" not in jaas.lower().replace("passwords", "")


def test_each_service_logs_in_as_its_own_principal_with_a_password_file(config, config_text):
    users = {}
    for service, principal in KAFKA_CLIENTS.items():
        env = _environment(config, service)
        assert env["GLASSCITY_BOOTSTRAP"] == "kafka:9092"
        assert env["GLASSCITY_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT" and env["GLASSCITY_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert "GLASSCITY_SASL_PASSWORD" not in env, f"{service}: a password in the environment"
        assert env["GLASSCITY_SASL_USERNAME"] == principal
        secret = env["GLASSCITY_SASL_PASSWORD_FILE"].removeprefix("/run/secrets/")
        assert f"- source: {secret}" in _service_block(config_text, service), f"{service} does not mount {secret}"
        users[service] = principal
    assert len(set(users.values())) == len(users)
    secrets = re.findall(r"^  (\w+):\n    file: (\S+)$", config_text.split("\nservices:\n")[0], re.M)
    assert secrets and all(path.startswith(str(DOCKER / "secrets") + "/") for _, path in secrets)


def test_kafka_setup_gives_every_principal_a_credential_and_applies_the_acls(config, config_text):
    block = _service_block(config_text, "kafka-setup")
    assert "network_mode: service:kafka" in block
    assert re.search(r"acls:\n\s+condition: service_completed_successfully", block)
    assert re.search(r"kafka:\n\s+condition: service_healthy", block)
    users = dict(entry.split(":") for entry in _scram_users(block))
    assert set(users) == PRINCIPALS
    for user, secret in users.items():
        assert f"- source: {secret}" in block, f"kafka-setup does not mount {secret} for {user}"
    # topics (and so the workers) wait for it
    assert re.search(r"kafka-setup:\n\s+condition: service_completed_successfully", _service_block(config_text, "topics"))


def _scram_users(block: str) -> list[str]:
    m = re.search(r"GLASSCITY_SCRAM_USERS: (.*?)\n    \w", block, re.S)
    return m.group(1).split()


def _acl_script(config, config_text, tmp_path) -> str:
    """The script the acls service writes, made by running its command with its environment."""
    from streams.cli import main

    block = _service_block(config_text, "acls")
    command = re.findall(r"^    - (\S+)$", block.split("command:\n")[1].split("\n    environment:")[0], re.M)
    assert command[0] == "acls"
    out = tmp_path / "acls.sh"
    args = list(command)
    args[args.index("--output") + 1] = str(out)
    saved = {k: v for k, v in os.environ.items() if k.startswith("GLASSCITY_")}
    for k in saved:
        del os.environ[k]                     # the service's environment only, not the caller's
    os.environ.update(_environment(config, "acls"))
    try:
        assert main(args) == 0
    finally:
        for k in [k for k in os.environ if k.startswith("GLASSCITY_")]:
            del os.environ[k]
        os.environ.update(saved)
    return out.read_text()


def _grants(script: str) -> set[tuple[str, str, str]]:
    import shlex

    grants = set()
    for line in script.splitlines():
        if line.startswith('"$KAFKA_ACLS"'):
            words = shlex.split(line)[1:]
            principal = words[words.index("--allow-principal") + 1]
            operations = [words[i + 1] for i, w in enumerate(words) if w == "--operation"]
            names = [words[i + 1] for i, w in enumerate(words) if w in ("--topic", "--group")]
            grants |= {(principal, op, name) for op in operations for name in names}
    return grants


def test_the_generated_acls_match_the_services_principals(config, config_text, tmp_path):
    script = _acl_script(config, config_text, tmp_path)
    assert "--bootstrap-server 127.0.0.1:9091" in script            # kafka-setup's view of the LOCAL listener
    assert 'KAFKA_ACLS="${KAFKA_ACLS:-/opt/kafka/bin/kafka-acls.sh}"' in script
    grants = _grants(script)
    worker = "User:" + _environment(config, "worker")["GLASSCITY_SASL_USERNAME"]
    topics = "User:" + _environment(config, "topics")["GLASSCITY_SASL_USERNAME"]
    readers = lambda topic: {p for p, op, name in grants if op == "Read" and name == topic}  # noqa: E731
    assert readers("glasscity.alerts.welfare.v1") == {"User:glasscity-welfare"}
    assert readers("glasscity.alerts.v1") == {"User:glasscity-operations"}
    for kind in ("readings", "dlq", "late", "state"):
        assert readers(f"glasscity.water.{kind}.v1") == {worker}
    assert (worker, "Read", "glasscity") in grants                  # its consumer group
    assert (topics, "Create", "glasscity.") in grants
    assert {p for p, op, name in grants if op == "Write" and name == "glasscity.water.readings.v1"} \
        == {worker, "User:glasscity-ingress"}
    assert {p.removeprefix("User:") for p, _, _ in grants} == PRINCIPALS
    registrar = "User:" + _environment(config, "registrar")["GLASSCITY_SASL_USERNAME"]
    for register in ("enrolment", "absence", "objection"):      # pseudonyms only, but still: need to know
        assert readers(f"glasscity.consent.{register}.v1") == {worker, registrar}
    assert readers("glasscity.audit.v1") == {registrar, "User:glasscity-auditor"}


def _fake_kafka_tools(directory: Path, log: Path) -> Path:
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    configs = bin_dir / "kafka-configs.sh"
    # records its arguments, and the content of the --add-config-file it was given (deleted after)
    configs.write_text(f'#!/bin/sh\necho "configs $*" >> {log}\n'
                       f'while [ $# -gt 0 ]; do [ "$1" = --add-config-file ] && cat "$2" >> {log}; shift; done\n')
    acls = bin_dir / "kafka-acls.sh"
    acls.write_text(f'#!/bin/sh\necho "acls $*" >> {log}\n')
    configs.chmod(0o755)
    acls.chmod(0o755)
    return bin_dir


def test_the_setup_script_sets_credentials_from_files_and_runs_the_acl_script(config, config_text, tmp_path):
    made = tmp_path / "made"
    made.mkdir()
    script = tmp_path / "acls.sh"
    script.write_text(_acl_script(config, config_text, made))          # as the acls service writes it
    log = tmp_path / "calls"
    bin_dir = _fake_kafka_tools(tmp_path, log)
    credentials = tmp_path / "secrets"
    credentials.mkdir()
    users = dict(e.split(":") for e in _scram_users(_service_block(config_text, "kafka-setup")))
    passwords = {}
    for user, secret in users.items():
        passwords[user] = f"{user.replace('glasscity-', '')}0123456789abcdef"
        (credentials / secret).write_text(passwords[user] + "\n")
    env = {"PATH": "/usr/bin:/bin", "KAFKA_BIN": str(bin_dir), "GLASSCITY_SETUP_CREDENTIALS_DIR": str(credentials),
           "GLASSCITY_ACL_SCRIPT": str(script), "GLASSCITY_SCRAM_USERS": " ".join(f"{u}:{s}" for u, s in users.items())}
    setup = DOCKER / "kafka" / "setup.sh"
    assert subprocess.run(["bash", "-n", str(setup)]).returncode == 0
    result = subprocess.run(["bash", str(setup)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    for user, password in passwords.items():
        assert any(c.startswith("configs --bootstrap-server 127.0.0.1:9091 --alter --entity-type users "
                                f"--entity-name {user} --add-config-file ") for c in calls), user
        assert f"SCRAM-SHA-512=iterations=8192,password={password}" in calls     # read from its file ...
        assert not any(password in c for c in calls if c.startswith(("configs ", "acls ")))  # ... never an argument
        assert password not in result.stdout + result.stderr
    assert sum(c.startswith("acls --bootstrap-server 127.0.0.1:9091 --add ") for c in calls) >= 5
    # a missing password file stops it before anything is applied
    (credentials / users["glasscity-welfare"]).unlink()
    log.unlink()
    result = subprocess.run(["bash", str(setup)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "missing or empty; run docker/make-secrets.sh" in result.stderr
    assert not any(c.startswith("acls ") for c in log.read_text().splitlines())


def test_make_secrets_writes_one_random_password_per_principal_and_keeps_them(tmp_path):
    copy = tmp_path / "docker"
    copy.mkdir()
    (copy / "make-secrets.sh").write_text((DOCKER / "make-secrets.sh").read_text())
    result = subprocess.run(["sh", str(copy / "make-secrets.sh")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    files = sorted((copy / "secrets").iterdir())
    compose_files = set(re.findall(r"file: \./secrets/(\S+)", COMPOSE.read_text()))
    assert {f.name for f in files} == compose_files
    values = [f.read_text() for f in files]
    assert all(re.fullmatch(r"[0-9a-f]{48}", v) for v in values) and len(set(values)) == len(values)
    assert (copy / "secrets").stat().st_mode & 0o777 == 0o700
    again = subprocess.run(["sh", str(copy / "make-secrets.sh")], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and [f.read_text() for f in files] == values
    ignored = (ROOT / ".gitignore").read_text() + (ROOT / ".dockerignore").read_text()
    assert ignored.count("docker/secrets/") == 2      # never committed, never copied into the image


_PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                    "unless", "offset", "inf", "nan"}


def _metric_names(promql: str) -> set[str]:
    """Metric names a PromQL expression selects (including ``__name__`` matchers)."""
    names = set(re.findall(r"__name__\s*=~?\s*\"([^\"]*)\"", promql))
    expr = re.sub(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'", '""', promql)  # strings
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range / subquery durations
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)  # label lists
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)  # Grafana variables
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)\b(\s*\()?", expr):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in _PROMQL_KEYWORDS:
            continue
        names.add(word)
    return names


def _grafana_query_to_promql(query: str) -> str | None:
    """PromQL inside a Grafana query; variable functions are unwrapped, ``metrics()`` is None."""
    query = query.strip()
    m = re.fullmatch(r"label_values\((.*),\s*[A-Za-z_]\w*\s*\)", query, re.S)
    if m:
        return m.group(1)
    if re.fullmatch(r"label_values\(\s*[A-Za-z_]\w*\s*\)|label_names\(\s*\)|metrics\(.*\)", query, re.S):
        return None  # no metric selected
    m = re.fullmatch(r"query_result\((.*)\)", query, re.S)
    return m.group(1) if m else query


def _dashboard_queries(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                found.append(value)
            elif key in ("query", "definition") and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_dashboard_queries(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_dashboard_queries(item))
    return found


def _dashboards() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def test_metric_name_extraction():
    assert _metric_names('histogram_quantile(0.99, sum by (kernel, le) '
                         '(rate(glasscity_kernel_batch_duration_seconds_bucket{domain=~"$domain"}[5m])))') \
        == {"glasscity_kernel_batch_duration_seconds_bucket"}
    assert _metric_names(_grafana_query_to_promql("label_values(glasscity_alerts_total, detector)")) \
        == {"glasscity_alerts_total"}
    assert _metric_names("sum(rate(other_metric[1m])) / 2") == {"other_metric"}
    assert _metric_names('{__name__="x_total"}') == {"x_total"}


def test_grafana_dashboard_uses_only_documented_metrics():
    dashboards = _dashboards()
    assert (DASHBOARD_DIR / "glasscity.json") in dashboards
    used: set[str] = set()
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        queries = _dashboard_queries(dashboard)
        assert queries, f"{path.name}: no PromQL queries found"
        for q in queries:
            q = _grafana_query_to_promql(q)
            if q is None:
                continue
            names = _metric_names(q)
            assert names, f"{path.name}: query selects no metric: {q}"
            unknown = names - ALLOWED_SERIES
            assert not unknown, f"{path.name}: undocumented metric(s) {sorted(unknown)} in {q}"
            used |= names
    shown = {n for n in DOCUMENTED_METRICS if any(u == n or u.startswith(n + "_") for u in used)}
    assert shown == DOCUMENTED_METRICS, f"dashboard does not show {sorted(DOCUMENTED_METRICS - shown)}"


def test_grafana_and_prometheus_provisioning_files_exist():
    assert list((DOCKER / "grafana" / "provisioning" / "datasources").glob("*.yml"))
    assert list((DOCKER / "grafana" / "provisioning" / "dashboards").glob("*.yml"))
    prom = (DOCKER / "prometheus" / "prometheus.yml").read_text()
    assert "9464" in prom and "worker" in prom
