"""The alerting rules in docker/prometheus/rules/ are valid, load in Prometheus as compose mounts them,
and fire (and stay quiet) as their unit tests say: Debian's promtool, installed on first use as root."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.support.apt import ensure_binary

HERE = Path(__file__).resolve().parent
DOCKER = HERE.parents[1] / "docker"
RULES = DOCKER / "prometheus" / "rules" / "glasscity.rules.yml"
UNIT_TESTS = HERE / "glasscity.rules.test.yml"
ALERTS = {"GlasscityWorkerDown", "GlasscityConsumerLagGrowing", "GlasscityDeadLetterRate", "GlasscityFeedStalled"}


def _promtool(*args: str, cwd: Path = HERE) -> subprocess.CompletedProcess:
    exe = ensure_binary("promtool", "prometheus")
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_check_rules_accepts_the_rules_file():
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_pass_and_cover_each_alert_firing_and_quiet():
    result = _promtool("test", "rules", UNIT_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {rule["alert"] for rule in _rules()} == ALERTS
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for alert in ALERTS:
        mine = [case for case in cases if case["alertname"] == alert]
        assert any(case["exp_alerts"] for case in mine), f"{alert}: no case where it fires"
        assert any(not case["exp_alerts"] for case in mine), f"{alert}: no case where it stays quiet"


def test_a_broken_expectation_makes_promtool_fail(tmp_path):
    """The unit tests can fail: the same file with one expected label changed does not pass."""
    broken = UNIT_TESTS.read_text().replace("{severity: warning, domain: water}", "{severity: warning, domain: waste}")
    assert broken != UNIT_TESTS.read_text()
    (tmp_path / "broken.test.yml").write_text(broken.replace("../../docker/", str(DOCKER) + "/"))
    result = _promtool("test", "rules", "broken.test.yml", cwd=tmp_path)
    assert result.returncode != 0 and "GlasscityDeadLetterRate" in result.stdout + result.stderr


def test_prometheus_loads_the_rules_where_compose_mounts_them():
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    compose = (DOCKER / "compose.yml").read_text()
    mount = re.search(r"- \./prometheus/rules:(\S+):ro", compose)
    assert mount, "compose.yml does not mount docker/prometheus/rules into the prometheus service"
    assert any(Path(pattern).parent == Path(mount.group(1)) and RULES.match(Path(pattern).name)
               for pattern in config["rule_files"]), config["rule_files"]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    for rule in _rules():   # every job a rule names is scraped
        for job in re.findall(r'job="([^"]+)"', rule["expr"]):
            assert job in jobs, (rule["alert"], job)


def test_the_rules_name_only_metrics_the_worker_exports():
    from tests.docker.test_compose import ALLOWED_SERIES, _metric_names

    for rule in _rules():
        names = _metric_names(rule["expr"])
        assert names, rule["alert"]
        unknown = names - ALLOWED_SERIES - {"up"}       # up: Prometheus's own, per scrape target
        assert not unknown, (rule["alert"], unknown)
