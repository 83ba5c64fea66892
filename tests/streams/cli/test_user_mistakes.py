"""Every user mistake gives one clear line on stderr, exit 2 (usage) or 1 (runtime), never a traceback."""

import json
import os
import subprocess
import sys

import pytest

from streams.broker import free_port

CLOSED = f"127.0.0.1:{free_port()}"     # nothing listens there
KEY = "a-long-enough-pseudonym-key-for-tests"

# (id, argv, environment, exit code, what the line must say); "{tmp}" is the test's folder
CASES = [
    ("simulate to a closed port", ["simulate", "--days", "2", "--bootstrap", CLOSED, "--ground-truth",
                                   "{tmp}/t.json"], {}, 1, "no Kafka broker answers at " + CLOSED),
    ("simulate --days nan", ["simulate", "--days", "nan"], {}, 2, "argument --days: 'nan' is not a finite number > 0"),
    ("simulate --days -1", ["simulate", "--days", "-1"], {}, 2, "'-1' is not a finite number > 0"),
    ("simulate --days inf", ["simulate", "--days", "inf"], {}, 2, "'inf' is not a finite number > 0"),
    ("simulate negative pacing", ["simulate", "--hour-seconds", "-0.5"], {}, 2,
     "argument --hour-seconds: '-0.5' is not a finite number >= 0"),
    ("simulate zero households", ["simulate", "--households", "0"], {}, 2, "'0' is not a finite whole number >= 1"),
    ("simulate negative incidents", ["simulate", "--no-use", "-3"], {}, 2, "argument --no-use: '-3'"),
    ("simulate days from the environment", ["simulate"], {"GLASSCITY_SIM_DAYS": "three"}, 2,
     "GLASSCITY_SIM_DAYS: 'three' is not a finite number > 0"),
    ("simulate ground truth in a missing folder", ["simulate", "--days", "2", "--bootstrap", CLOSED,
                                                   "--ground-truth", "{tmp}/no/such/dir/t.json"], {}, 2,
     "cannot write the ground truth to {tmp}/no/such/dir/t.json: No such file or directory"),
    ("worker negative batch wait", ["worker", "--batch-within", "-1"], {}, 2,
     "--batch-within / GLASSCITY_BATCH_WITHIN: must be > 0"),
    ("worker port out of range", ["worker", "--metrics-port", "70000"], {}, 2, "must be a TCP port"),
    ("worker nan lateness", ["worker", "--allowed-lateness", "nan"], {}, 2,
     "--allowed-lateness / GLASSCITY_ALLOWED_LATENESS: must be >= 0"),
    ("worker zero partitions from the environment", ["worker"], {"GLASSCITY_PARTITIONS": "0"}, 2,
     "--partitions / GLASSCITY_PARTITIONS: must be > 0"),
    ("worker unknown log format", ["worker"], {"GLASSCITY_LOG_FORMAT": "xml"}, 2,
     "--log-format / GLASSCITY_LOG_FORMAT: must be one of text, json"),
    ("worker short pseudonym key", ["worker", "--bootstrap", CLOSED], {"GLASSCITY_PSEUDONYM_KEY": "short"}, 2,
     "must hold at least 16 bytes"),
    ("worker to a closed port", ["worker", "--bootstrap", CLOSED], {"GLASSCITY_PSEUDONYM_KEY": KEY}, 1,
     "no Kafka broker answers at " + CLOSED),
    ("worker page port out of range", ["worker", "--page-port", "99999"], {}, 2,
     "--page-port / GLASSCITY_PAGE_PORT: must be a TCP port"),
    ("worker page neither on nor off", ["worker"], {"GLASSCITY_PAGE": "maybe"}, 2, "GLASSCITY_PAGE"),
    ("worker short welfare token", ["worker"], {"GLASSCITY_WELFARE_TOKEN": "1234"}, 2,
     "--welfare-token / GLASSCITY_WELFARE_TOKEN: must be empty (no welfare role) or at least 16 characters"),
    ("worker text where a number goes", ["worker", "--batch-size", "many"], {}, 2,
     "argument --batch-size: invalid int value: 'many'"),
    ("negative threshold", ["thresholds", "--thresholds", "{tmp}/negative.json"], {}, 2,
     "water.no_use_24h.no_use_after_s must be > 0 (s), got -3600"),
    ("threshold out of range", ["thresholds", "--thresholds", "{tmp}/range.json"], {}, 2,
     "traffic.anomaly_score.alert_score must be >= 0, <= 1 (score 0-1), got 1.5"),
    ("missing thresholds file", ["thresholds", "--thresholds", "{tmp}/none.json"], {}, 2,
     "cannot read thresholds file {tmp}/none.json"),
    ("replay a missing file", ["replay", "--detector", "water.no_use_24h", "--input", "{tmp}/none.csv"], {}, 2,
     "input file {tmp}/none.csv does not exist"),
    ("replay an unknown detector", ["replay", "--detector", "water.nope", "--input", "{tmp}/series.csv"], {}, 2,
     "unknown detector 'water.nope'"),
    ("replay output into a missing folder", ["replay", "--detector", "traffic.anomaly_score", "--input",
                                             "{tmp}/series.csv", "--output", "{tmp}/no/out.csv"], {}, 2,
     "No such file or directory"),
    ("broker negative port", ["broker", "--port", "-5"], {}, 2, "argument --port: '-5' is not a finite whole number >= 1"),
    ("broker port from the environment", ["broker"], {"GLASSCITY_BROKER_PORT": "http"}, 2,
     "GLASSCITY_BROKER_PORT: 'http' is not a finite whole number >= 1"),
    ("demo negative timeout", ["demo", "--timeout", "-1"], {}, 2, "argument --timeout: '-1' is not a finite number > 0"),
    ("demo output under a file", ["demo", "--output", "{tmp}/series.csv/out"], {}, 2,
     "cannot create the output folder {tmp}/series.csv/out"),
    ("doctor zero timeout", ["doctor", "--timeout", "0"], {}, 2, "argument --timeout: '0' is not a finite number > 0"),
    ("unknown command", ["simulat"], {}, 2, "invalid choice: 'simulat'"),
    ("dlq replay without a domain", ["dlq", "replay", "--bootstrap", CLOSED], {}, 2, "--domain"),
]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "negative.json").write_text(json.dumps({"water.no_use_24h": {"no_use_after_s": -3600}}))
    (tmp_path / "range.json").write_text(json.dumps({"traffic.anomaly_score": {"alert_score": 1.5}}))
    (tmp_path / "series.csv").write_text("timestamp,value\n" + "".join(f"{1_700_000_000 + 300 * i},{i % 5}\n"
                                                                      for i in range(50)))
    return tmp_path


@pytest.mark.parametrize("argv, environment, code, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_mistake_gives_one_clear_line(files, argv, environment, code, expected):
    tmp = str(files)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLASSCITY_")}
    env.update(environment)
    result = subprocess.run([sys.executable, "-m", "streams", *[a.replace("{tmp}", tmp) for a in argv]],
                            capture_output=True, text=True, timeout=60, env=env)
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert expected.replace("{tmp}", tmp) in lines[0]
    assert result.returncode == code, (result.returncode, result.stderr)
    assert KEY not in result.stderr + result.stdout          # a secret is never echoed, whatever the mistake
