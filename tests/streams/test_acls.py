"""Least-privilege ACLs (`glasscity acls`): who may read and write which topic, derived from the declarations."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess

import pytest

from streams.acls import (AclError, Binding, acl_bindings, alert_audiences, apply_acls, audience_of, declarations,
                          readers, render, uncovered_topics)
from streams.cli import main
from streams.config import settings_from
from streams.detectors import REGISTRY
from streams.domains import DOMAINS
from streams.topics import DOMAIN_TOPIC_KINDS, topic_names
from tests.conftest import TEST_KEY


@pytest.fixture
def settings():
    return settings_from(environ={}, pseudonym_key=TEST_KEY)


@pytest.fixture
def bindings(settings):
    return acl_bindings(settings)


def writers(bindings, topic):
    return {b.principal for b in bindings if b.operation in ("Write", "All") and b.matches("Topic", topic)}


def test_only_the_welfare_principal_reads_welfare_alerts(bindings):
    assert readers(bindings, "glasscity.alerts.welfare.v1") == {"User:glasscity-welfare"}
    assert writers(bindings, "glasscity.alerts.welfare.v1") == {"User:glasscity-worker"}


def test_operations_read_the_general_alerts_and_nothing_restricted(bindings, settings):
    assert readers(bindings, "glasscity.alerts.v1") == {"User:glasscity-operations"}
    for topic in topic_names(settings):
        if topic != "glasscity.alerts.v1":
            assert "User:glasscity-operations" not in readers(bindings, topic), topic


@pytest.mark.parametrize("kind", DOMAIN_TOPIC_KINDS)
def test_raw_readings_dead_letters_late_readings_and_state_are_the_workers_alone(bindings, kind):
    for domain in DOMAINS.values():
        topic = f"glasscity.{domain.topic(kind)}"
        assert readers(bindings, topic) == {"User:glasscity-worker"}, topic


def test_producers_may_only_write_readings(bindings):
    ingress = [b for b in bindings if b.principal == "User:glasscity-ingress"]
    assert ingress and all(b.operation == "Write" and b.resource_type == "Topic" and b.pattern == "LITERAL"
                           and b.name.endswith(".readings.v1") for b in ingress)
    assert {b.name for b in ingress} == {f"glasscity.{d.topic('readings')}" for d in DOMAINS.values()}


def test_the_workers_consumer_group_and_the_readers_own_groups(bindings, settings):
    groups = {(b.principal, b.name, b.pattern) for b in bindings if b.resource_type == "Group"}
    assert ("User:glasscity-worker", settings.app_id, "LITERAL") in groups
    assert ("User:glasscity-welfare", f"{settings.app_id}-welfare", "PREFIXED") in groups
    assert ("User:glasscity-operations", f"{settings.app_id}-operations", "PREFIXED") in groups
    assert {b.principal for b in bindings if b.matches("Group", settings.app_id)} == {"User:glasscity-worker"}


def test_topic_creation_is_a_role_without_data_access(bindings):
    creator = [b for b in bindings if b.principal == "User:glasscity-topics"]
    assert {b.operation for b in creator} == {"Create", "Describe"}
    assert all(b.pattern == "PREFIXED" and b.name == "glasscity." for b in creator)


def test_every_grant_is_an_allow_of_a_known_operation(bindings):
    assert {b.operation for b in bindings} <= {"Read", "Write", "Create", "Describe"}
    assert {b.resource_type for b in bindings} == {"Topic", "Group"}
    assert "All" not in {b.operation for b in bindings}


def test_every_topic_that_is_created_has_a_rule(settings):
    # a topic added to streams/topics.py without a rule in streams/acls.py would be usable by super users only
    assert uncovered_topics(settings) == []
    granted = {b.name for b in acl_bindings(settings) if b.pattern == "LITERAL" and b.resource_type == "Topic"}
    assert set(topic_names(settings)) <= granted


def test_the_audience_comes_from_the_alert_topic_name():
    assert audience_of("alerts.v1") == "operations"
    assert audience_of("alerts.welfare.v1") == "welfare"
    assert audience_of("alerts.fire-service.v2") == "fire-service"
    with pytest.raises(AclError, match="not an alert topic name"):
        audience_of("water.readings.v1")


def test_readers_follow_the_declarations(settings):
    # every declared alert topic is read by exactly its audience, and the table shows the recipients
    decls = declarations()
    alerts = alert_audiences(decls)
    assert alerts["alerts.welfare.v1"]["detectors"] == {d.name: d.recipients for d in decls
                                                        if d.alert_topic == "alerts.welfare.v1"}
    assert {"water.no_use_24h", "water.routine_change"} <= set(alerts["alerts.welfare.v1"]["detectors"])
    assert set(alerts["alerts.v1"]["detectors"]) == {d.name for d in decls if d.alert_topic == "alerts.v1"}
    text = render(acl_bindings(settings), "table", alerts=alerts)
    assert "glasscity.alerts.welfare.v1: read by welfare only" in text
    assert "water.no_use_24h: welfare team only (restricted topic)" in text


def test_a_detector_declaring_a_new_audience_gets_its_own_reader(settings):
    fire = dataclasses.replace(REGISTRY["waste.fire"].declaration, name="waste.fire_brigade",
                               recipients="fire brigade dispatch only", alert_topic="alerts.fire.v1")
    decls = declarations() + [fire]
    bindings = acl_bindings(settings, decls=decls)
    assert readers(bindings, "glasscity.alerts.fire.v1") == {"User:glasscity-fire"}
    assert writers(bindings, "glasscity.alerts.fire.v1") == {"User:glasscity-worker"}
    assert readers(bindings, "glasscity.alerts.welfare.v1") == {"User:glasscity-welfare"}   # unchanged
    named = acl_bindings(settings, {"fire": "User:brigade"}, decls=decls)
    assert readers(named, "glasscity.alerts.fire.v1") == {"User:brigade"}
    assert ("User:brigade", "glasscity-fire") in {(b.principal, b.name) for b in named if b.resource_type == "Group"}


def test_principals_prefix_and_group_follow_the_settings():
    settings = settings_from(environ={}, topic_prefix="city", app_id="city-workers", domains="water")
    bindings = acl_bindings(settings, {"worker": "User:w", "welfare": "User:social-services"})
    assert readers(bindings, "city.alerts.welfare.v1") == {"User:social-services"}
    assert readers(bindings, "city.water.readings.v1") == {"User:w"}
    assert not any(".traffic." in b.name for b in bindings)          # only the selected domains
    assert ("User:w", "city-workers") in {(b.principal, b.name) for b in bindings if b.resource_type == "Group"}


def test_roles_never_share_a_principal(settings):
    with pytest.raises(AclError, match="share the principal User:glasscity-operations"):
        acl_bindings(settings, {"welfare": "User:glasscity-operations"})
    with pytest.raises(AclError, match="share the principal"):
        acl_bindings(settings, {"ingress": "User:glasscity-worker"})
    with pytest.raises(AclError, match="not of the form User:<name>"):
        acl_bindings(settings, {"welfare": "welfare team"})


def _parse_script(text: str) -> set[tuple]:
    """The (principal, resource type, name, pattern, operation) grants of a kafka-acls.sh script."""
    grants = set()
    for line in text.splitlines():
        if not line.startswith('"$KAFKA_ACLS"'):
            continue
        words = shlex.split(line)[1:]
        assert words[:2] == ["--bootstrap-server", "kafka:9091"] and "--add" in words
        principal = words[words.index("--allow-principal") + 1]
        operations = [words[i + 1] for i, w in enumerate(words) if w == "--operation"]
        pattern = "PREFIXED" if "--resource-pattern-type" in words else "LITERAL"
        for i, w in enumerate(words):
            if w in ("--topic", "--group"):
                for operation in operations:
                    grants.add((principal, "Topic" if w == "--topic" else "Group", words[i + 1], pattern, operation))
    return grants


def test_the_script_grants_exactly_the_bindings(bindings, tmp_path):
    text = render(bindings, "script", bootstrap="kafka:9091", command="/opt/kafka/bin/kafka-acls.sh")
    assert text.startswith("#!/bin/sh\n") and "set -eu" in text
    assert 'KAFKA_ACLS="${KAFKA_ACLS:-/opt/kafka/bin/kafka-acls.sh}"' in text
    assert _parse_script(text) == {(b.principal, b.resource_type, b.name, b.pattern, b.operation) for b in bindings}
    path = tmp_path / "acls.sh"
    path.write_text(text)
    assert subprocess.run(["sh", "-n", str(path)], capture_output=True).returncode == 0
    # run it against a stand-in for kafka-acls.sh: every call is an --add of ours
    log = tmp_path / "calls"
    fake = tmp_path / "kafka-acls.sh"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    fake.chmod(0o755)
    result = subprocess.run(["sh", str(path)], env={"PATH": "/usr/bin:/bin", "KAFKA_ACLS": str(fake)},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert calls and all(c.startswith("--bootstrap-server kafka:9091 --add --allow-principal User:") for c in calls)
    assert len(calls) < len(bindings)      # grouped: one JVM start per principal and resource set, not per ACL


def test_the_script_passes_the_admin_connection_config(bindings):
    text = render(bindings, "script", bootstrap="kafka:9092", command_config="/run/secrets/admin.properties")
    lines = [l for l in text.splitlines() if l.startswith('"$KAFKA_ACLS"')]
    assert lines and all("--command-config /run/secrets/admin.properties" in l for l in lines)


def test_json_lists_every_binding(bindings):
    rows = json.loads(render(bindings, "json"))
    assert len(rows) == len(bindings)
    assert {"principal", "operation", "resource_type", "name", "pattern", "permission", "host", "why"} <= set(rows[0])
    assert all(r["permission"] == "Allow" and r["host"] == "*" for r in rows)


def test_the_command(capsys, tmp_path):
    assert main(["acls"]) == 0
    out = capsys.readouterr().out
    assert "User:glasscity-welfare" in out and "glasscity.alerts.welfare.v1" in out and "denied" in out
    assert main(["acls", "--format", "json", "--welfare-principal", "User:care", "--topic-prefix", "x"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["principal"] for r in rows if r["name"] == "x.alerts.welfare.v1" and r["operation"] == "Read"} \
        == {"User:care"}
    script = tmp_path / "acls.sh"
    assert main(["acls", "--format", "script", "--output", str(script), "--bootstrap", "kafka:9091"]) == 0
    assert os.access(script, os.X_OK) and "--bootstrap-server kafka:9091" in script.read_text()
    assert main(["acls", "--audience-principals", "fire=User:brigade,bad"]) == 2
    assert "'bad' is not AUDIENCE=PRINCIPAL" in capsys.readouterr().err
    assert main(["acls", "--operations-principal", "User:glasscity-welfare"]) == 2
    assert "share the principal" in capsys.readouterr().err


# -- applying with the admin client ---------------------------------------------------------------------------

class FakeAdmin:
    def __init__(self, keep=True, fail=None):
        self.keep, self.fail, self.created = keep, fail, []

    def create_acls(self, acls):
        if self.fail:
            raise self.fail
        self.created = list(acls)
        return {"succeeded": list(acls), "failed": []}

    def describe_acls(self, acl_filter):
        from kafka.errors import NoError

        return (self.created if self.keep else []), NoError


def test_apply_creates_allow_acls_and_checks_they_are_kept(settings, bindings):
    from kafka.admin import ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourceType

    admin = FakeAdmin()
    assert apply_acls(settings, bindings, admin=admin) == len(bindings)
    welfare = [a for a in admin.created if a.resource_pattern.resource_name == "glasscity.alerts.welfare.v1"
               and a.operation == ACLOperation.READ]
    assert [a.principal for a in welfare] == ["User:glasscity-welfare"]
    assert all(a.permission_type == ACLPermissionType.ALLOW and a.host == "*" for a in admin.created)
    prefixed = [a for a in admin.created if a.resource_pattern.pattern_type == ACLResourcePatternType.PREFIXED]
    assert {a.resource_pattern.resource_type for a in prefixed} == {ResourceType.TOPIC, ResourceType.GROUP}


def test_apply_says_when_the_broker_does_not_do_acls(settings, bindings):
    from kafka.errors import RequestTimedOutError, SecurityDisabledError

    with pytest.raises(AclError, match="does not implement ACLs"):
        apply_acls(settings, bindings, admin=FakeAdmin(fail=RequestTimedOutError()))
    with pytest.raises(AclError, match="no authorizer configured"):
        apply_acls(settings, bindings, admin=FakeAdmin(fail=SecurityDisabledError()))
    with pytest.raises(AclError, match="keeps .* nowhere"):
        apply_acls(settings, bindings, admin=FakeAdmin(keep=False))


def test_binding_patterns():
    literal = Binding("User:a", "Topic", "glasscity.alerts.v1", "LITERAL", "Read")
    prefix = Binding("User:a", "Topic", "glasscity.", "PREFIXED", "Describe")
    assert literal.matches("Topic", "glasscity.alerts.v1") and not literal.matches("Topic", "glasscity.alerts.v10")
    assert prefix.matches("Topic", "glasscity.anything") and not prefix.matches("Group", "glasscity.anything")
