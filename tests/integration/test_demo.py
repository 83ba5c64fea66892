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
    truth = json.loads((tmp_path / "ground-truth.json").read_text())
    rows = {line.split()[2]: line.split() for line in lines if len(line.split()) > 8 and line.split()[0] in truth}
    incidents = [i for domain in truth.values() for i in domain["incidents"]]
    kinds = {i["kind"] for i in incidents}
    assert kinds >= {"no_use", "meter_silent", "gateway_outage"} and kinds <= set(rows)
    for kind in kinds:
        injected = sum(1 for i in incidents if i["kind"] == kind)
        row = rows[kind]   # domain, detector, kind, injected, alerted, missed, cleared, false alerts, ...
        assert row[3] == str(injected) and row[4] == str(injected) and row[5] == "0" and row[7] == "0", row
    valid = sum(d["valid_readings"] for d in truth.values())
    assert f"readings counted by the worker: {valid} of {valid} sent" in result.stdout
    malformed = sum(len(d["malformed"]) for d in truth.values())
    assert f"dead letters: {malformed} of {malformed} malformed items" in result.stdout
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert len(alerts) == sum(1 + (i["end"] is not None) for i in incidents)


def test_demo_fails_when_a_welfare_incident_is_missed(tmp_path):
    # a 5-day no-use threshold cannot fire in a 2-day city: the welfare incidents are missed
    thresholds = tmp_path / "thresholds.json"
    thresholds.write_text(json.dumps({"water.no_use_24h": {"no_use_after_s": 432000}}))
    result = run_demo(tmp_path, GLASSCITY_THRESHOLDS=str(thresholds))
    assert result.returncode == 1
    assert "injected welfare incident(s) missed" in result.stderr
