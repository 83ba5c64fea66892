"""docker/compose.yml refuses the placeholder secrets of docker/.env.example.

Compose can only refuse an unset variable (``${VAR:?}``), so ``docker-compose config``
accepts the placeholders; the ``secrets-check`` service refuses them, and every service
that is given a secret waits for it to complete successfully. There is no container
engine here: these tests take the service's command, environment, mounts and secrets
from ``docker-compose config`` and run that command on this host as the container would
(its image is Debian-based, ``/bin/sh`` is dash there and here).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.docker.test_compose import DOCKER, SECRET_VARS, _compose

EXAMPLE = DOCKER / ".env.example"
CHECK = "secrets-check"
#: Where Compose mounts a service's secrets in its container.
SECRETS_MOUNT = "/run/secrets"


def _example_env() -> dict[str, str]:
    """The NAME=value lines of .env.example, as `cp docker/.env.example docker/.env` would give."""
    values = {}
    for line in EXAMPLE.read_text().splitlines():
        m = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if m:
            values[m.group(1)] = m.group(2)
    return values


def _real_env() -> dict[str, str]:
    return {"GLASSCITY_PSEUDONYM_KEY": secrets.token_hex(32), "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(18)}


def _config(env: dict[str, str]) -> dict:
    proc = _compose("config", env_overrides=env)
    assert proc.returncode == 0, f"docker-compose config failed:\n{proc.stderr}"
    return yaml.safe_load(proc.stdout)


@pytest.fixture(scope="module")
def made_secrets(tmp_path_factory) -> Path:
    """docker/secrets/ as `sh docker/make-secrets.sh` writes it, in a copy of docker/."""
    copy = tmp_path_factory.mktemp("docker")
    shutil.copy(DOCKER / "make-secrets.sh", copy / "make-secrets.sh")
    proc = subprocess.run(["sh", str(copy / "make-secrets.sh")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return copy / "secrets"


def _bind_mounts(service: dict) -> dict[str, str]:
    """container path -> host path of a service's bind mounts (short or long syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        if source.startswith("/"):
            mounts[target] = source
    return mounts


def _run_check(config: dict, secrets_dir: Path, tmp_path: Path,
               replace: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the secrets-check service's command on this host, its mounts and secrets mapped to files here.

    ``replace`` overrides the content of some secret files (secret name -> content).
    """
    service = config["services"][CHECK]
    mounted = tmp_path / "run-secrets"
    mounted.mkdir(parents=True)
    for name in service.get("secrets", []):
        name = name if isinstance(name, str) else name["source"]
        source = secrets_dir / Path(config["secrets"][name]["file"]).name
        content = (replace or {}).get(name, source.read_text() if source.exists() else None)
        if content is not None:
            (mounted / name).write_text(content)
    paths = {**_bind_mounts(service), SECRETS_MOUNT: str(mounted)}

    def on_host(arg: str) -> str:
        for target, source in paths.items():
            if arg == target or arg.startswith(target + "/"):
                return source + arg[len(target):]
        return arg

    argv = [on_host(a) for a in [*service["entrypoint"], *service.get("command", [])]]
    assert argv[0] == "/bin/sh" and Path(argv[1]).is_file(), argv
    env = {"PATH": "/usr/bin:/bin", **{k: str(v) for k, v in service.get("environment", {}).items()}}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def _secret_values(config: dict, secrets_dir: Path) -> list[str]:
    env = config["services"][CHECK]["environment"]
    return [str(env[name]) for name in SECRET_VARS] + [p.read_text().strip() for p in secrets_dir.iterdir()]


def test_env_example_holds_a_placeholder_for_every_secret():
    example = _example_env()
    assert set(SECRET_VARS) <= set(example)
    assert all(example[name] for name in SECRET_VARS)


def test_the_check_gates_every_service_that_is_given_a_secret():
    config = _config(_real_env())
    services = config["services"]
    assert CHECK in services
    given = {name for name, service in services.items() if name != CHECK and (
        service.get("secrets") or set(service.get("environment", {})) & {*SECRET_VARS, "GF_SECURITY_ADMIN_PASSWORD"})}
    assert {"worker", "grafana", "topics", "kafka-setup"} <= given
    for name in given:
        condition = services[name].get("depends_on", {}).get(CHECK, {}).get("condition")
        assert condition == "service_completed_successfully", f"{name} starts without waiting for {CHECK}"
    # the check sees the very values the services get
    check_env = services[CHECK]["environment"]
    assert check_env["GLASSCITY_PSEUDONYM_KEY"] == services["worker"]["environment"]["GLASSCITY_PSEUDONYM_KEY"]
    assert check_env["GRAFANA_ADMIN_PASSWORD"] == services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    all_secrets = set(config["secrets"])
    assert {s if isinstance(s, str) else s["source"] for s in services[CHECK]["secrets"]} == all_secrets
    assert services[CHECK].get("restart") == "no"


def test_the_deployment_keeps_kraft_kafka_scalable_workers_prometheus_and_grafana():
    services = _config(_real_env())["services"]
    roles = set(services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"].split(","))
    assert roles == {"broker", "controller"}          # KRaft: no ZooKeeper service
    assert not any("zookeeper" in name or "zookeeper" in str(s.get("image", "")) for name, s in services.items())
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker   # `--scale worker=N` works
    assert {"prometheus", "grafana"} <= set(services)


def test_compose_alone_accepts_the_placeholders(tmp_path):
    # why the check service exists: interpolation cannot compare a value with the example's
    config = _config(_example_env())
    assert config["services"]["worker"]["environment"]["GLASSCITY_PSEUDONYM_KEY"] == \
        _example_env()["GLASSCITY_PSEUDONYM_KEY"]


def test_the_check_refuses_the_placeholders_of_env_example(made_secrets, tmp_path):
    config = _config(_example_env())
    proc = _run_check(config, made_secrets, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    for name in SECRET_VARS:
        assert any(line.startswith(f"secrets-check: {name} is still the placeholder of .env.example")
                   for line in lines), proc.stderr
    assert lines[-1] == "secrets-check: refusing to start with 2 placeholder or missing secret(s)"
    for value in _secret_values(config, made_secrets):
        assert value not in proc.stdout + proc.stderr


def test_the_check_passes_real_secrets(made_secrets, tmp_path):
    config = _config(_real_env())
    proc = _run_check(config, made_secrets, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "secrets-check: every secret is set and none is a placeholder"
    for value in _secret_values(config, made_secrets):
        assert value not in proc.stdout + proc.stderr


@pytest.mark.parametrize("key, problem", [
    ("change-me-change-me-change-me", "is a placeholder, not a secret"),
    ("replace-with-something-long-enough", "is a placeholder, not a secret"),
    ("ABCDEFGHIJKLMNO", "is shorter than 16 characters"),
])
def test_the_check_refuses_other_placeholders_and_short_keys(key, problem, made_secrets, tmp_path):
    config = _config({**_real_env(), "GLASSCITY_PSEUDONYM_KEY": key})
    proc = _run_check(config, made_secrets, tmp_path)
    assert proc.returncode == 1
    assert f"secrets-check: GLASSCITY_PSEUDONYM_KEY {problem}" in proc.stderr
    assert key not in proc.stderr and "GRAFANA_ADMIN_PASSWORD" not in proc.stderr


def test_the_check_refuses_a_placeholder_or_missing_kafka_password(made_secrets, tmp_path):
    config = _config(_real_env())
    weak = _run_check(config, made_secrets, tmp_path / "weak", replace={"worker_password": "change-me\n"})
    assert weak.returncode == 1
    assert "secrets-check: worker_password is a placeholder, not a secret" in weak.stderr
    assert "change-me" not in weak.stderr
    none = _run_check(config, tmp_path / "no-such-dir", tmp_path / "none")
    assert none.returncode == 1
    assert "no Kafka password in" in none.stderr and "make-secrets.sh" in none.stderr


def test_the_check_script_is_posix_sh():
    script = DOCKER / "check-secrets.sh"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    assert os.access(script, os.R_OK)
