"""The audited commands on a real broker: detectors activate/deactivate, audit verify/sync, enrol,
absence, object and reidentify — file, register topics and the audit topic's copy."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess

import orjson

from streams.cli import main
from streams.consent import REGISTER_TOPICS, ConsentRegister
from streams.pseudonym import Pseudonymizer
from streams.registers import read_all
from streams.topics import AUDIT_TOPIC
from tests.conftest import TEST_KEY


def run_cli(*args, env):
    """``glasscity ARGS`` in this process (the same entry point, without an interpreter start per call),
    with exactly ``env`` as the environment."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", **env})
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as stop:           # argparse's exit on a bad argument
                code = stop.code
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def environment(settings, tmp_path, **extra):
    return {"GLASSCITY_AUDIT_LOG": str(tmp_path / "audit.jsonl"), "GLASSCITY_BOOTSTRAP": settings.bootstrap,
            "GLASSCITY_TOPIC_PREFIX": settings.topic_prefix, **extra}


def test_activation_is_recorded_in_the_file_and_on_the_topic_and_verify_names_the_broken_entry(broker_settings,
                                                                                            tmp_path):
    env = environment(broker_settings, tmp_path)
    done = run_cli("detectors", "activate", "water.burst", "--by", "DPO", "--reason", "approved", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("entry 1: activate water.burst by DPO")
    assert run_cli("detectors", "deactivate", "water.burst", "--by", "DPO", "--reason", "ended",
                   env=env).returncode == 0
    ok = run_cli("audit", "verify", "--against-topic", env=env)
    assert ok.returncode == 0 and "2 entries, chain intact, equal to the copy" in ok.stdout, ok.stdout + ok.stderr
    copies = [orjson.loads(v) for _k, v in read_all(broker_settings, AUDIT_TOPIC)]
    path = tmp_path / "audit.jsonl"
    assert copies == [json.loads(line) for line in path.read_text().splitlines()]
    listed = run_cli("detectors", "list", env=env)
    assert listed.returncode == 0 and "water.burst" in listed.stdout

    lines = path.read_text().splitlines()
    # the newest entry removed: the chain cannot tell, the topic copy can
    path.write_text(lines[0] + "\n")
    assert run_cli("audit", "verify", env=env).returncode == 0
    against = run_cli("audit", "verify", "--against-topic", env=env)
    assert against.returncode == 1 and "entry 2: on the audit topic but not in the file" in against.stdout
    # one edited entry: named by position
    entry = json.loads(lines[0])
    entry["by"] = "someone else"
    path.write_text("\n".join([json.dumps(entry), lines[1]]) + "\n")
    bad = run_cli("audit", "verify", env=env)
    assert bad.returncode == 1 and bad.stdout.startswith("entry 1: its content does not match its hash")
    unknown = run_cli("detectors", "activate", "water.nope", "--by", "a", "--reason", "b", env=env)
    assert unknown.returncode == 2 and "no detector 'water.nope'" in unknown.stderr


def test_a_failed_topic_copy_is_said_and_audit_sync_repairs_it(broker_settings, tmp_path):
    env = environment(broker_settings, tmp_path)
    nowhere = dict(env, GLASSCITY_BOOTSTRAP="127.0.0.1:1")
    failed = run_cli("detectors", "activate", "water.burst", "--by", "DPO", "--reason", "approved", env=nowhere)
    assert failed.returncode == 1 and "run `glasscity audit sync`" in failed.stderr
    assert len((tmp_path / "audit.jsonl").read_text().splitlines()) == 1     # the file has it
    assert run_cli("audit", "verify", "--against-topic", env=env).returncode == 1
    synced = run_cli("audit", "sync", env=env)
    assert synced.returncode == 0 and synced.stdout.startswith("ok: 1 of 1 entries copied"), synced.stderr
    assert run_cli("audit", "verify", "--against-topic", env=env).returncode == 0


def register_of(settings) -> ConsentRegister:
    register = ConsentRegister()
    for kind, short in REGISTER_TOPICS.items():
        for key, value in read_all(settings, short):
            register.apply(kind, key, value)
    return register


def test_consent_commands_write_pseudonyms_to_the_registers_and_audit_them(broker_settings, tmp_path):
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text(TEST_KEY + "\n")
    env = environment(broker_settings, tmp_path, GLASSCITY_PSEUDONYM_KEY_FILE=str(key_file))
    me = Pseudonymizer(TEST_KEY.encode()).meter("meter-0042")
    assert run_cli("enrol", "--meter", "meter-0042", "--by", "welfare office", "--reason", "consent form 113",
                   env=env).returncode == 0
    assert run_cli("enrol", "--meter", "meter-0043", "--by", "welfare office", "--reason", "consent form 114",
                   env=env).returncode == 0
    assert run_cli("unenrol", "--meter", "meter-0043", "--by", "welfare office", "--reason", "withdrawn",
                   env=env).returncode == 0
    declared = run_cli("absence", "declare", "--meter", "meter-0042", "--from", "2026-12-24T00:00:00+01:00",
                       "--until", "2026-12-27T00:00:00+01:00", "--by", "daughter (carer)", "--reason", "holidays",
                       env=env)
    assert declared.returncode == 0, declared.stderr
    objected = run_cli("object", "--meter", "meter-0042", "--detector", "water.continuous_flow", "--by", "resident",
                       "--reason", "letter of 2026-12-01", env=env)
    assert objected.returncode == 0, objected.stderr
    refused = run_cli("object", "--meter", "meter-0042", "--detector", "water.no_use_24h", "--by", "resident",
                      "--reason", "x", env=env)
    assert refused.returncode == 2 and "does not allow objection" in refused.stderr
    register = register_of(broker_settings)
    assert register.enrolled == {me} and register.malformed == 0
    assert register.absent(me, 1_798_066_800.0 + 3600) and not register.absent(me, 1_798_066_800.0 + 3 * 86400)
    assert register.objections[me] == {"water.continuous_flow"}
    # no meter id on any register or in the audit log and its copy
    texts = [path.read_text() for path in [tmp_path / "audit.jsonl"]]
    texts += [repr(read_all(broker_settings, short)) for short in [*REGISTER_TOPICS.values(), AUDIT_TOPIC]]
    assert not any("meter-004" in text for text in texts)
    actions = [json.loads(line)["action"] for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert actions == ["enrol", "enrol", "unenrol", "absence", "object"]
    cancelled = run_cli("absence", "cancel", "--meter", "meter-0042", "--from", "2026-12-24T00:00:00+01:00",
                        "--by", "daughter (carer)", "--reason", "trip cancelled", env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert not register_of(broker_settings).absent(me, 1_798_066_800.0 + 3600)


def test_reidentify_needs_the_key_and_a_reason_and_is_audited(broker_settings, tmp_path):
    env = environment(broker_settings, tmp_path, GLASSCITY_PSEUDONYM_KEY=TEST_KEY)
    registry = tmp_path / "meters.csv"
    registry.write_text("meter_id,street\n" + "".join(f"meter-{i:04d},Main St {i}\n" for i in range(500)))
    wanted = Pseudonymizer(TEST_KEY.encode()).meter("meter-0317")
    found = run_cli("reidentify", wanted, "--registry", str(registry), "--by", "welfare officer K.",
                    "--reason", "welfare alert 2026-12-02, no answer by phone", env=env)
    assert found.returncode == 0 and found.stdout.strip() == "meter-0317", found.stderr
    entry = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert entry["action"] == "reidentify" and entry["subject"] == wanted and entry["by"] == "welfare officer K."
    assert "meter-0317" not in json.dumps(entry)
    other_key = run_cli("reidentify", wanted, "--registry", str(registry), "--by", "x", "--reason", "y",
                        env=dict(env, GLASSCITY_PSEUDONYM_KEY="another-key-of-16-bytes"))
    assert other_key.returncode == 1 and "no meter id" in other_key.stderr
    no_key = run_cli("reidentify", wanted, "--registry", str(registry), "--by", "x", "--reason", "y",
                     env=dict(env, GLASSCITY_PSEUDONYM_KEY=""))
    assert no_key.returncode == 2 and "at least 16 bytes" in no_key.stderr
    no_reason = run_cli("reidentify", wanted, "--registry", str(registry), "--by", "x", env=env)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    assert TEST_KEY not in no_key.stderr + other_key.stderr + found.stderr + found.stdout


def test_rekey_moves_every_register_record_to_the_new_key(broker_settings, tmp_path):
    env = environment(broker_settings, tmp_path, GLASSCITY_PSEUDONYM_KEY=TEST_KEY)
    for meter in ("meter-0001", "meter-0002", "meter-9999"):
        assert run_cli("enrol", "--meter", meter, "--by", "w", "--reason", "form", env=env).returncode == 0
    assert run_cli("absence", "declare", "--meter", "meter-0001", "--from", "1800000000", "--until", "1800086400",
                   "--by", "carer", "--reason", "trip", env=env).returncode == 0
    assert run_cli("object", "--meter", "meter-0002", "--by", "resident", "--reason", "letter", env=env).returncode == 0
    registry = tmp_path / "meters.txt"
    registry.write_text("meter-0001\nmeter-0002\nmeter-0003\n")         # meter-9999 is not in it
    new_key = "a-brand-new-pseudonym-key-2027"
    (tmp_path / "new.key").write_text(new_key + "\n")
    moved = run_cli("rekey", "--new-key-file", str(tmp_path / "new.key"), "--registry", str(registry),
                    "--by", "DPO", "--reason", "yearly rotation", env=env)
    assert moved.stdout.startswith("copied to the new key: 2 enrolments, 1 absences, 1 objections"), moved.stderr
    assert moved.returncode == 1 and "1 pseudonym(s) are not in the registry" in moved.stderr
    old, new = Pseudonymizer(TEST_KEY.encode()), Pseudonymizer(new_key.encode())
    both = register_of(broker_settings)                 # phase 1: old-key workers still see their records
    assert both.enrolled == {new.meter("meter-0001"), new.meter("meter-0002"), old.meter("meter-0001"),
                             old.meter("meter-0002"), old.meter("meter-9999")}
    assert both.objections[old.meter("meter-0002")] == {"*"} == both.objections[new.meter("meter-0002")]
    again = run_cli("rekey", "--new-key-file", str(tmp_path / "new.key"), "--registry", str(registry),
                    "--by", "DPO", "--reason", "yearly rotation, again", env=env)
    assert again.stdout.startswith("copied to the new key: 0 enrolments, 0 absences, 0 objections"), again.stderr
    assert "1 pseudonym(s)" in again.stderr                   # only the unknown one, not the moved ones
    finished = run_cli("rekey", "--finish", "--new-key-file", str(tmp_path / "new.key"), "--registry",
                       str(registry), "--by", "DPO", "--reason", "workers on the new key", env=env)
    assert finished.stdout.startswith("old records deleted: 2 enrolments, 1 absences, 1 objections"), finished.stderr
    register = register_of(broker_settings)
    assert register.enrolled == {new.meter("meter-0001"), new.meter("meter-0002"), old.meter("meter-9999")}
    assert register.absent(new.meter("meter-0001"), 1_800_000_100) and not register.absent(old.meter("meter-0001"),
                                                                                           1_800_000_100)
    assert register.objections.get(new.meter("meter-0002")) == {"*"}
    assert not register.objections.get(old.meter("meter-0002"))
    for run in (moved, again, finished):
        assert new_key not in run.stdout + run.stderr and TEST_KEY not in run.stdout + run.stderr
