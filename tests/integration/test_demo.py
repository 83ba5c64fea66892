"""`glasscity demo` as a user runs it (smaller city, unpaced): summary, files, exit codes."""

import json
import os
import subprocess
import sys

ARGS = ["--households", "300", "--days", "2", "--hour-seconds", "0", "--malformed", "8", "--quiet-alerts", "1"]


def run_demo(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GLASSCITY_")}
    result = subprocess.run([sys.executable, "-m", "streams", "demo", *ARGS, "--output", str(tmp_path)],
                            capture_output=True, text=True, timeout=240, env={**clean, **env})
    return result


def test_demo_detects_every_incident_and_writes_its_evidence(tmp_path):
    result = run_demo(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    table = {line.split()[0]: line.split() for line in lines
             if line.split() and line.split()[0] in ("no_use", "meter_silent", "gateway_outage")}
    truth = json.loads((tmp_path / "ground-truth.json").read_text())
    for kind in ("no_use", "meter_silent", "gateway_outage"):
        injected = sum(1 for i in truth["incidents"] if i["kind"] == kind)
        row = table[kind]
        assert row[2] == str(injected) and row[3] == str(injected) and row[4] == "0" and row[6] == "0", row
    assert f"readings counted by the worker: {truth['valid_readings']} of {truth['valid_readings']} sent" in result.stdout
    assert "dead letters: 8 of 8 malformed items" in result.stdout
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert len(alerts) == sum(1 + (i["end"] is not None) for i in truth["incidents"])


def test_demo_fails_when_a_welfare_incident_is_missed(tmp_path):
    # a 5-day no-use threshold cannot fire in a 2-day city: the welfare incidents are missed
    result = run_demo(tmp_path, GLASSCITY_NO_USE_AFTER="432000")
    assert result.returncode == 1
    assert "injected welfare incident(s) missed" in result.stderr
