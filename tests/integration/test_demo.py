"""`glasscity demo` as a user runs it (smaller city, unpaced): summary, files, exit codes."""

import json
import os
import subprocess
import sys

from streams.detectors import REGISTRY
from streams.domains import DOMAINS

ARGS = ["--households", "300", "--days", "3", "--hour-seconds", "0", "--malformed", "8", "--quiet-alerts", "1"]


def run_demo(tmp_path, *extra, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GLASSCITY_")}
    result = subprocess.run([sys.executable, "-m", "streams", "demo", *ARGS, *extra, "--output", str(tmp_path)],
                            capture_output=True, text=True, timeout=240, env={**clean, **env})
    return result


def test_demo_covers_all_four_domains_and_every_incident_kind(tmp_path):
    result = run_demo(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    truth = json.loads((tmp_path / "ground-truth.json").read_text())
    assert set(truth) == {"water", "traffic", "waste", "lighting"}
    rows = {line.split()[1]: line.split() for line in lines if len(line.split()) > 8 and line.split()[0] in truth}
    running = {name for name, cls in REGISTRY.items() if cls.declaration.status == "active"}   # no audit log
    assert set(rows) == running   # every detector the worker runs has its row in the summary, dormant ones none
    incidents = [i for domain in truth.values() for i in domain["incidents"]]
    for domain_name, domain_truth in truth.items():
        for kind, detector in DOMAINS[domain_name].incident_detectors.items():
            if detector not in running:
                continue
            injected = sum(1 for i in domain_truth["incidents"] if i["kind"] == kind)
            row = rows[detector]   # domain, detector, kind, injected, alerted, missed, cleared, false alerts, ...
            assert injected > 0 and row[3] == str(injected), row
            assert row[4] == str(injected) and row[5] == "0" and row[7] == "0", row
    valid = sum(d["valid_readings"] for d in truth.values())
    assert f"readings counted by the worker: {valid} of {valid} sent" in result.stdout
    malformed = sum(len(d["malformed"]) for d in truth.values())
    assert f"dead letters: {malformed} of {malformed} malformed items" in result.stdout
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert len(alerts) == sum(1 + (i["end"] is not None) for i in incidents)


def test_demo_fails_when_a_welfare_incident_is_missed(tmp_path):
    # a 5-day no-use threshold cannot fire in a 3-day city: the welfare incidents are missed
    thresholds = tmp_path / "thresholds.json"
    thresholds.write_text(json.dumps({"water.no_use_24h": {"no_use_after_s": 432000}}))
    # by flag: the demo and the worker it starts both follow --domains and --thresholds
    result = run_demo(tmp_path, "--domains", "water", "--thresholds", str(thresholds))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "injected welfare incident(s) missed" in result.stderr
    assert result.stdout.startswith("glasscity demo: water; ")
    assert set(json.loads((tmp_path / "ground-truth.json").read_text())) == {"water"}
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert alerts and {a["data"]["domain"] for a in alerts} == {"water"}
    assert not [a for a in alerts if a["data"]["detector"] == "water.no_use_24h"]
