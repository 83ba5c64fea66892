"""Progress bars: on stderr when stdout is a terminal (a pty here), never when it is piped."""

import os
import pty
import re
import subprocess
import sys

import pytest

SIMULATE = ["simulate", "--households", "40", "--households-per-gateway", "10", "--days", "2", "--hour-seconds",
            "0.01", "--no-use", "1", "--meter-silent", "1", "--gateway-outage", "1", "--malformed", "2",
            "--domains", "water"]


def run(args, stdout_is_a_terminal: bool, timeout: float = 120):
    """Run glasscity with stdout on a pty (or a pipe); returns (exit code, stdout text, stderr text)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLASSCITY_")}
    command = [sys.executable, "-m", "streams", *args]
    if not stdout_is_a_terminal:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(command, stdout=follower, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                   env=env)
        os.close(follower)
        follower = None
        captured = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:      # EIO: the child closed its end
                break
            if not chunk:
                break
            captured += chunk
        stderr = process.stderr.read().decode()
        process.wait(timeout)
        return process.returncode, captured.decode(errors="replace"), stderr
    finally:
        if follower is not None:
            os.close(follower)
        os.close(leader)


@pytest.mark.parametrize("terminal", [True, False])
def test_simulate_draws_a_bar_on_stderr_only_when_stdout_is_a_terminal(broker_settings, tmp_path, terminal):
    code, stdout, stderr = run(SIMULATE + ["--bootstrap", broker_settings.bootstrap, "--topic-prefix",
                                           broker_settings.topic_prefix, "--ground-truth",
                                           str(tmp_path / "truth.json")], terminal)
    assert code == 0, stderr
    assert "produced " in stdout
    assert "city-h" not in stdout          # stdout never carries a bar, terminal or not
    if terminal:
        assert "simulate:" in stderr and "city-h" in stderr, stderr
        assert re.search(r"\b[1-9][0-9]*/48 ", stderr), "the bar advances with the city clock (48 city-hours)"
    else:
        assert stderr == ""


def _series(path, rows=400):
    lines = ["timestamp,value"] + [f"{1_700_000_000 + 300 * i},{10 + (i % 7)}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("terminal", [True, False])
def test_replay_draws_a_bar_only_for_a_terminal(tmp_path, terminal):
    series = tmp_path / "flow.csv"
    _series(series)
    code, stdout, stderr = run(["replay", "--detector", "traffic.anomaly_score", "--input", str(series)], terminal)
    assert code == 0, stderr
    assert "400 rows scored" in stdout
    if terminal:
        assert "replay:" in stderr and "rows" in stderr, stderr
    else:
        assert "replay:" not in stderr and "\r" not in stderr


@pytest.mark.parametrize("terminal", [True, False])
def test_export_draws_a_bar_only_for_a_terminal(tmp_path, terminal, monkeypatch):
    from tests.conftest import TEST_KEY
    from tests.streams.export.test_entities import simulated

    city = tmp_path / "traffic.jsonl"
    city.write_bytes(b"\n".join(simulated("traffic")) + b"\n")
    monkeypatch.setenv("GLASSCITY_PSEUDONYM_KEY", TEST_KEY)     # run() drops GLASSCITY_* from the environment
    out = tmp_path / "entities.jsonl"
    code, stdout, stderr = run(["export", "--format", "ngsi-ld", "--input", str(city), "--output", str(out)], terminal)
    assert code == 0, stderr
    assert out.stat().st_size > 0 and re.search(r"\b[1-9][0-9]* entities from", stdout)
    assert "export:" not in stdout          # the bar never goes to stdout
    if terminal:
        assert "export:" in stderr and "entities" in stderr, stderr
    else:
        assert "export:" not in stderr and "\r" not in stderr
