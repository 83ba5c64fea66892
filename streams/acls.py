"""Least-privilege Kafka ACLs for glasscity, derived from the detectors' declarations.

Who may do what is one table per kind of topic; the alert topics' readers come from the
declarations: every detector names its ``alert_topic`` and its ``recipients``, and each
alert topic is read by one audience only — ``alerts.v1`` by operations,
``alerts.<audience>.v1`` by that audience (``alerts.welfare.v1``: the welfare team). So
only the welfare principal can read welfare alerts, and a detector declared onto a new
``alerts.<audience>.v1`` topic gets its own reader without a change here.

Roles and their principals (flags of ``glasscity acls``; defaults ``User:glasscity-<role>``):

========== =====================================================================
worker     the stream workers (one consumer group, ``app_id``); also ``glasscity dlq
           replay``, which reads a dead-letter topic and writes its readings topic
ingress    gateways and ``glasscity simulate``: write the readings topics, nothing else
topics     ``glasscity topics create``: create and describe ``<prefix>.*`` topics
operations reads ``<prefix>.alerts.v1`` (consumer groups ``<app_id>-operations*``)
welfare    reads ``<prefix>.alerts.welfare.v1`` (consumer groups ``<app_id>-welfare*``)
========== =====================================================================

Anything not granted is denied (a broker with an authorizer and
``allow.everyone.if.no.acl.found=false``). Topics this module has no rule for are
reported by :func:`uncovered_topics` (so nobody but a super user can use them until a
rule is added to :data:`CITY_TOPIC_ACCESS` or :data:`DOMAIN_TOPIC_ACCESS`).

Outputs: a table, a ``kafka-acls.sh`` script or JSON (:func:`render`), or applied directly
with kafka-python's admin client (:func:`apply_acls`). The embedded Tansu broker does not
implement ACLs (it answers DescribeAcls with nothing and never answers CreateAcls);
:func:`apply_acls` says so instead of pretending.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass

__all__ = ["command", "Binding", "AclError", "DOMAIN_TOPIC_ACCESS", "CITY_TOPIC_ACCESS", "ALERT_WRITERS", "ROLES",
           "default_principals", "audience_of", "declarations", "alert_audiences", "acl_bindings",
           "uncovered_topics", "readers", "render", "apply_acls"]

#: Who may do what on each kind of per-domain topic ``<prefix>.<domain>.<kind>.v1``: role -> operations.
#: Raw readings, dead letters (raw readings that failed validation), late readings and detector state
#: hold meter ids or their state: only the workers read them.
DOMAIN_TOPIC_ACCESS: dict[str, dict[str, tuple[str, ...]]] = {
    # the worker writes readings only to re-inject dead letters (`glasscity dlq replay`)
    "readings": {"worker": ("Read", "Write"), "ingress": ("Write",)},
    "dlq": {"worker": ("Read", "Write")},
    "late": {"worker": ("Read", "Write")},
    "state": {"worker": ("Read", "Write")},
}
#: What each kind of per-domain topic holds (the reason given with its bindings).
DOMAIN_TOPIC_HOLDS = {
    "readings": "raw readings with meter ids (the worker writes them only in `glasscity dlq replay`)",
    "dlq": "dead letters: refused raw readings with meter ids",
    "late": "late readings (household meters under their pseudonyms, only the fields detectors use)",
    "state": "the detectors' state changelog",
}
#: City-wide topics by short name (``<prefix>.<short>``), besides the alert topics: role -> operations.
#: Add a topic here when it is added to streams/topics.py (a new role gets the principal
#: ``User:glasscity-<role>`` unless one is given). The ``registrar`` runs the audited commands
#: (detectors activate, enrol, absence, object, reidentify, rekey, audit sync); the worker writes
#: threshold entries to the audit topic and a start-up marker to each register, and reads the registers.
CITY_TOPIC_ACCESS: dict[str, dict[str, tuple[str, ...]]] = {
    "audit.v1": {"worker": ("Write",), "registrar": ("Read", "Write"), "auditor": ("Read",)},
    "consent.enrolment.v1": {"worker": ("Read", "Write"), "registrar": ("Read", "Write")},
    "consent.absence.v1": {"worker": ("Read", "Write"), "registrar": ("Read", "Write")},
    "consent.objection.v1": {"worker": ("Read", "Write"), "registrar": ("Read", "Write")},
}
#: What each city-wide topic holds (the reason given with its bindings).
CITY_TOPIC_HOLDS = {
    "audit.v1": "the audit log's copy (activations, thresholds, consent changes, re-identifications)",
    "consent.enrolment.v1": "the welfare-check enrolments (pseudonyms)",
    "consent.absence.v1": "declared absences (pseudonyms)",
    "consent.objection.v1": "objections (pseudonyms)",
}
#: What the writers of every alert topic may do (its readers are its audience, from the declarations).
ALERT_WRITERS: dict[str, tuple[str, ...]] = {"worker": ("Write",)}
#: The roles every deployment has; an alert topic adds its audience.
ROLES = ("worker", "ingress", "topics", "operations", "welfare")
#: The audience of the general alert topic.
GENERAL_AUDIENCE = "operations"

_ALERT_TOPIC = re.compile(r"^alerts(?:\.([a-z0-9][a-z0-9_-]*))?\.v[0-9]+$")
_PRINCIPAL = re.compile(r"^[A-Za-z]+:\S+$")
_VERSION = re.compile(r"^v[0-9]+$")


class AclError(RuntimeError):
    """ACLs cannot be generated (bad principals) or applied (the broker refused or does not support them)."""


@dataclass(frozen=True, order=True)
class Binding:
    """One ALLOW ACL: ``principal`` may ``operation`` on ``resource_type`` ``name`` (from any host)."""

    principal: str
    resource_type: str      # "Topic" | "Group"
    name: str
    pattern: str            # "LITERAL" | "PREFIXED"
    operation: str          # "Read" | "Write" | "Create" | "Describe"
    why: str = ""

    def matches(self, resource_type: str, name: str) -> bool:
        if resource_type != self.resource_type:
            return False
        return name == self.name if self.pattern == "LITERAL" else name.startswith(self.name)


def default_principals() -> dict[str, str]:
    return {role: f"User:glasscity-{role}" for role in ROLES}


def audience_of(alert_topic: str) -> str:
    """``alerts.v1`` -> operations; ``alerts.<audience>.v1`` -> audience."""
    m = _ALERT_TOPIC.match(alert_topic)
    if not m:
        raise AclError(f"{alert_topic!r} is not an alert topic name (alerts.v1 or alerts.<audience>.v1)")
    return m.group(1) or GENERAL_AUDIENCE


def declarations(registry=None, watchers=None, domains=None) -> list:
    """Every detector's declaration: the event-time registry and each domain's wall-clock watchers."""
    from streams.detectors import REGISTRY, WATCHERS
    from streams.domains import DOMAINS

    registry = REGISTRY if registry is None else registry
    watchers = WATCHERS if watchers is None else watchers
    domains = list(DOMAINS) if domains is None else domains
    found = [cls.declaration for cls in registry.values()]
    for cls in watchers.values():
        found += [cls.declaration_for(domain) for domain in domains]
    return found


def alert_audiences(decls) -> dict[str, dict]:
    """alert topic (short name) -> {"audience": role, "detectors": {name: recipients}}."""
    from streams.topics import ALERT_TOPICS

    topics: dict[str, dict] = {short: {"audience": audience_of(short), "detectors": {}} for short in ALERT_TOPICS}
    for d in decls:
        entry = topics.setdefault(d.alert_topic, {"audience": audience_of(d.alert_topic), "detectors": {}})
        entry["detectors"][d.name] = d.recipients
    return topics


def _principals(overrides: dict[str, str] | None, roles) -> dict[str, str]:
    principals = default_principals()
    principals.update({k: v for k, v in (overrides or {}).items() if v})
    for role in roles:
        principals.setdefault(role, f"User:glasscity-{role}")
    for role, principal in principals.items():
        if not _PRINCIPAL.match(principal):
            raise AclError(f"the {role} principal {principal!r} is not of the form User:<name>")
    used: dict[str, str] = {}
    for role in sorted(roles):
        principal = principals[role]
        if principal in used:
            raise AclError(f"roles {used[principal]} and {role} share the principal {principal}: each role needs "
                           f"its own, or one could read what only the other may")
        used[principal] = role
    return principals


def _domain_kind(short: str) -> str | None:
    """``readings`` for ``water.readings.v1``; None for anything not a known domain's topic."""
    from streams.domains import DOMAINS

    parts = short.split(".")
    if len(parts) == 3 and parts[0] in DOMAINS and parts[1] in DOMAIN_TOPIC_ACCESS and _VERSION.match(parts[2]):
        return parts[1]
    return None


def acl_bindings(settings, principals: dict[str, str] | None = None, decls=None) -> list[Binding]:
    """The ALLOW bindings of a least-privilege deployment of ``settings`` (topic prefix, domains, app id)."""
    from streams.topics import short_names

    decls = declarations() if decls is None else decls
    alerts = alert_audiences(decls)
    shorts = list(dict.fromkeys(short_names(settings) + list(alerts)))
    rules: dict[str, tuple[dict[str, tuple[str, ...]], str]] = {}
    for short in shorts:
        if short in alerts:
            entry = alerts[short]
            rules[short] = ({**ALERT_WRITERS, entry["audience"]: ("Read",)},
                            f"{entry['audience']} alerts ({len(entry['detectors'])} detector(s) declare it)")
        elif _domain_kind(short):
            kind = _domain_kind(short)
            rules[short] = (DOMAIN_TOPIC_ACCESS[kind], DOMAIN_TOPIC_HOLDS.get(kind, f"{kind} topic"))
        elif short in CITY_TOPIC_ACCESS:
            rules[short] = (CITY_TOPIC_ACCESS[short], CITY_TOPIC_HOLDS.get(short, "city-wide topic"))
    roles = set(ROLES) | {role for access, _ in rules.values() for role in access}
    who = _principals(principals, roles)

    bindings = []
    for short, (access, why) in rules.items():
        topic = settings.topic(short)
        for role, operations in access.items():
            for operation in operations:
                bindings.append(Binding(who[role], "Topic", topic, "LITERAL", operation, f"{role}: {why}"))
    bindings.append(Binding(who["worker"], "Group", settings.app_id, "LITERAL", "Read",
                            "worker: the workers' consumer group (commits its offsets)"))
    for role in sorted({entry["audience"] for entry in alerts.values()}):
        bindings.append(Binding(who[role], "Group", f"{settings.app_id}-{role}", "PREFIXED", "Read",
                                f"{role}: its own consumer groups for reading its alerts"))
    for operation in ("Create", "Describe"):
        bindings.append(Binding(who["topics"], "Topic", f"{settings.topic_prefix}.", "PREFIXED", operation,
                                "topics: `glasscity topics create` (no read or write)"))
    return sorted(set(bindings))


def uncovered_topics(settings) -> list[str]:
    """Topics ``glasscity topics create`` makes that no rule here grants to anyone."""
    from streams.topics import short_names

    alerts = alert_audiences(declarations())
    return [settings.topic(s) for s in short_names(settings)
            if s not in alerts and not _domain_kind(s) and s not in CITY_TOPIC_ACCESS]


def readers(bindings: list[Binding], topic: str) -> set[str]:
    """Principals that may read ``topic`` under ``bindings`` (Read or All, literal or prefix)."""
    return {b.principal for b in bindings if b.operation in ("Read", "All") and b.matches("Topic", topic)}


# -- output -------------------------------------------------------------------------------------

def _grouped(bindings: list[Binding]) -> list[tuple[str, str, str, tuple[str, ...], list[str], list[str]]]:
    """(principal, resource_type, pattern, operations, names, reasons): one kafka-acls.sh call each."""
    per_resource: dict[tuple, list[Binding]] = defaultdict(list)
    for b in bindings:
        per_resource[(b.principal, b.resource_type, b.name, b.pattern)].append(b)
    per_call: dict[tuple, tuple[list[str], list[str]]] = {}
    for (principal, rtype, name, pattern), group in sorted(per_resource.items()):
        operations = tuple(sorted({b.operation for b in group}))
        names, reasons = per_call.setdefault((principal, rtype, pattern, operations), ([], []))
        names.append(name)
        for b in group:
            if b.why not in reasons:
                reasons.append(b.why)
    return [(p, r, pat, ops, names, reasons) for (p, r, pat, ops), (names, reasons) in per_call.items()]


def _derivation(alerts: dict[str, dict], prefix: str, comment: str = "") -> list[str]:
    """Which declared detectors (and recipients) each alert topic serves: where its reader comes from."""
    lines = [f"{comment}Alert topics, their one reader, and the detectors that declare them (recipients):"]
    for short, entry in sorted(alerts.items()):
        lines.append(f"{comment}  {prefix}.{short}: read by {entry['audience']} only")
        for name, recipients in sorted(entry["detectors"].items()):
            lines.append(f"{comment}    {name}: {recipients}")
    return lines


def render(bindings: list[Binding], fmt: str = "table", bootstrap: str = "localhost:9092",
           command: str = "kafka-acls.sh", command_config: str = "", alerts: dict | None = None,
           prefix: str = "glasscity") -> str:
    """``table`` (for people), ``script`` (``kafka-acls.sh --add`` lines) or ``json``; ``alerts``
    (:func:`alert_audiences`) adds the derivation of the alert topics' readers to table and script."""
    if fmt == "json":
        return json.dumps([{**asdict(b), "permission": "Allow", "host": "*"} for b in bindings], indent=2) + "\n"
    if fmt == "script":
        header = _derivation(alerts, prefix, "# ") + ["#"] if alerts else []
        return _script(bindings, bootstrap, command, command_config, header)
    if fmt != "table":
        raise AclError(f"unknown format {fmt!r}: table, script or json")
    rows = [("PRINCIPAL", "OPERATION", "RESOURCE", "NAME", "WHY")]
    rows += [(b.principal, b.operation, b.resource_type if b.pattern == "LITERAL" else f"{b.resource_type} (prefix)",
              b.name, b.why) for b in bindings]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    lines.append("")
    lines.append("Everything not listed is denied (authorizer on, allow.everyone.if.no.acl.found=false).")
    if alerts:
        lines += [""] + _derivation(alerts, prefix)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _script(bindings, bootstrap: str, command: str, command_config: str, header: list[str]) -> str:
    lines = ["#!/bin/sh",
             "# Least-privilege ACLs for glasscity, generated by `glasscity acls --format script` from the",
             "# detectors' declarations (alert topics and their recipients) and streams/acls.py.",
             "# Run it with a super user's connection; adding an ACL that exists already is harmless.",
             "#", *header,
             "set -eu",
             f"KAFKA_ACLS=\"${{KAFKA_ACLS:-{command}}}\"",
             ""]
    base = ["--bootstrap-server", bootstrap]
    if command_config:
        base += ["--command-config", command_config]
    flag = {"Topic": "--topic", "Group": "--group"}
    for principal, rtype, pattern, operations, names, reasons in _grouped(bindings):
        for why in reasons:
            lines.append(f"# {why}")
        args = [*base, "--add", "--allow-principal", principal]
        for operation in operations:
            args += ["--operation", operation]
        for name in names:
            args += [flag[rtype], name]
        if pattern == "PREFIXED":
            args += ["--resource-pattern-type", "prefixed"]
        lines.append('"$KAFKA_ACLS" ' + " ".join(shlex.quote(a) for a in args))
        lines.append("")
    return "\n".join(lines)


# -- applying -------------------------------------------------------------------------------------

def _acl_objects(bindings: list[Binding]) -> list:
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    return [ACL(principal=b.principal, host="*", operation=ACLOperation[b.operation.upper()],
                permission_type=ACLPermissionType.ALLOW,
                resource_pattern=ResourcePattern(ResourceType[b.resource_type.upper()], b.name,
                                                 ACLResourcePatternType[b.pattern]))
            for b in bindings]


def apply_acls(settings, bindings: list[Binding], timeout_s: float = 15.0, admin=None) -> int:
    """Create the bindings on the broker with kafka-python's admin client (``settings``' connection,
    which must be a super user's); check they are there; return how many. Raises :class:`AclError`."""
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, \
        ResourcePatternFilter, ResourceType
    from kafka.errors import KafkaError, KafkaTimeoutError, RequestTimedOutError, SecurityDisabledError

    from streams.kafka_security import kafka_python_security

    own = admin is None
    if own:
        from kafka.admin import KafkaAdminClient

        try:
            admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap.split(","), client_id="glasscity-acls",
                                     request_timeout_ms=int(timeout_s * 1000), **kafka_python_security(settings))
        except KafkaError as error:
            raise AclError(f"no Kafka broker reachable at {settings.bootstrap}: {error}") from None
    try:
        acls = _acl_objects(bindings)
        try:
            result = admin.create_acls(acls)
        except (RequestTimedOutError, KafkaTimeoutError):
            raise AclError(f"the broker at {settings.bootstrap} did not answer CreateAcls within {timeout_s:g} s: "
                           f"it does not implement ACLs (the embedded Tansu broker never answers it); use a "
                           f"broker with an authorizer, e.g. the docker/ deployment") from None
        except SecurityDisabledError:
            raise AclError(f"the broker at {settings.bootstrap} has no authorizer configured "
                           f"(authorizer.class.name): ACLs would not be enforced") from None
        except KafkaError as error:
            raise AclError(f"the broker at {settings.bootstrap} refused the ACLs: {error}") from None
        failed = result.get("failed", []) if isinstance(result, dict) else []
        if failed:
            first = failed[0]
            raise AclError(f"the broker refused {len(failed)} of {len(acls)} ACLs; first: "
                           f"{getattr(first, '__name__', first)}")
        everything = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                               permission_type=ACLPermissionType.ANY,
                               resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                                      ACLResourcePatternType.ANY))
        try:
            present, error = admin.describe_acls(everything)
        except KafkaError as error:
            raise AclError(f"the broker at {settings.bootstrap} accepted the ACLs but cannot list them: "
                           f"{error}") from None
        have = {(a.principal, a.operation, a.resource_pattern.resource_type, a.resource_pattern.resource_name,
                 a.resource_pattern.pattern_type) for a in present}
        missing = [a for a in acls if (a.principal, a.operation, a.resource_pattern.resource_type,
                                       a.resource_pattern.resource_name, a.resource_pattern.pattern_type) not in have]
        if missing:
            raise AclError(f"the broker at {settings.bootstrap} answered but keeps {len(missing)} of {len(acls)} "
                           f"ACLs nowhere (DescribeAcls does not list them): it does not enforce ACLs")
        return len(acls)
    finally:
        if own:
            admin.close()


# -- the command ------------------------------------------------------------------------------------------

def command(args, settings) -> int:
    """``glasscity acls``: print (table, script, json) or ``--apply`` the bindings; exit code."""
    principals = {role: getattr(args, f"{role}_principal") for role in ROLES}
    for item in filter(None, (part.strip() for part in args.audience_principals.split(","))):
        audience, sep, principal = item.partition("=")
        if not sep or not audience.strip() or not principal.strip():
            print(f"glasscity acls: --audience-principals: {item!r} is not AUDIENCE=PRINCIPAL", file=sys.stderr)
            return 2
        principals[audience.strip()] = principal.strip()
    try:
        bindings = acl_bindings(settings, principals)
    except AclError as error:
        print(f"glasscity acls: {error}", file=sys.stderr)
        return 2
    for topic in uncovered_topics(settings):
        print(f"glasscity acls: no rule grants {topic} to anyone (add one to streams/acls.py): only super users "
              f"can use it", file=sys.stderr)
    if args.apply:
        try:
            count = apply_acls(settings, bindings)
        except AclError as error:
            print(f"glasscity acls: {error}", file=sys.stderr)
            return 1
        print(f"created {count} ACLs at {settings.bootstrap}")
        return 0
    try:
        text = render(bindings, args.format, bootstrap=settings.bootstrap, command=args.acl_command,
                      command_config=args.acl_command_config, alerts=alert_audiences(declarations()),
                      prefix=settings.topic_prefix)
    except AclError as error:   # e.g. GLASSCITY_ACL_FORMAT names no format
        print(f"glasscity acls: {error}", file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
        if args.format == "script":
            os.chmod(args.output, 0o755)
        print(f"{len(bindings)} ACL bindings written to {args.output}")
    else:
        print(text, end="")
    return 0
