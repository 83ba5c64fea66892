"""The public algorithm register, generated from what the workers actually load.

``glasscity register --format md|json|html`` builds it from

- the detectors: every declaration of :data:`streams.detectors.REGISTRY` and of the wall-clock
  watchers (:data:`streams.detectors.WATCHERS`), with the purpose-binding declarations of
  :mod:`streams.detectors.access` (reading columns, reading groups, state fields read, with who owns
  each, and the fields each detector writes) and each domain's shared tracker fields;
- the thresholds in force: :func:`streams.detectors.thresholds.load_thresholds` over the thresholds
  file (``GLASSCITY_THRESHOLDS``), each with its value, unit, default and whether it is overridden;
- the audit log (``GLASSCITY_AUDIT_LOG``): whether it verifies (:func:`streams.audit.verify`), which
  dormant detectors it activates (:func:`streams.audit.activations`, exactly as workers read it: a log
  that does not verify activates nothing) and every entry about each detector (its history).

Nothing in it is kept by hand, so it cannot drift from what runs.

Fields, and the registers they answer
-------------------------------------

Each detector entry holds the fields of the Amsterdam and Helsinki algorithm registers — name,
purpose (description), responsible department (``owner``), status, datasets (``data``), data
processing (``logic`` and ``thresholds``), human oversight — and the items that French law asks an
administration to publish for the algorithms grounding individual decisions (Code des relations
entre le public et l'administration, article L312-1-3, with the items of R311-3-1-1 and R311-3-1-2
for a decision about one person): the purpose (finalité), the degree and mode of the algorithm's
contribution to the decision (``human_oversight``), the data processed and their sources
(``data``), the processing parameters and their weights (``thresholds``) and the operations carried
out (``logic``). It adds what GDPR asks of the same processing: legal basis, recipients, retention,
and the household's say (``consent``, ``absence``, ``objection``). :data:`FIELD_MAP` is the mapping;
the JSON carries it as ``schema``. Not generated (no declaration holds them): a non-discrimination
assessment and a risk assessment.

JSON (``schema_version`` 1); keys are stable, in this order
---------------------------------------------------------

Top level: ``register`` (title), ``schema_version``, ``schema`` (``note``, ``fields``: one
``{"key", "amsterdam_helsinki", "crpa_l312_1_3"}`` per field, ``not_covered``), ``sources``
(``detectors``, ``thresholds_file``, ``audit_log``; null when not set), ``audit`` (``log``,
``verified``: true / false / null when no log is set, ``entries``, ``problems``: text per broken
entry, ``summary``: a sentence), ``topics`` (per alert topic: ``topic`` short name, ``name`` full
name, ``retention_s``, ``retention`` in words, ``detectors``), ``domains`` (``name``, ``label``,
``subject_kind``, ``subject``, ``pseudonymised``, ``readings_topic``, ``reading_type``,
``columns``, ``groups``, ``tracker_fields``, ``tracker_facts``, ``detectors``, ``positions``: what the pipeline
itself reads of a reading's ``location`` (``reads``, ``purpose``, ``precision``), from
:mod:`streams.pipeline.positions`) and ``detectors``, each with:

``name``, ``domains`` (where it runs), ``runs_on`` (``"event time"`` | ``"wall clock"``),
``status`` (``"active"``, ``"dormant"`` or ``"dormant — activated on <date> by <who> (<reason>)"``),
``status_code`` (``"active"`` | ``"activated"`` | ``"dormant"``; the HTML badge's ``data-status``),
``declared_status``, ``running`` (bool), ``status_note`` (why it runs or not, in words),
``purpose``, ``logic``, ``owner``, ``legal_basis``, ``severity``, ``alarm_name``,
``subject`` (``kind``, ``description``, ``household``: alerts name a household's meter,
``pseudonymised``, ``personal_data``: in words), ``data`` (``reads``: declared data fields,
``columns``, ``reading_groups``, ``reading_facts``: the tracker's per-reading facts it is given (the
subject's previous reading, whether a reading is new), ``state_reads``: ``{"field", "owner"}``,
``state_writes``),
``recipients``, ``alert_topic`` (short), ``alert_topic_name`` (full), ``retention``
(``declared``: text, ``declared_s``, ``topic_s``: the alert topic's retention, the shortest
``retention_s`` of the detectors publishing to it, ``note``), ``human_oversight``,
``consent`` (``requires_enrolment``, ``how``), ``absence`` (``holds_alerts``, ``how``),
``objection`` (``allowed``, ``how``), ``thresholds`` (``name``, ``value``, ``default``, ``unit``,
``why``, ``overridden``) and ``history`` (``seq``, ``time``, ``action``, ``by``, ``reason``: every
audit entry about it, oldest first; other fields of an entry are not published).
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from datetime import datetime

__all__ = ["FIELD_MAP", "FORMATS", "SCHEMA_VERSION", "build_register", "render", "render_html", "render_json",
           "render_markdown", "topic_retention_s", "declarations_in_order"]

SCHEMA_VERSION = 1
FORMATS = ("md", "json", "html")

#: (register key, Amsterdam / Helsinki register field, CRPA L312-1-3 / R311-3-1-2 item)
FIELD_MAP = (
    ("name", "Name", "the processing named"),
    ("purpose", "Purpose (description)", "finalité poursuivie (purpose pursued, R311-3-1-1)"),
    ("owner", "Responsible department, contact", "administration responsible"),
    ("status", "Status (in use or not)", "-"),
    ("data", "Datasets (data sources)", "données traitées et leurs sources (data processed and sources, R311-3-1-2 2°)"),
    ("logic", "Data processing (how it works)", "opérations effectuées (operations carried out, R311-3-1-2 4°)"),
    ("thresholds", "Data processing (parameters)",
     "paramètres de traitement et leur pondération (parameters and their weights, R311-3-1-2 3°)"),
    ("human_oversight", "Human oversight",
     "degré et mode de contribution à la décision (degree and mode of contribution to the decision, R311-3-1-2 1°)"),
    ("recipients", "Who uses the output", "-"),
    ("legal_basis", "Legal basis", "the mission it serves (L312-1-3)"),
    ("retention", "Data retention", "-"),
    ("consent", "Rights of the people concerned (consent)", "-"),
    ("absence", "Rights of the people concerned (declared absence)", "-"),
    ("objection", "Rights of the people concerned (objection)", "-"),
    ("history", "Change history", "-"),
)
NOT_COVERED = ("non-discrimination assessment", "risk assessment")

DOMAIN_LABELS = {"water": "Water", "traffic": "Traffic", "waste": "Waste collection", "lighting": "Street lighting"}
ALL_NETWORKS = "Every sensor network"
SUBJECTS = {
    "water_meter": "a household's water meter",
    "gateway": "a radio gateway of the water-metering network",
    "district": "a district of the water network (the total of its households)",
    "feed": "a whole sensor network's feed",
    "traffic_detector": "a traffic sensor on the road (it counts vehicles, not people)",
    "waste_container": "a public waste bin",
    "streetlight": "a street lamp or a lighting control cabinet",
}
SEVERITY_WORDS = {"info": "for information", "warning": "needs attention", "critical": "urgent"}
BADGE_WORDS = {"active": "Runs now", "activated": "Runs now (switched on by decision)", "dormant": "Off"}
ACTIVATION_ACTIONS = ("activate", "deactivate")


# -- building -------------------------------------------------------------------------------------

def build_register(settings, registry: dict | None = None, watchers: dict | None = None,
                   domains: dict | None = None) -> dict:
    """The register as plain data (the JSON document), from ``settings.thresholds_file`` and
    ``settings.audit_log``; ``registry`` / ``watchers`` / ``domains`` default to what workers load."""
    from streams.audit import activations, verify
    from streams.detectors import REGISTRY, WATCHERS
    from streams.detectors.thresholds import load_thresholds
    from streams.domains import DOMAINS

    registry = REGISTRY if registry is None else registry
    watchers = WATCHERS if watchers is None else watchers
    domains = DOMAINS if domains is None else domains
    thresholds = load_thresholds(settings.thresholds_file or None, {**registry, **watchers})

    log = settings.audit_log or None
    entries, problems = verify(log) if log else ([], [])
    activated, activation_problems = activations(log)
    problems = problems or activation_problems

    declarations = declarations_in_order(registry, watchers, domains)
    retention = topic_retention_s([d for d, _cls, _where in declarations])
    detectors = [_detector_entry(d, cls, where, domains, thresholds[d.name], settings, retention, log,
                                 [e for e in entries if e.get("detector") == d.name], activated, problems,
                                 watcher=d.name in watchers)
                 for d, cls, where in declarations]
    return {
        "register": "glasscity public algorithm register",
        "schema_version": SCHEMA_VERSION,
        "schema": {
            "note": "Each detector entry carries the fields of the Amsterdam and Helsinki algorithm registers and "
                    "the items of the French CRPA article L312-1-3 inventory (with R311-3-1-2): see fields.",
            "fields": [{"key": key, "amsterdam_helsinki": ah, "crpa_l312_1_3": crpa} for key, ah, crpa in FIELD_MAP],
            "not_covered": list(NOT_COVERED),
        },
        "sources": {"detectors": "streams.detectors.REGISTRY and WATCHERS",
                    "thresholds_file": settings.thresholds_file or None, "audit_log": log},
        "audit": {"log": log, "verified": None if not log else not problems, "entries": len(entries),
                  "problems": [str(p) for p in problems], "summary": _audit_summary(log, entries, problems)},
        "topics": [{"topic": topic, "name": settings.topic(topic), "retention_s": seconds,
                    "retention": _duration(seconds),
                    "detectors": [d.name for d, _c, _w in declarations if d.alert_topic == topic]}
                   for topic, seconds in retention.items()],
        "domains": [_domain_entry(domain, settings) for domain in domains.values()],
        "detectors": detectors,
    }


def topic_retention_s(declarations) -> dict[str, float]:
    """{short alert topic: its retention (s)}: one topic has one retention, the shortest
    ``retention_s`` declared by the detectors publishing to it."""
    result: dict[str, float] = {}
    for d in declarations:
        result[d.alert_topic] = min(result.get(d.alert_topic, d.retention_s), d.retention_s)
    return dict(sorted(result.items()))


def declarations_in_order(registry, watchers, domains) -> list[tuple]:
    """(declaration, class, domain names) in register order: by domain and its run order, the
    detectors no domain lists after their domain's, the watchers (every domain) last."""
    placed, result = set(), []
    for domain in domains.values():
        for cls in domain.detectors:
            name = cls.declaration.name
            if name in registry and name not in placed:
                where = [d.name for d in domains.values() if any(c.declaration.name == name for c in d.detectors)]
                result.append((registry[name].declaration, registry[name], where))
                placed.add(name)
        for name in sorted(set(registry) - placed):
            if registry[name].declaration.domain == domain.name:
                result.append((registry[name].declaration, registry[name], [domain.name]))
                placed.add(name)
    for name in sorted(set(registry) - placed):
        result.append((registry[name].declaration, registry[name], [registry[name].declaration.domain]))
    every = list(domains)
    for name, cls in sorted(watchers.items()):
        result.append((cls.declaration_for(every[0]), cls, every))
    return result


def _detector_entry(d, cls, where, domains, thresholds, settings, retention, log, history, activated, problems,
                    watcher: bool) -> dict:
    code, running, status, note = _status(d, activated, problems, log, history)
    domain = domains.get(d.domain)
    household = domain is not None and domain.subject_pseudonym is not None and d.subject_kind == domain.subject_kind
    topic_s = retention[d.alert_topic]
    return {
        "name": d.name,
        "domains": where,
        "runs_on": "wall clock" if watcher else "event time",
        "status": status,
        "status_code": code,
        "declared_status": d.status,
        "running": running,
        "status_note": note,
        "purpose": d.purpose,
        "logic": d.logic,
        "owner": d.owner,
        "legal_basis": d.legal_basis,
        "severity": d.severity,
        "alarm_name": d.alarm_name,
        "subject": {"kind": d.subject_kind, "description": SUBJECTS.get(d.subject_kind, d.subject_kind),
                    "household": household, "pseudonymised": household,
                    "personal_data": _personal_data(d, domain, household, watcher)},
        "data": _data(d, cls, domain, watcher),
        "recipients": d.recipients,
        "alert_topic": d.alert_topic,
        "alert_topic_name": settings.topic(d.alert_topic),
        "retention": {
            "declared": d.retention, "declared_s": d.retention_s, "topic_s": topic_s,
            "note": (f"The alert topic {settings.topic(d.alert_topic)} keeps alerts {_duration(topic_s)}: the "
                     f"shortest retention declared by the detectors publishing to it"
                     + (f", shorter than the {_duration(d.retention_s)} this detector declares" if topic_s < d.retention_s
                        else "") +
                     f". Its state about each {d.subject_kind.replace('_', ' ')} is kept no longer than "
                     f"{_duration(d.retention_s)}."),
        },
        "human_oversight": d.human_oversight,
        "consent": {"requires_enrolment": d.requires_enrolment, "how": _consent(d, household)},
        "absence": {"holds_alerts": d.absence_holds, "how": _absence(d, household)},
        "objection": {"allowed": d.objection_allowed, "how": _objection(d, household, domain, watcher)},
        "thresholds": [{"name": f.name, "value": getattr(thresholds, f.name), "default": f.default,
                        "unit": f.metadata["unit"], "why": f.metadata["why"],
                        "overridden": getattr(thresholds, f.name) != f.default}
                       for f in dataclasses.fields(thresholds)],
        "history": [{"seq": e.get("seq"), "time": e.get("time"), "action": e.get("action"), "by": e.get("by"),
                     "reason": e.get("reason")} for e in history],
    }


def _status(d, activated, problems, log, history) -> tuple[str, bool, str, str]:
    """(status_code, running, status, status_note), as the workers decide it."""
    if d.status == "active":
        return "active", True, "active", "Runs now: it is on as standard."
    switches = [e for e in history if e.get("action") in ACTIVATION_ACTIONS]
    newest = switches[-1] if switches else None
    if d.name in activated:
        if newest is not None and newest.get("action") == "activate":
            decision = f"on {_when(newest.get('time'))} by {newest.get('by')} ({newest.get('reason')})"
        else:
            decision = "in the audit log"
        return "activated", True, f"dormant — activated {decision}", \
            f"Runs now: it is off as standard and was activated {decision}, a decision recorded in the audit log."
    if problems:
        note = ("Not running: the audit log does not verify, so no activation in it counts (workers treat it the "
                "same way).")
    elif not log:
        note = "Not running: it is off as standard, and no audit log is set to switch it on."
    elif newest is not None and newest.get("action") == "deactivate":
        note = (f"Not running: switched off again on {_when(newest.get('time'))} by {newest.get('by')} "
                f"({newest.get('reason')}).")
    else:
        note = "Not running: it is off as standard and runs only after a decision to switch it on is recorded."
    return "dormant", False, "dormant", note


def _personal_data(d, domain, household: bool, watcher: bool) -> str:
    subject = SUBJECTS.get(d.subject_kind, d.subject_kind)
    if household:
        return ("Yes: readings of a household's water meter. Meter identifiers are replaced by keyed HMAC-SHA-256 "
                "pseudonyms before they enter its state or any alert; the key is a secret of the city.")
    if watcher or domain is None or domain.subject_pseudonym is None:
        return f"No personal data: the subject is {subject}."
    return (f"It reads household meter readings under pseudonyms (identifiers replaced by keyed HMAC-SHA-256 "
            f"pseudonyms before any detector sees them); its alerts are about {subject}, never about a household.")


def _consent(d, household: bool) -> str:
    if d.requires_enrolment:
        return ("Runs only for households that have enrolled (given their consent): `glasscity enrol --meter ID`. "
                "Un-enrolling withdraws consent: its alerts stop and what it kept about the household is deleted.")
    if household:
        return "No enrolment: it runs for every household meter, on the legal basis stated."
    return "Not applicable: no household is its subject."


def _absence(d, household: bool) -> str:
    if d.absence_holds:
        return ("A household going away can declare it: `glasscity absence declare --meter ID --from T --until T`; "
                "its alerts are held back until the absence ends.")
    if household:
        return "A declared absence does not change it."
    return "Not applicable: no household is its subject."


def _objection(d, household: bool, domain, watcher: bool) -> str:
    if d.objection_allowed:
        return (f"Yes. A household can object; ask {d.owner}. Staff record it with "
                f"`glasscity object --meter ID --detector {d.name}`: the detector then skips that meter and deletes "
                f"what it kept about it.")
    if d.requires_enrolment:
        return ("Not needed: it runs only with consent. A household withdraws its consent by un-enrolling, which "
                "stops it for that household and deletes what it kept.")
    if household:
        return f"No. Why: {d.legal_basis}"
    if not watcher and domain is not None and domain.subject_pseudonym is not None:
        return f"Not applicable: its alerts are about {SUBJECTS.get(d.subject_kind, d.subject_kind)}, never about " \
               f"a household."
    return "Not applicable: it uses no personal data."


def _owners(domain) -> dict[str, str]:
    """{state field: who owns it} in a domain: its tracker or one of its detectors."""
    from streams.detectors.access import field_specs, owned_fields

    if domain is None:
        return {}
    owners = {}
    for cls in domain.detectors:
        for name in owned_fields(cls):
            owners[name] = cls.declaration.name
    for name in field_specs(domain):
        owners.setdefault(name, f"the {domain.name} domain's shared tracker")
    return owners


def _data(d, cls, domain, watcher: bool) -> dict:
    owners = {} if watcher else _owners(domain)
    return {
        "reads": list(d.reads),
        "columns": list(getattr(cls, "columns", ())),
        "reading_groups": list(getattr(cls, "reading_groups", ())),
        "reading_facts": list(getattr(cls, "reading_facts", ())),
        "state_reads": [{"field": name, "owner": owners.get(name, "not declared in its domain")}
                        for name in getattr(cls, "state_reads", ())],
        "state_writes": [] if watcher else _ordered_fields(cls),
    }


def _ordered_fields(owner) -> list[str]:
    names = [name for name, _dtype, _fill in getattr(owner, "subject_fields", ())]
    for group, fields in getattr(owner, "group_fields", {}).items():
        names += [f"{group}.{name}" for name, _dtype, _fill in fields]
    return names


def _domain_entry(domain, settings) -> dict:
    from streams.pipeline.positions import POSITION_PURPOSE, position_precision

    owners = _owners(domain)
    own = {name for cls in domain.detectors for name in _ordered_fields(cls)}
    return {
        "name": domain.name,
        "label": DOMAIN_LABELS.get(domain.name, domain.name),
        "subject_kind": domain.subject_kind,
        "subject": SUBJECTS.get(domain.subject_kind, domain.subject_kind),
        "pseudonymised": domain.subject_pseudonym is not None,
        "readings_topic": settings.topic(domain.topic("readings")),
        "reading_type": domain.reading_type,
        "columns": [c.column for c in domain.columns],
        "groups": ["gateway", *(name for name, _field in domain.groups)],
        "tracker_fields": [name for name in owners if name not in own],
        "tracker_facts": [name for name, _dtype in getattr(domain.tracker, "reading_facts", ())],
        "detectors": [cls.declaration.name for cls in domain.detectors],
        "positions": {"reads": "location", "purpose": POSITION_PURPOSE, "precision": position_precision(domain)},
    }


def _audit_summary(log, entries, problems) -> str:
    if not log:
        return "No audit log is set: detectors that are off as standard (dormant) do not run."
    if problems:
        return (f"The audit log {log} does not verify ({'; '.join(str(p) for p in problems)}). No activation in it "
                f"counts: detectors that are off as standard (dormant) do not run, as in the workers.")
    newest = f"; newest entry {entries[-1].get('time')}" if entries else ""
    count = f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
    return f"The audit log {log} verifies: {count}, chain intact{newest}."


def _when(moment) -> str:
    try:
        return datetime.fromisoformat(str(moment)).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(moment)


def _duration(seconds: float) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds:g} s"


def _value(value, unit: str) -> str:
    text = f"{value:g} {unit}"
    if unit == "s" and value >= 60:
        text += f" ({_duration(value)})" if value % 60 == 0 else ""
    return text


# -- rendering ------------------------------------------------------------------------------------

def render(register: dict, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return {"md": render_markdown, "json": render_json, "html": render_html}[fmt](register)


def render_json(register: dict) -> str:
    return json.dumps(register, indent=2, ensure_ascii=False) + "\n"


INTRO = (
    "The city collects readings from water meters, traffic sensors, waste bins and street lamps. A few small "
    "programs, which we call detectors, look at these readings as they arrive and tell a city team when something "
    "needs attention: a leak, a dark street, a full bin, a household that may need a welfare visit.",
    "No detector acts on its own: each one only tells a team, and a member of staff looks before anything is "
    "done (\"What a person does\" on each entry).",
    "Household water meters are personal data. Before any detector sees a reading, the meter's number is replaced "
    "by a code (a pseudonym) that only the city's secret key links back to the household.",
    "Where an entry says so, a household can object to a detector, or withdraw its consent: the detector then "
    "stops for that household and what it kept about it is deleted. Ask the department named on the entry.",
    "This register is generated from the detectors themselves, the settings they run with and the tamper-evident "
    "record of decisions to switch them on or off (the audit log), so it says what actually runs.",
)


def _groups(register: dict) -> list[tuple[str, list[dict]]]:
    labels = {d["name"]: d["label"] for d in register["domains"]}
    groups: dict[str, list[dict]] = {}
    for det in register["detectors"]:
        label = ALL_NETWORKS if len(det["domains"]) > 1 else labels.get(det["domains"][0], det["domains"][0])
        groups.setdefault(label, []).append(det)
    return list(groups.items())


def _sources_line(register: dict) -> str:
    t = register["sources"]["thresholds_file"]
    thresholds = f"the code's defaults, overridden by {t} where marked" if t else "the code's defaults"
    return f"Thresholds: {thresholds}. {register['audit']['summary']}"


# Markdown

def _md(text) -> str:
    return str(text).replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _no_writes(det: dict) -> str:
    if det["runs_on"] == "wall clock":
        return "none in the state store (it keeps the time of each feed's last message in memory)"
    return "none"


def _md_codes(items) -> str:
    return ", ".join(f"`{_md(i)}`" for i in items) or "none"


def _cell(text) -> str:
    return _md(text).replace("|", "\\|")


def render_markdown(register: dict) -> str:
    out = ["# Public algorithm register", "", "## Which algorithms watch the city's data, and why", ""]
    for paragraph in INTRO:
        out += [paragraph, ""]
    out += ["Generated by `glasscity register` from the detectors, thresholds and audit log that workers load "
            "(also as `--format json` and `--format html`).", "", _md(_sources_line(register)), ""]
    if register["audit"]["verified"] is False:
        out += [f"> **Warning: the audit log does not verify.** {_md(register['audit']['summary'])}", ""]
    out += ["## Summary", "", "| detector | what it is for | runs now | owner | objection |", "|---|---|---|---|---|"]
    for det in register["detectors"]:
        objection = "yes" if det["objection"]["allowed"] else "consent" if det["consent"]["requires_enrolment"] \
            else "no" if det["subject"]["household"] else "n/a"
        out.append(f"| `{det['name']}` | {_cell(det['purpose'])} | {_cell(det['status'])} | {_cell(det['owner'])} "
                   f"| {objection} |")
    out.append("")
    for label, detectors in _groups(register):
        out += [f"## {_md(label)}", ""]
        for det in detectors:
            out += _md_detector(det)
    out += _md_domains(register) + _md_topics(register) + _md_schema(register)
    return "\n".join(out).rstrip("\n") + "\n"


def _md_detector(det: dict) -> list[str]:
    sev = SEVERITY_WORDS.get(det["severity"], det["severity"])
    data = det["data"]
    out = [f"### `{det['name']}`", "",
           f"- **Status:** {_md(det['status'])}. {_md(det['status_note'])}",
           f"- **What it is for:** {_md(det['purpose'])}",
           f"- **How it works:** {_md(det['logic'])}",
           f"- **Who is told:** {_md(det['recipients'])}; {sev}; topic `{det['alert_topic_name']}`",
           f"- **What a person does:** {_md(det['human_oversight'])}",
           f"- **Responsible:** {_md(det['owner'])}",
           f"- **Legal basis:** {_md(det['legal_basis'])}",
           f"- **Personal data:** {_md(det['subject']['personal_data'])}",
           f"- **Consent:** {_md(det['consent']['how'])}",
           f"- **Declared absence:** {_md(det['absence']['how'])}",
           f"- **Objection:** {_md(det['objection']['how'])}",
           f"- **Retention:** {_md(det['retention']['declared'])}. {_md(det['retention']['note'])}",
           f"- **Data it reads:** {_md_codes(data['reads'])}",
           f"- **Reading columns and groups it is given:** {_md_codes(data['columns'] + data['reading_groups'])}",
           "- **Facts about each reading it is given (kept once by the domain's tracker):** "
           + (_md_codes(data["reading_facts"]) if data["reading_facts"] else "none"),
           "- **State it reads (owner):** " + (", ".join(f"`{s['field']}` ({_md(s['owner'])})"
                                                       for s in data["state_reads"]) or "none"),
           f"- **State it writes:** {_md_codes(data['state_writes']) if data['state_writes'] else _no_writes(det)}",
           f"- **Runs on:** {det['runs_on']}, in {', '.join(det['domains'])}; subject: "
           f"{_md(det['subject']['description'])}; severity `{det['severity']}`; standard alarm name "
           f"`{_md(det['alarm_name'])}`",
           "", "| threshold | value | default | why |", "|---|---|---|---|"]
    for t in det["thresholds"]:
        value = _value(t["value"], t["unit"]) + (" (overridden)" if t["overridden"] else "")
        out.append(f"| `{t['name']}` | {_cell(value)} | {_cell(_value(t['default'], t['unit']))} | {_cell(t['why'])} |")
    out.append("")
    if det["history"]:
        out += ["| # | when | action | by | why |", "|---|---|---|---|---|"]
        for h in det["history"]:
            out.append(f"| {h['seq']} | {_cell(h['time'])} | {_cell(h['action'])} | {_cell(h['by'])} | "
                       f"{_cell(h['reason'])} |")
    else:
        out.append("History: no audit entry about it.")
    out.append("")
    return out


def _md_domains(register: dict) -> list[str]:
    out = ["## What each network keeps about every sensor", "",
           "Besides each detector's own fields, every network keeps a shared record per sensor (its tracker), "
           "which detectors read only when they declare it.", "",
           "| network | subject | pseudonymised | readings topic | shared record (tracker) fields |",
           "|---|---|---|---|---|"]
    for d in register["domains"]:
        out.append(f"| {_cell(d['label'])} | {_cell(d['subject'])} | {'yes' if d['pseudonymised'] else 'no'} | "
                   f"`{d['readings_topic']}` | {_md_codes(d['tracker_fields'])} |")
    out += ["", "The pipeline itself, not a detector, reads each reading's `location` (and a gateway batch's) "
            + _md(register["domains"][0]["positions"]["purpose"]) + ":", ""]
    out += [f"- {_md(d['label'])}: {_md(d['positions']['precision'])}" for d in register["domains"]]
    return out + [""]


def _md_topics(register: dict) -> list[str]:
    out = ["## Alert topics and their retention", "", "| topic | alerts kept | detectors |", "|---|---|---|"]
    for t in register["topics"]:
        out.append(f"| `{t['name']}` | {t['retention']} | {_md_codes(t['detectors'])} |")
    return out + [""]


def _md_schema(register: dict) -> list[str]:
    out = ["## How this register maps to other registers", "",
           "| field | Amsterdam / Helsinki algorithm register | CRPA L312-1-3 inventory |", "|---|---|---|"]
    for f in register["schema"]["fields"]:
        out.append(f"| `{f['key']}` | {_cell(f['amsterdam_helsinki'])} | {_cell(f['crpa_l312_1_3'])} |")
    out += ["", f"Not generated: {', '.join(register['schema']['not_covered'])}.", ""]
    return out


# HTML

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5; margin: 0;
       color: #1b1b1b; background: #f6f6f3; }
main { max-width: 62rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 2rem; margin: 0.5rem 0; }
h2 { margin-top: 2.5rem; border-bottom: 2px solid #c9c9c0; padding-bottom: 0.25rem; }
.lead { font-size: 1.15rem; }
.sources { color: #4a4a45; font-size: 0.95rem; }
.warning { background: #fff1e6; border: 2px solid #b54708; padding: 0.75rem 1rem; border-radius: 6px; }
.detector { background: #fff; border: 1px solid #d4d4cc; border-radius: 8px; padding: 1rem 1.25rem;
            margin: 1rem 0; }
.detector h3 { margin: 0 0 0.25rem 0; font-size: 1.2rem; }
.detector .purpose { font-size: 1.05rem; margin: 0.25rem 0 0.75rem 0; }
.badge { display: inline-block; padding: 0.1rem 0.6rem; border-radius: 999px; font-weight: 600;
         font-size: 0.9rem; margin-right: 0.5rem; white-space: nowrap; }
.status-active { background: #dff3e4; color: #0b5a23; border: 1px solid #0b5a23; }
.status-activated { background: #e3ecfb; color: #123f8a; border: 1px solid #123f8a; }
.status-dormant { background: #ececec; color: #3d3d3d; border: 1px solid #6b6b6b; }
dl.plain { display: grid; grid-template-columns: 12rem 1fr; gap: 0.35rem 1rem; margin: 0.75rem 0; }
dl.plain dt { font-weight: 600; }
dl.plain dd { margin: 0; }
details { margin-top: 0.75rem; }
summary { cursor: pointer; font-weight: 600; color: #123f8a; }
table { border-collapse: collapse; width: 100%; margin: 0.75rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #d4d4cc; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #efefe9; }
caption { text-align: left; font-weight: 600; padding: 0.25rem 0; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.9em; }
.overridden { font-weight: 600; color: #8a1c12; }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _t(text) -> str:
    """Escaped text, with `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


def _code_list(items) -> str:
    return ", ".join(f"<code>{_e(i)}</code>" for i in items) or "none"


def render_html(register: dict) -> str:
    audit = register["audit"]
    out = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           '<title>Public algorithm register</title>', f'<style>{_CSS}</style>', '</head>', '<body>', '<main>',
           '<header>', '<h1>Which algorithms watch the city\'s data, and why</h1>']
    out.append(f'<p class="lead">{_e(INTRO[0])}</p>')
    out += [f"<p>{_e(p)}</p>" for p in INTRO[1:]]
    out.append(f'<p class="sources">{_e(_sources_line(register))}</p>')
    if audit["verified"] is False:
        out.append(f'<div class="warning" role="alert"><strong>The audit log does not verify.</strong> '
                   f'{_e(audit["summary"])}</div>')
    out.append('</header>')
    out += ['<nav aria-labelledby="contents">', '<h2 id="contents">All detectors at a glance</h2>', '<table>',
            '<thead><tr><th scope="col">Detector</th><th scope="col">What it is for</th>'
            '<th scope="col">Runs now?</th><th scope="col">Responsible</th></tr></thead>', '<tbody>']
    for det in register["detectors"]:
        out.append(f'<tr><td><a href="#{_e(_anchor(det["name"]))}"><code>{_e(det["name"])}</code></a></td>'
                   f'<td>{_e(det["purpose"])}</td><td>{_badge(det)}</td><td>{_e(det["owner"])}</td></tr>')
    out += ['</tbody>', '</table>', '</nav>']
    for label, detectors in _groups(register):
        out.append(f'<section aria-label="{_e(label)}">')
        out.append(f'<h2>{_e(label)}</h2>')
        for det in detectors:
            out += _html_detector(det)
        out.append('</section>')
    out += _html_about(register)
    out += ['</main>', '</body>', '</html>']
    return "\n".join(out) + "\n"


def _anchor(name: str) -> str:
    return "detector-" + name.replace(".", "-")


def _badge(det: dict) -> str:
    code = det["status_code"]
    return f'<span class="badge status-{_e(code)}" data-status="{_e(code)}">{_e(BADGE_WORDS.get(code, code))}</span>'


def _html_detector(det: dict) -> list[str]:
    data, sev = det["data"], SEVERITY_WORDS.get(det["severity"], det["severity"])
    out = [f'<article class="detector" id="{_e(_anchor(det["name"]))}" data-detector="{_e(det["name"])}" '
           f'data-status="{_e(det["status_code"])}">',
           f'<h3><code>{_e(det["name"])}</code></h3>',
           f'<p class="purpose">{_t(det["purpose"])}</p>',
           f'<p>{_badge(det)}{_t(det["status_note"])}</p>',
           '<dl class="plain">',
           f'<dt>How it works</dt><dd>{_t(det["logic"])}</dd>',
           f'<dt>Who is told</dt><dd>{_t(det["recipients"])}; {_e(sev)}</dd>',
           f'<dt>What a person does</dt><dd>{_t(det["human_oversight"])}</dd>',
           f'<dt>Responsible</dt><dd>{_e(det["owner"])}</dd>',
           f'<dt>Personal data</dt><dd>{_t(det["subject"]["personal_data"])}</dd>',
           f'<dt>Can a household object?</dt><dd>{_t(det["objection"]["how"])}</dd>',
           *([f'<dt>Consent</dt><dd>{_t(det["consent"]["how"])}</dd>',
              f'<dt>Away from home</dt><dd>{_t(det["absence"]["how"])}</dd>'] if det["subject"]["household"] else []),
           f'<dt>How long alerts are kept</dt><dd>{_t(det["retention"]["declared"])}</dd>',
           '</dl>',
           '<details>', '<summary>Technical details: thresholds, data, legal basis, history</summary>',
           '<dl class="plain">',
           f'<dt>Status</dt><dd>{_e(det["status"])} (declared {_e(det["declared_status"])})</dd>',
           f'<dt>Legal basis</dt><dd>{_t(det["legal_basis"])}</dd>',
           f'<dt>Retention</dt><dd>{_t(det["retention"]["note"])}</dd>',
           f'<dt>Alert topic</dt><dd><code>{_e(det["alert_topic_name"])}</code>, severity '
           f'<code>{_e(det["severity"])}</code>, standard alarm name <code>{_e(det["alarm_name"])}</code></dd>',
           f'<dt>Subject</dt><dd>{_e(det["subject"]["description"])} (<code>{_e(det["subject"]["kind"])}</code>)'
           f'</dd>',
           f'<dt>Runs on</dt><dd>{_e(det["runs_on"])}, in {_e(", ".join(det["domains"]))}</dd>',
           f'<dt>Data it reads</dt><dd>{_code_list(data["reads"])}</dd>',
           f'<dt>Columns and groups it is given</dt><dd>{_code_list(data["columns"] + data["reading_groups"])}</dd>',
           '<dt>Facts about each reading it is given (kept once by the domain\'s tracker)</dt><dd>'
           + (_code_list(data["reading_facts"]) if data["reading_facts"] else "none") + '</dd>',
           '<dt>State it reads</dt><dd>' + (", ".join(f'<code>{_e(s["field"])}</code> ({_e(s["owner"])})'
                                                     for s in data["state_reads"]) or "none") + '</dd>',
           f'<dt>State it writes</dt><dd>{_code_list(data["state_writes"]) if data["state_writes"] else _e(_no_writes(det))}'
           f'</dd>',
           '</dl>',
           '<table>', f'<caption>Thresholds in force for {_e(det["name"])}</caption>',
           '<thead><tr><th scope="col">Threshold</th><th scope="col">Value</th><th scope="col">Default</th>'
           '<th scope="col">Why</th></tr></thead>', '<tbody>']
    for t in det["thresholds"]:
        value = _e(_value(t["value"], t["unit"]))
        if t["overridden"]:
            value = f'<span class="overridden">{value} (overridden)</span>'
        out.append(f'<tr><th scope="row"><code>{_e(t["name"])}</code></th><td>{value}</td>'
                   f'<td>{_e(_value(t["default"], t["unit"]))}</td><td>{_e(t["why"])}</td></tr>')
    out += ['</tbody>', '</table>']
    if det["history"]:
        out += ['<table>', f'<caption>Audit history of {_e(det["name"])}</caption>',
                '<thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Action</th>'
                '<th scope="col">By</th><th scope="col">Why</th></tr></thead>', '<tbody>']
        for h in det["history"]:
            out.append(f'<tr><td>{_e(h["seq"])}</td><td>{_e(h["time"])}</td><td>{_e(h["action"])}</td>'
                       f'<td>{_e(h["by"])}</td><td>{_e(h["reason"])}</td></tr>')
        out += ['</tbody>', '</table>']
    else:
        out.append('<p>Audit history: no entry about it.</p>')
    out += ['</details>', '</article>']
    return out


def _html_about(register: dict) -> list[str]:
    out = ['<section aria-labelledby="about">', '<h2 id="about">About this register</h2>',
           '<table>', '<caption>What each network keeps about every sensor (its shared record)</caption>',
           '<thead><tr><th scope="col">Network</th><th scope="col">Subject</th><th scope="col">Pseudonymised</th>'
           '<th scope="col">Shared record fields</th></tr></thead>', '<tbody>']
    for d in register["domains"]:
        out.append(f'<tr><th scope="row">{_e(d["label"])}</th><td>{_e(d["subject"])}</td>'
                   f'<td>{"yes" if d["pseudonymised"] else "no"}</td><td>{_code_list(d["tracker_fields"])}</td></tr>')
    out += ['</tbody>', '</table>',
            f'<p>The pipeline itself, not a detector, reads each reading\'s <code>location</code> (and a gateway '
            f'batch\'s) {_t(register["domains"][0]["positions"]["purpose"])}:</p>', '<ul>']
    out += [f'<li>{_e(d["label"])}: {_e(d["positions"]["precision"])}</li>' for d in register["domains"]]
    out += ['</ul>', '<table>', '<caption>Alert topics and how long they keep alerts</caption>',
            '<thead><tr><th scope="col">Topic</th><th scope="col">Alerts kept</th><th scope="col">Detectors</th>'
            '</tr></thead>', '<tbody>']
    for t in register["topics"]:
        out.append(f'<tr><th scope="row"><code>{_e(t["name"])}</code></th><td>{_e(t["retention"])}</td>'
                   f'<td>{_code_list(t["detectors"])}</td></tr>')
    out += ['</tbody>', '</table>', '<table>', '<caption>How this register maps to other registers</caption>',
            '<thead><tr><th scope="col">Field</th><th scope="col">Amsterdam / Helsinki algorithm register</th>'
            '<th scope="col">CRPA L312-1-3 inventory</th></tr></thead>', '<tbody>']
    for f in register["schema"]["fields"]:
        out.append(f'<tr><th scope="row"><code>{_e(f["key"])}</code></th><td>{_e(f["amsterdam_helsinki"])}</td>'
                   f'<td>{_e(f["crpa_l312_1_3"])}</td></tr>')
    out += ['</tbody>', '</table>',
            f'<p>Not generated: {_e(", ".join(register["schema"]["not_covered"]))}. The same register is available '
            f'as Markdown and JSON (<code>glasscity register --format md|json|html</code>).</p>', '</section>']
    return out
