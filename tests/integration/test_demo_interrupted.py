"""`glasscity demo` stopped by SIGTERM or SIGINT: stops its worker and broker, keeps what it received."""

import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest

ARGS = ["--households", "200", "--days", "4", "--hour-seconds", "0.5", "--malformed", "4", "--domains", "water"]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()   # a zombie has stopped; only its parent's wait is left
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_demo_stops_everything_and_writes_a_partial_summary(tmp_path, signum):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GLASSCITY_")}
    demo = subprocess.Popen([sys.executable, "-m", "streams", "demo", *ARGS, "--output", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean)
    pids, alert_lines, seen = {}, 0, []
    try:
        deadline = time.monotonic() + 150
        while alert_lines < 2 and time.monotonic() < deadline and demo.poll() is None:
            ready, _, _ = select.select([demo.stdout], [], [], 1.0)
            if not ready:
                continue
            line = demo.stdout.readline()
            seen.append(line)
            if match := re.search(r"broker: Tansu on \S+ \(pid (\d+)\)", line):
                pids["broker"] = int(match.group(1))
            if match := re.search(r"worker: pid (\d+)", line):
                pids["worker"] = int(match.group(1))
            if re.search(r"\] (WELFARE )?RAISED ", line):
                alert_lines += 1
        assert alert_lines >= 2, "".join(seen)
        assert set(pids) == {"broker", "worker"} and all(alive(p) for p in pids.values())
        demo.send_signal(signum)
        stdout, stderr = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        for pid in pids.values():       # nothing outlives the test, whatever it found
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert demo.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    assert f"{signal.Signals(signum).name} received; stopping the worker and the broker" in stderr
    assert not any(alive(pid) for pid in pids.values()), "the demo left its broker or worker running"
    alerts = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert len(alerts) >= alert_lines     # every alert printed before the stop was kept
    summary = (tmp_path / "summary.txt").read_text()
    assert summary.startswith(f"PARTIAL SUMMARY: stopped by {signal.Signals(signum).name}")
    assert f"alert events: {len(alerts)}" in summary
    assert "water.no_use_24h" in summary
