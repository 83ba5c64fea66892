"""benchmarks/bench.py's pure parts (goals, entries, the table, the flags) and benchmarks/kernel_speed.py's
cases on a tiny workload: the kernel and its reference are fed the same data. No timing is asserted."""

import json

import numpy as np
import pytest

from benchmarks import bench, kernel_speed


def test_goals_are_checked_on_the_value_or_on_the_ratio_to_the_peer():
    slow = bench.entry("pipeline_batched_readings_per_s", 1_000_000, {"readings": 10})
    assert slow["met"] is False and slow["goal"]["on"] == "value"
    fast = bench.entry("pipeline_batched_readings_per_s", 3_000_000, {"readings": 10})
    assert fast["met"] is True
    assert bench.entry("alert_latency_p99_s", 0.4, {})["met"] is True
    assert bench.entry("alert_latency_p99_s", 1.5, {})["met"] is False
    # a peer's figure is met or not by our ratio to it, not by its own value
    faust = bench.entry("faust_per_event_msgs_per_s", 10_000, {}, compared=2.5, ours=25_000, peer=10_000)
    assert faust["met"] is False and faust["goal"]["checked"] == 2.5 and faust["value"] == 10_000
    assert bench.entry("librdkafka_ceiling_msgs_per_s", 700_000, {})["met"] is None   # reported, no goal
    assert bench.meets(">=", 1.0, None) is None and bench.meets(">=", 1.0, float("nan")) is None


def test_table_heads_with_the_machine_and_shows_ours_peer_goal_met_and_errors(tmp_path):
    report = {"machine": {"cpu": "Test CPU 9000", "cores": 2, "python": "3.11.0", "platform": "x"},
              "run": {"quick": True},
              "results": {"broker_single_msgs_per_s": bench.entry("broker_single_msgs_per_s", 20_000, {},
                                                                  compared=0.1, ours=20_000, peer=200_000),
                          "replay_daiad_year_s": bench.failed("replay_daiad_year_s", "ValueError: no archive")}}
    text = bench.table(report)
    lines = text.splitlines()
    assert "Test CPU 9000" in lines[0] and "2 cores" in lines[0]
    assert lines[1].split() == ["key", "ours", "peer", "goal", "met"]
    row = next(line for line in lines if line.startswith("broker_single_msgs_per_s"))
    assert "20k (0.10x)" in row and "200k" in row and row.rstrip().endswith("NO")
    assert "replay_daiad_year_s: ValueError: no archive" in text
    path = tmp_path / "results.json"
    bench.write(report, path)
    assert json.loads(path.read_text())["results"]["broker_single_msgs_per_s"]["goal"]["checked"] == 0.1


def test_every_key_has_a_goal_and_a_group_and_unknown_keys_are_refused():
    assert set(bench.ORDER) == set(bench.GOALS)
    with pytest.raises(SystemExit):
        bench.parse(["--only", "no_such_key"])
    assert bench.parse(["--only", "welfare_sweep_1m_s", "--quick"]).only_keys == {"welfare_sweep_1m_s"}


@pytest.mark.parametrize("detector", ["water.backflow", "water.burst", "water.continuous_flow", "waste.overflow",
                                      "water (tracker)", "traffic.stuck", "waste.fire"])
def test_a_kernel_case_feeds_kernel_and_reference_the_same_readings(detector):
    case = next(c for c in kernel_speed.CASES if c.detector == detector)
    kernel, reference = case.build(3_000, np.random.default_rng(1))
    got = kernel()()
    want = reference()
    codes = got[0] if isinstance(got, tuple) else got
    assert codes.tolist() == list(want[0])
    assert len(codes) == 3_000


def test_measure_reports_rates_and_their_ratio():
    (timing,) = kernel_speed.measure(n=5_000, naive_n=500, repeat=1, only={"waste.overflow"})
    assert timing.n == 5_000 and timing.naive_n == 500 and timing.unit == "readings"
    assert timing.ratio == pytest.approx(timing.per_s / timing.naive_per_s)
