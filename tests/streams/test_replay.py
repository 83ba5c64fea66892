"""`glasscity replay`: backtests with the worker's kernels, no broker."""

import csv
import math
import subprocess
import sys

import numpy as np
import orjson
import pytest

from streams.config import settings_from
from streams.detectors import REGISTRY
from streams.replay import ReplayError, read_series, replay
from streams.simulate import WaterScenario, simulate_water

START = 1_790_000_000.0 - 1_790_000_000.0 % 3600
SCORE_DETECTORS = sorted(name for name, cls in REGISTRY.items() if hasattr(cls, "backtest"))


def test_there_is_a_generic_score_detector():
    assert SCORE_DETECTORS, "replay's two-column mode needs at least one detector with backtest"


def write_series(path, n=5000, step_s=300.0, anomaly=slice(3000, 3060)):
    rng = np.random.default_rng(1)
    t = START + step_s * np.arange(n)
    daily = 50 + 30 * np.sin(2 * np.pi * (t % 86400) / 86400)
    values = daily + rng.normal(0, 2.0, n)
    values[anomaly] += 120.0
    with open(path, "w") as handle:
        handle.write("timestamp,value\n")
        for ts, v in zip(t, values):
            handle.write(f"{ts:.0f},{v:.3f}\n")
    return values


@pytest.mark.parametrize("name", SCORE_DETECTORS)
def test_two_column_csv_of_5000_rows_gives_5000_scores_in_unit_interval(name, tmp_path):
    source, scored = tmp_path / "series.csv", tmp_path / "scored.csv"
    values = write_series(source)
    result = subprocess.run([sys.executable, "-m", "streams", "replay", "--detector", name, "--input", str(source),
                             "--output", str(scored)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(open(scored)))
    assert rows[0] == ["timestamp", "value", "anomaly_score"] and len(rows) == 5001
    scores = np.array([float(r[2]) for r in rows[1:]])
    assert np.all((scores >= 0) & (scores <= 1))
    assert [float(r[1]) for r in rows[1:6]] == pytest.approx(values[:5], abs=1e-3)
    assert np.median(scores[3000:3060]) > np.percentile(scores[:2900], 99)   # the anomaly stands out


def test_series_reader_accepts_iso_times_headerless_rows_and_gaps(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("2026-01-01T00:00:00Z,1.5\n2026-01-01T00:05:00+00:00,\n1767226200,3\n")
    texts, ts, values = read_series(path)
    assert ts.tolist() == [1767225600.0, 1767225900.0, 1767226200.0]
    assert values[0] == 1.5 and math.isnan(values[1]) and values[2] == 3.0


def test_series_reader_names_the_bad_row(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("timestamp,value\n2026-01-01T00:00:00Z,1\nyesterday,2\n")
    with pytest.raises(ReplayError, match="row 3: timestamp 'yesterday'"):
        read_series(path)


def water_export(path):
    sim = simulate_water(WaterScenario(households=60, households_per_gateway=10, days=2, no_use=2, meter_silent=1,
                                       gateway_outage=1, malformed=3, start=START))
    with open(path, "wb") as handle:
        for _when, step in sim.steps():
            for _key, value in step:
                handle.write(value.replace(b"\n", b" ") + b"\n")
    return sim


def test_water_readings_replay_prints_alerts_and_marks_open_episodes(tmp_path, capsys):
    source, out = tmp_path / "water.jsonl", tmp_path / "out.csv"
    sim = water_export(source)
    settings = settings_from(environ={}, pseudonym_key="replay-test-key-0123456")
    summary = replay("water.no_use_24h", source, out, settings)
    printed = capsys.readouterr().out
    assert summary["alerts"] == sum(1 + (i.end is not None) for i in sim.incidents if i.kind == "no_use")
    assert printed.count("raised  water.no_use_24h") == 2 and "refused" in printed
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == summary["rows"] == sim.valid_readings
    open_subjects = {r["subject"] for r in rows if r["no_use_24h_open"] == "1"}
    assert len(open_subjects) == 2


def test_readings_csv_replay_matches_json_lines(tmp_path, capsys):
    source = tmp_path / "water.jsonl"
    sim = water_export(source)
    expected = sum(1 + (i.end is not None) for i in sim.incidents if i.kind == "no_use")
    table = tmp_path / "water.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "dateObserved", "waterConsumption", "gatewayId"])
        for line in source.read_bytes().splitlines():
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            readings = message.get("readings", [message]) if isinstance(message, dict) else []
            for r in readings:
                if isinstance(r, dict) and {"id", "dateObserved", "waterConsumption"} <= set(r):
                    writer.writerow([r["id"], r["dateObserved"], r["waterConsumption"],
                                     r.get("gatewayId", message.get("gatewayId", ""))])
    settings = settings_from(environ={}, pseudonym_key="replay-test-key-0123456")
    from_json = replay("water.no_use_24h", source, tmp_path / "a.csv", settings)["alerts"]
    from_csv = replay("water.no_use_24h", table, tmp_path / "b.csv", settings)["alerts"]
    assert from_json == from_csv == expected > 0


def test_unknown_detector_and_missing_file_are_clear_errors(tmp_path):
    settings = settings_from(environ={})
    with pytest.raises(ReplayError, match="unknown detector 'water.nope'"):
        replay("water.nope", tmp_path / "x.csv", None, settings)
    with pytest.raises(ReplayError, match="does not exist"):
        replay("water.no_use_24h", tmp_path / "x.csv", None, settings)
    result = subprocess.run([sys.executable, "-m", "streams", "replay"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--detector and --input are required" in result.stderr


@pytest.mark.parametrize("name", SCORE_DETECTORS)
def test_series_alerts_follow_the_detectors_persistence_rule(name, tmp_path, capsys):
    source = tmp_path / "series.csv"
    write_series(source, anomaly=slice(4000, 4040))   # 40 intervals of 5 min: well past any minimum duration
    summary = replay(name, source, tmp_path / "out.csv", settings_from(environ={}))
    printed = capsys.readouterr().out
    start = START + 300 * 4000
    assert summary["alerts"] >= 1
    assert any(line.startswith(f"{name}: anomalous from ") and _iso_at(start) in line for line in printed.splitlines())
    assert summary["alerts"] <= 3, printed   # isolated noisy points do not make episodes


def _iso_at(t):
    from streams.alerts import iso_time

    return iso_time(t)[:13]   # the hour is enough: the episode starts within it



def test_replaying_traffic_readings_gives_exactly_the_workers_anomaly_alerts(tmp_path, capsys):
    """The worker's way (4 partitions by message key, one batch per city step, sweeps as event time
    passes) and ``glasscity replay`` of the same readings from an export raise the same anomaly
    episodes, at the same times: one scorer, one episode rule."""
    import zlib

    from streams.detectors import CONFIGURABLE
    from streams.detectors.thresholds import load_thresholds
    from streams.domains import DOMAINS
    from streams.ingest import RawMessage
    from streams.pipeline import DomainPipeline
    from streams.pseudonym import Pseudonymizer

    key = "replay-test-key-0123456"
    settings = settings_from(environ={}, pseudonym_key=key)
    domain = DOMAINS["traffic"]
    sim = domain.simulate(days=3.0, seed=42, start=START - START % 86400)
    worker = DomainPipeline(domain, settings, Pseudonymizer(key.encode()), load_thresholds("", CONFIGURABLE),
                            clock=lambda: math.inf)
    offsets, live = [0] * 4, []
    export = tmp_path / "traffic.jsonl"
    with open(export, "wb") as handle:
        for _when, step in sim.steps():
            batch = []
            for message_key, value in step:
                p = zlib.crc32(message_key or b"") % 4
                batch.append(RawMessage(value, domain.topic("readings"), p, offsets[p], message_key))
                offsets[p] += 1
                handle.write(value.replace(b"\n", b" ") + b"\n")
            live += [(a.event["time"], a.event["data"]["state"], a.event["subject"])
                     for a in worker.process(batch).alerts if a.event["data"]["detector"] == "traffic.anomaly_score"]
    summary = replay("traffic.anomaly_score", export, tmp_path / "out.csv", settings)
    replayed = [tuple(line.split()[:2]) + (line.split()[3],) for line in capsys.readouterr().out.splitlines()
                if " traffic.anomaly_score " in line]
    injected = sum(i.kind == "anomaly" for i in sim.incidents)
    assert sum(state == "raised" for _t, state, _s in live) >= injected - 1 > 0   # the run has episodes to compare
    assert sorted(replayed) == sorted(live) and summary["alerts"] == len(live)
