"""The audit log: hash-chained, every edit, removal or reordering found by position; a dormant
detector runs only after a recorded activation in a log that verifies."""

import dataclasses
import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from streams.audit import AuditError, activations, append, verify
from streams.domains import DOMAINS
from streams.pipeline import DomainPipeline
from tests.streams.detectors.corpus import PSEUDONYMS, SETTINGS, raw_messages, simulation

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def three_entries(path):
    append(path, "activate", "water.burst", "Ana Ruiz (DPO)", "pilot approved, decision 2026/41", now=T0)
    append(path, "deactivate", "water.burst", "Ana Ruiz (DPO)", "pilot ended", now=T0)
    append(path, "activate", "water.backflow", "ops lead", "ticket 7", now=T0)


def test_entries_chain_and_verify(tmp_path):
    log = tmp_path / "audit.jsonl"
    three_entries(log)
    entries, problems = verify(log)
    assert problems == [] and [e["seq"] for e in entries] == [0, 1, 2]
    assert entries[1]["prev"] == entries[0]["hash"] and entries[2]["prev"] == entries[1]["hash"]
    assert activations(log) == ({"water.backflow"}, [])


@pytest.mark.parametrize("position", [1, 2, 3])
def test_one_edited_byte_is_found_and_named(tmp_path, position):
    log = tmp_path / "audit.jsonl"
    three_entries(log)
    lines = log.read_text().splitlines()
    line = lines[position - 1]
    i = line.index("Ruiz") if "Ruiz" in line else line.index("ops")
    lines[position - 1] = line[:i] + ("X" if line[i] != "X" else "Y") + line[i + 1:]
    log.write_text("\n".join(lines) + "\n")
    _entries, problems = verify(log)
    assert [p.position for p in problems] == [position] and "edited" in problems[0].reason
    assert activations(log) == (set(), problems)          # a tampered log activates nothing


def test_a_removed_entry_is_found_at_the_entry_after_it(tmp_path):
    log = tmp_path / "audit.jsonl"
    three_entries(log)
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], lines[2]]) + "\n")
    _entries, problems = verify(log)
    assert [p.position for p in problems] == [2] and "removed" in problems[0].reason


def test_reordered_entries_are_found(tmp_path):
    log = tmp_path / "audit.jsonl"
    three_entries(log)
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], lines[2], lines[1]]) + "\n")
    _entries, problems = verify(log)
    assert {p.position for p in problems} == {2, 3}


def test_nothing_is_appended_to_a_tampered_log_nor_without_who_and_why(tmp_path):
    log = tmp_path / "audit.jsonl"
    three_entries(log)
    log.write_text(log.read_text().replace("ticket 7", "ticket 8"))
    before = log.read_text()
    with pytest.raises(AuditError, match="does not verify.*entry 3"):
        append(log, "activate", "water.burst", "someone", "because")
    assert log.read_text() == before
    with pytest.raises(AuditError, match="who .*why"):
        append(tmp_path / "other.jsonl", "activate", "water.burst", " ", "because")
    with pytest.raises(AuditError, match="action must be"):
        append(tmp_path / "other.jsonl", "enable", "water.burst", "a", "b")


def dormant(cls):
    return type(cls.__name__, (cls,), {"declaration": dataclasses.replace(cls.declaration, status="dormant")})


def test_a_dormant_detector_runs_only_after_a_recorded_activation(tmp_path):
    water = DOMAINS["water"]
    burst = next(c for c in water.detectors if c.declaration.name == "water.burst")
    domain = dataclasses.replace(water, detectors=tuple(dormant(c) if c is burst else c for c in water.detectors))
    sim = simulation(water)
    messages = raw_messages(sim)
    log = tmp_path / "audit.jsonl"

    def bursts():
        activated, _problems = activations(log)
        pipeline = DomainPipeline(domain, SETTINGS, PSEUDONYMS, clock=lambda: sim.end + 3600, activated=activated)
        return [a for a in pipeline.process(messages).alerts if a.event["data"]["detector"] == "water.burst"]

    assert bursts() == []                                    # dormant, no log
    append(log, "activate", "water.burst", "DPO", "approved", now=T0)
    assert len(bursts()) > 0                                 # activated: it runs
    append(log, "deactivate", "water.burst", "DPO", "withdrawn", now=T0)
    assert bursts() == []
    append(log, "activate", "water.burst", "DPO", "approved again", now=T0)
    log.write_text(log.read_text().replace("approved again", "approved, again"))
    assert bursts() == []                                    # an edited activation switches nothing on


def run_cli(*args, env):
    return subprocess.run([sys.executable, "-m", "streams", *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", **env})


@pytest.mark.parametrize("content", [b"\xff\xfe not utf-8\n", b'{"seq": 0}\n', b"[1, 2]\n"])
def test_an_unreadable_or_malformed_log_is_a_problem_not_a_crash(tmp_path, content):
    log = tmp_path / "audit.jsonl"
    log.write_bytes(content)
    activated, problems = activations(log)
    assert activated == set() and len(problems) == 1
    activated, problems = activations(tmp_path)                                   # a directory
    assert activated == set() and "cannot be read" in str(problems[0])


def test_replay_refuses_a_dormant_detector_without_its_activation(tmp_path, monkeypatch):
    import streams.replay as replay
    from streams.config import SettingsError, settings_from

    water = DOMAINS["water"]
    burst = next(c for c in water.detectors if c.declaration.name == "water.burst")
    monkeypatch.setitem(DOMAINS, "water", dataclasses.replace(
        water, detectors=tuple(dormant(c) if c is burst else c for c in water.detectors)))
    source = tmp_path / "in.jsonl"
    source.write_text("")
    with pytest.raises(SettingsError, match="water.burst is dormant and not activated"):
        replay._replay_readings("water.burst", {}, source, tmp_path / "out.csv",
                                settings_from(environ={}, pseudonym_key="k" * 16), sys.stdout)


def test_the_thresholds_a_worker_loads_are_recorded_when_they_change(tmp_path, caplog, monkeypatch):
    import streams.registers
    from streams.config import settings_from
    from streams.detectors import CONFIGURABLE
    from streams.detectors.thresholds import load_thresholds
    from streams.worker import _record_thresholds

    log = tmp_path / "audit.jsonl"
    overrides = tmp_path / "thresholds.json"
    copies = []
    monkeypatch.setattr(streams.registers, "publish_audit", lambda settings, entries: copies.extend(entries))

    def start(values: dict | None, audit=str(log)):
        if values is not None:
            overrides.write_text(json.dumps(values))
        settings = settings_from(environ={}, audit_log=audit, thresholds_file=str(overrides) if values else "")
        _record_thresholds(settings, load_thresholds(settings.thresholds_file, CONFIGURABLE))
        return [e for e in verify(log)[0] if e["action"] == "thresholds"] if log.exists() else []

    assert start(None) == []                                   # defaults, never recorded: nothing to record
    entries = start({"water.no_use_24h": {"no_use_after_s": 43200}})
    assert [(e["detector"], e["details"]["no_use_after_s"]) for e in entries] == [("water.no_use_24h", 43200.0)]
    assert entries[0]["reason"] == f"loaded from {overrides}" and entries[0]["by"].startswith("worker glasscity@")
    assert len(start({"water.no_use_24h": {"no_use_after_s": 43200}})) == 1      # the same again: no new entry
    back = start(None)                                          # back to the defaults: that is a change too
    assert len(back) == 2 and back[-1]["details"]["no_use_after_s"] == 86400.0
    assert verify(log)[1] == [] and copies == verify(log)[0]   # each entry also copied to the audit topic
    caplog.clear()
    start({"water.burst": {"min_duration_s": 7200}}, audit="")
    assert "threshold overrides of water.burst are not recorded" in caplog.text
