"""The public algorithm register: generated from the detectors, thresholds and audit log workers load."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from streams import register as reg
from streams.audit import append
from streams.config import settings_from
from streams.detectors import REGISTRY, WATCHERS, Declaration, Detector, threshold
from streams.register import build_register, render, render_html, render_json, render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "register.md"
ALL = sorted({*REGISTRY, *WATCHERS})
DORMANT = "water.test_dormant"
WHEN = datetime(2026, 1, 31, 8, 0, tzinfo=timezone.utc)


def dormant_class(name: str = DORMANT, **changes) -> type:
    """A test-only dormant household detector, as a register entry (never run)."""
    fields = dict(
        name=name, domain="water", purpose="Test: a dormant household analysis.",
        legal_basis="Public task (GDPR Art. 6(1)(e)); test only.", reads=("id (pseudonymised)", "waterConsumption"),
        recipients="nobody (test)", alert_topic="alerts.v1", severity="info", subject_kind="water_meter",
        retention="alerts kept 90 days", human_oversight="a tester reads it", status="dormant",
        owner="Test department", logic="It looks at nothing and never speaks up.", objection_allowed=True)
    fields.update(changes)

    class TestDormant(Detector):
        declaration = Declaration(**fields)

        @dataclass(frozen=True)
        class Thresholds:
            quiet_after_s: float = threshold(3600.0, "s", "A test threshold with its reason.", above=0)

        columns = ("waterConsumption",)
        state_reads = ("last_seen", "gateway.outage_since")
        subject_fields = (("td_since", np.float64, np.nan),)

    return TestDormant


def with_dormant(**changes) -> dict:
    return {**REGISTRY, DORMANT: dormant_class(**changes)}


def make_settings(**overrides):
    return settings_from(environ={}, **overrides)


def entry(register: dict, name: str) -> dict:
    return next(d for d in register["detectors"] if d["name"] == name)


class _Cards(HTMLParser):
    """{detector name: data-status} of the register's <article> cards, and its badges' data-status."""

    def __init__(self):
        super().__init__()
        self.cards, self.badges, self._current = {}, {}, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "article" and "data-detector" in a:
            self._current = a["data-detector"]
            self.cards[self._current] = a.get("data-status")
        elif tag == "span" and "badge" in a.get("class", "") and self._current is not None:
            self.badges.setdefault(self._current, a.get("data-status"))


def cards(page: str) -> _Cards:
    parser = _Cards()
    parser.feed(page)
    return parser


# -- every detector, every format ----------------------------------------------------------------

def test_every_detector_appears_with_its_status_in_every_format():
    register = build_register(make_settings(), registry=with_dormant())
    names = {d["name"] for d in register["detectors"]}
    assert names == {*ALL, DORMANT}
    shipped_dormant = {n for n, c in REGISTRY.items() if c.declaration.status == "dormant"}
    assert "water.routine_change" in shipped_dormant                  # a real analysis ships dormant
    for det in register["detectors"]:
        expected = "dormant" if det["name"] in shipped_dormant | {DORMANT} else "active"
        assert det["status"] == expected and det["status_code"] == expected
        assert det["running"] is (expected == "active")
    md = render_markdown(register)
    page = render_html(register)
    parsed = cards(page)
    data = json.loads(render_json(register))
    for name in names:
        expected = "dormant" if name in shipped_dormant | {DORMANT} else "active"
        assert f"### `{name}`\n\n- **Status:** {expected}." in md
        assert parsed.cards[name] == expected and parsed.badges[name] == expected
        assert entry(data, name)["status"] == expected


def test_every_declaration_field_reaches_the_register():
    register = build_register(make_settings())
    for det in register["detectors"]:
        cls = {**REGISTRY, **WATCHERS}[det["name"]]
        d = cls.declaration if det["name"] in REGISTRY else cls.declaration_for("water")
        for key in ("purpose", "logic", "owner", "legal_basis", "recipients", "human_oversight", "severity",
                    "alarm_name", "alert_topic"):
            assert det[key] == getattr(d, key) and det[key], (det["name"], key)
        assert det["retention"]["declared"] == d.retention and det["retention"]["declared_s"] == d.retention_s
        assert det["consent"]["requires_enrolment"] is d.requires_enrolment
        assert det["absence"]["holds_alerts"] is d.absence_holds
        assert det["objection"]["allowed"] is d.objection_allowed
        assert det["data"]["reads"] == list(d.reads)
        assert [t["name"] for t in det["thresholds"]] == [f.name for f in dataclasses.fields(cls.Thresholds)]


def test_purpose_binding_fields_and_their_owners():
    register = build_register(make_settings())
    no_use = entry(register, "water.no_use_24h")
    reads = {s["field"]: s["owner"] for s in no_use["data"]["state_reads"]}
    assert reads["gateway.outage_since"] == "feed.gateway_outage"
    assert reads["last_use"] == "the water domain's shared tracker"
    assert no_use["data"]["state_writes"] == ["no_use_since"]
    outage = entry(register, "feed.gateway_outage")
    assert outage["data"]["reading_groups"] == ["gateway"]
    assert outage["data"]["state_writes"] == ["gateway.outage_since", "gateway.outage_back", "gateway.outage_ended",
                                              "gateway.outage_opened"]
    assert entry(register, "water.burst")["data"]["columns"] == ["maxFlowLastHour", "nominalFlow", "waterConsumption"]
    water = next(d for d in register["domains"] if d["name"] == "water")
    assert {"last_seen", "last_use", "cadence", "gateway.last_seen"} <= set(water["tracker_fields"])
    assert "no_use_since" not in water["tracker_fields"] and water["pseudonymised"]
    assert not next(d for d in register["domains"] if d["name"] == "traffic")["pseudonymised"]


def test_positions_read_by_the_pipeline_are_declared_per_domain():
    from streams.pipeline.positions import PERSONAL_POSITION_CELL_M

    register = build_register(make_settings())
    positions = {d["name"]: d["positions"] for d in register["domains"]}
    assert set(positions) == {"water", "traffic", "waste", "lighting"}
    assert all(p["reads"] == "location" and "no detector" in p["purpose"] for p in positions.values())
    assert f"{PERSONAL_POSITION_CELL_M:g} m grid cell" in positions["water"]["precision"]
    assert all(p["precision"].startswith("exact") for name, p in positions.items() if name != "water")
    # no detector is given the location: it is in no declaration's reads or columns
    assert not any("location" in det["data"]["reads"] + det["data"]["columns"] for det in register["detectors"])
    page, markdown = render_html(register), render_markdown(register)
    import html
    assert "reads each reading" in markdown and positions["water"]["precision"] in markdown
    assert "reads each reading" in page and html.escape(positions["water"]["precision"]) in page


def test_subjects_and_pseudonymisation():
    register = build_register(make_settings())
    assert entry(register, "water.continuous_flow")["subject"]["pseudonymised"] is True
    assert "HMAC" in entry(register, "water.continuous_flow")["subject"]["personal_data"]
    for name in ("feed.gateway_outage", "water.night_flow"):
        subject = entry(register, name)["subject"]
        assert subject["household"] is False and "never about a household" in subject["personal_data"]
    for name in ("lighting.lamp_failure", "traffic.incident", "waste.fire", "feed.stalled"):
        assert entry(register, name)["subject"]["personal_data"].startswith("No personal data")


def test_consent_absence_and_objection():
    register = build_register(make_settings())
    no_use = entry(register, "water.no_use_24h")
    assert no_use["consent"]["requires_enrolment"] and "`glasscity enrol --meter ID`" in no_use["consent"]["how"]
    assert "`glasscity absence declare --meter ID --from T --until T`" in no_use["absence"]["how"]
    assert not no_use["objection"]["allowed"] and "un-enrolling" in no_use["objection"]["how"]
    leak = entry(register, "water.continuous_flow")
    assert leak["objection"]["allowed"]
    assert "`glasscity object --meter ID --detector water.continuous_flow`" in leak["objection"]["how"]
    burst = entry(register, "water.burst")
    assert not burst["objection"]["allowed"] and burst["legal_basis"] in burst["objection"]["how"]
    assert entry(register, "lighting.cycling")["objection"]["how"].startswith("Not applicable")
    md = render_markdown(register)
    assert "`glasscity object --meter ID --detector water.continuous_flow`" in md
    assert "<code>glasscity object --meter ID --detector water.continuous_flow</code>" in render_html(register)


def test_retention_is_the_alert_topics():
    register = build_register(make_settings())
    topics = {t["topic"]: t for t in register["topics"]}
    assert topics["alerts.v1"]["retention_s"] == 90 * 86400 and topics["alerts.welfare.v1"]["retention_s"] == 30 * 86400
    assert topics["alerts.welfare.v1"]["detectors"] == ["water.no_use_24h", "water.routine_change"]
    for det in register["detectors"]:
        assert det["retention"]["topic_s"] == topics[det["alert_topic"]]["retention_s"] == det["retention"]["declared_s"]
        assert det["alert_topic_name"] in det["retention"]["note"]
    # a detector declaring less shortens its topic's retention for every detector on it, and it says so
    shorter = build_register(make_settings(), registry=with_dormant(retention="alerts kept 7 days",
                                                                    retention_s=7 * 86400.0))
    assert {t["topic"]: t["retention_s"] for t in shorter["topics"]}["alerts.v1"] == 7 * 86400
    burst = entry(shorter, "water.burst")
    assert burst["retention"]["topic_s"] == 7 * 86400 and "shorter than the 90 days" in burst["retention"]["note"]


# -- thresholds in force -------------------------------------------------------------------------

def test_thresholds_reflect_an_override_file(tmp_path):
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"water.no_use_24h": {"no_use_after_s": 43200}, "feed.stalled": {"stalled_after_s": 600}}))
    register = build_register(make_settings(thresholds_file=str(path)))
    assert register["sources"]["thresholds_file"] == str(path)
    rows = {t["name"]: t for t in entry(register, "water.no_use_24h")["thresholds"]}
    assert rows["no_use_after_s"] == {"name": "no_use_after_s", "value": 43200.0, "default": 86400.0, "unit": "s",
                                          "why": rows["no_use_after_s"]["why"], "overridden": True}
    assert rows["reporting_within_s"]["overridden"] is False
    stalled = entry(register, "feed.stalled")["thresholds"][0]
    assert stalled["value"] == 600 and stalled["overridden"]
    others = [t for d in register["detectors"] if d["name"] not in ("water.no_use_24h", "feed.stalled")
              for t in d["thresholds"]]
    assert others and not any(t["overridden"] for t in others)
    assert "| `no_use_after_s` | 43200 s (12 hours) (overridden) | 86400 s (1 day) |" in render_markdown(register)
    assert '<span class="overridden">43200 s (12 hours) (overridden)</span>' in render_html(register)
    assert str(path) in render_markdown(register)


# -- the audit log: status and history -----------------------------------------------------------

def test_an_activation_changes_a_dormant_detectors_status(tmp_path):
    log = tmp_path / "audit.jsonl"
    settings = make_settings(audit_log=str(log))
    assert entry(build_register(settings, registry=with_dormant()), DORMANT)["status"] == "dormant"
    append(log, "activate", DORMANT, "Head of water services", "council decision 2026-14", now=WHEN)
    register = build_register(settings, registry=with_dormant())
    det = entry(register, DORMANT)
    assert det["status"] == ("dormant — activated on 2026-01-31 08:00 UTC by Head of water services "
                             "(council decision 2026-14)")
    assert det["status_code"] == "activated" and det["running"] is True and det["declared_status"] == "dormant"
    assert det["history"] == [{"seq": 0, "time": "2026-01-31T08:00:00Z", "action": "activate",
                               "by": "Head of water services", "reason": "council decision 2026-14"}]
    assert register["audit"] == {"log": str(log), "verified": True, "entries": 1, "problems": [],
                                      "summary": register["audit"]["summary"]}
    assert all(d["history"] == [] for d in register["detectors"] if d["name"] != DORMANT)
    md, page = render_markdown(register), render_html(register)
    assert f"- **Status:** {det['status']}." in md
    assert "| 0 | 2026-01-31T08:00:00Z | activate | Head of water services | council decision 2026-14 |" in md
    assert cards(page).cards[DORMANT] == "activated" and cards(page).badges[DORMANT] == "activated"
    assert "council decision 2026-14" in page

    append(log, "deactivate", DORMANT, "Head of water services", "trial ended",
           now=datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc))
    det = entry(build_register(settings, registry=with_dormant()), DORMANT)
    assert det["status"] == "dormant" and det["running"] is False and len(det["history"]) == 2
    assert "switched off again on 2026-03-01 09:30 UTC by Head of water services (trial ended)" in det["status_note"]


def test_other_audit_actions_about_a_detector_are_shown_in_its_history(tmp_path):
    """Entries of actions besides activate/deactivate (written here without streams.audit, which
    may not know them) appear in the detector's history, with their standard fields only."""
    from streams.audit import GENESIS, _digest

    log = tmp_path / "audit.jsonl"
    e = {"seq": 0, "time": "2026-02-01T10:00:00Z", "action": "thresholds", "detector": "water.burst",
         "by": "network operations", "reason": "Q3 of the new meters", "prev": GENESIS, "extra": "not published"}
    e["hash"] = _digest(e)
    log.write_text(json.dumps(e) + "\n")
    det = entry(build_register(make_settings(audit_log=str(log))), "water.burst")
    assert det["history"] == [{"seq": 0, "time": "2026-02-01T10:00:00Z", "action": "thresholds",
                               "by": "network operations", "reason": "Q3 of the new meters"}]
    assert det["status"] == "active"


def test_a_tampered_log_is_reported_and_dormant_ones_do_not_run(tmp_path):
    log = tmp_path / "audit.jsonl"
    append(log, "activate", DORMANT, "Head of water services", "council decision 2026-14", now=WHEN)
    raw = log.read_bytes()
    at = raw.index(b"council")
    log.write_bytes(raw[:at] + b"C" + raw[at + 1:])                    # one byte edited
    register = build_register(make_settings(audit_log=str(log)), registry=with_dormant())
    audit = register["audit"]
    assert audit["verified"] is False and audit["problems"] == ["entry 1: its content does not match its hash (edited)"]
    det = entry(register, DORMANT)
    assert det["status"] == "dormant" and det["running"] is False and det["status_code"] == "dormant"
    assert "does not verify" in det["status_note"]
    assert len(det["history"]) == 1                                     # shown, but it switches nothing on
    assert all(d["status"] == REGISTRY[d["name"]].declaration.status for d in register["detectors"]
               if d["name"] in REGISTRY)
    md, page = render_markdown(register), render_html(register)
    assert "> **Warning: the audit log does not verify.**" in md and "entry 1: its content does not match" in md
    assert '<div class="warning" role="alert"><strong>The audit log does not verify.</strong>' in page
    assert cards(page).cards[DORMANT] == "dormant"


# -- escaping and JSON ---------------------------------------------------------------------------

def test_html_escapes_all_text(tmp_path):
    registry = with_dormant(purpose='<script>alert("purpose")</script> & more',
                            logic="It looks at <b>bold</b> \"quoted\" 'text'.", owner="Team <img src=x onerror=alert(1)>")
    log = tmp_path / "audit.jsonl"
    append(log, "activate", DORMANT, "<i>someone</i>", '"><script>alert("reason")</script>', now=WHEN)
    page = render_html(build_register(make_settings(audit_log=str(log)), registry=registry))
    assert "<script" not in page and "<img" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(&quot;purpose&quot;)&lt;/script&gt; &amp; more" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &quot;quoted&quot; &#x27;text&#x27;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;i&gt;someone&lt;/i&gt;" in page
    assert "&quot;&gt;&lt;script&gt;alert(&quot;reason&quot;)&lt;/script&gt;" in page
    md = render_markdown(build_register(make_settings(audit_log=str(log)), registry=registry))
    assert "<script" not in md and "&lt;script&gt;" in md


def test_html_is_one_self_contained_page():
    page = render_html(build_register(make_settings()))
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">')
    assert "<script" not in page and not re.search(r"""(src|href)=["'](https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    assert page.index("Which algorithms watch the city") < page.index("<article")
    first = page[page.index("<article"):]
    first = first[:first.index("</article>")]
    plain = first[:first.index("<details>")]
    assert "How it works" in plain and "Who is told" in plain and 'class="badge' in plain    # plain words first
    assert "Thresholds in force" in first[first.index("<details>"):]                          # details below
    assert page.count("<article") == page.count("</article>") == len(ALL)
    assert page.count("<details>") == page.count("</details>") == len(ALL)


def test_json_round_trip_and_stable_keys():
    register = build_register(make_settings(), registry=with_dormant())
    text = render_json(register)
    assert json.loads(text) == register
    assert text == render_json(build_register(make_settings(), registry=with_dormant()))
    assert list(register) == ["register", "schema_version", "schema", "sources", "audit", "topics", "domains",
                              "detectors"]
    keys = ["name", "domains", "runs_on", "status", "status_code", "declared_status", "running", "status_note",
            "purpose", "logic", "owner", "legal_basis", "severity", "alarm_name", "subject", "data", "recipients",
            "alert_topic", "alert_topic_name", "retention", "human_oversight", "consent", "absence", "objection",
            "thresholds", "history"]
    for det in register["detectors"]:
        assert list(det) == keys
        assert list(det["subject"]) == ["kind", "description", "household", "pseudonymised", "personal_data"]
        assert list(det["data"]) == ["reads", "columns", "reading_groups", "reading_facts", "state_reads",
                                     "state_writes"]
        assert list(det["retention"]) == ["declared", "declared_s", "topic_s", "note"]
    doc = reg.__doc__
    for key in keys + ["schema_version", "sources", "audit", "topics", "domains", "tracker_fields", "tracker_facts",
                       "reading_facts", "overridden"]:
        assert f"``{key}``" in doc, key
    assert {f["key"] for f in register["schema"]["fields"]} <= set(keys)
    assert all(f["amsterdam_helsinki"] and f["crpa_l312_1_3"] for f in register["schema"]["fields"])


def test_render_refuses_an_unknown_format():
    with pytest.raises(ValueError, match="md, json, html"):
        render(build_register(make_settings()), "pdf")


# -- the committed page and the command ----------------------------------------------------------

def test_the_committed_register_is_what_the_code_generates():
    assert DOC.read_text(encoding="utf-8") == render_markdown(build_register(make_settings())), \
        "docs/register.md is stale: regenerate with `glasscity register --format md --output docs/register.md` " \
        "(no thresholds file, no audit log set)"


def _run(*args, env_extra=None):
    env = {"PATH": "/usr/bin:/bin", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "streams", "register", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_command_writes_each_format(tmp_path):
    result = _run()
    assert result.returncode == 0, result.stderr
    assert result.stdout == render_markdown(build_register(make_settings()))
    result = _run("--format", "json")
    assert result.returncode == 0 and {d["name"] for d in json.loads(result.stdout)["detectors"]} == set(ALL)
    out = tmp_path / "register.html"
    result = _run("--format", "html", "--output", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert set(cards(out.read_text(encoding="utf-8")).cards) == set(ALL)
    result = _run(env_extra={"GLASSCITY_REGISTER_FORMAT": "json"})
    assert result.returncode == 0 and json.loads(result.stdout)["schema_version"] == 1


def test_command_reads_thresholds_and_audit_log_from_flags_and_environment(tmp_path):
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"water.no_use_24h": {"no_use_after_s": 43200}}))
    log = tmp_path / "audit.jsonl"
    append(log, "activate", "water.no_use_24h", "someone", "recorded for the test", now=WHEN)
    for args, env in ((("--thresholds", str(path), "--audit-log", str(log)), None),
                      ((), {"GLASSCITY_THRESHOLDS": str(path), "GLASSCITY_AUDIT_LOG": str(log)})):
        result = _run("--format", "json", *args, env_extra=env)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["sources"] == {"detectors": data["sources"]["detectors"], "thresholds_file": str(path),
                                   "audit_log": str(log)}
        det = entry(data, "water.no_use_24h")
        assert det["thresholds"][0]["value"] == 43200 and det["history"][0]["reason"] == "recorded for the test"


def test_command_exits_1_on_a_log_that_does_not_verify_and_still_writes_the_register(tmp_path):
    log = tmp_path / "audit.jsonl"
    append(log, "activate", "water.no_use_24h", "someone", "recorded for the test", now=WHEN)
    log.write_text(log.read_text().replace("someone", "somebody"))
    out = tmp_path / "register.md"
    result = _run("--audit-log", str(log), "--output", str(out))
    assert result.returncode == 1
    assert result.stderr.startswith(f"glasscity register: the audit log {log} does not verify (entry 1:")
    assert "> **Warning: the audit log does not verify.**" in out.read_text(encoding="utf-8")


def test_command_refuses_bad_arguments(tmp_path):
    bad = tmp_path / "thresholds.json"
    bad.write_text(json.dumps({"water.nothing": {}}))
    result = _run("--thresholds", str(bad))
    assert result.returncode == 2 and "unknown detectors: water.nothing" in result.stderr
    assert _run("--format", "pdf").returncode == 2
    result = _run(env_extra={"GLASSCITY_REGISTER_FORMAT": "pdf"})
    assert result.returncode == 2 and "--format must be one of md, json, html" in result.stderr
    result = _run("--output", str(tmp_path / "missing" / "register.md"))
    assert result.returncode == 2 and "cannot write" in result.stderr
