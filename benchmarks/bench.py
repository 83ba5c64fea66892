"""`make bench`: every speed figure of glasscity and of its peers, in one run on one machine.

Writes ``benchmarks/results.json`` (``{"machine": ..., "run": ..., "results": {KEY: entry}}``, each
entry with its value, units, workload, goal and whether it is met) and prints a table headed with
the CPU model and core count. The keys (``--list`` shows them with their goals):

kernel_readings_per_s, kernel_vs_naive_ratio      each detector's kernel (benchmarks/kernel_speed.py)
pipeline_batched_readings_per_s, pipeline_single_readings_per_s
                                                  DomainPipeline.process in-process, one core
broker_batched_readings_per_s                     one worker through the broker, envelopes of 500
broker_single_msgs_per_s, aiokafka_ceiling_msgs_per_s, librdkafka_ceiling_msgs_per_s,
faust_per_event_msgs_per_s, quix_per_event_msgs_per_s
                                                  one reading per message: the worker and the peers
                                                  (benchmarks/peers.py) on the same topic
river_peer_readings_per_s                         river vs our series scorer on the traffic series
alert_latency_p50_s, alert_latency_p99_s          produce -> alert at half the sustained rate
state_bytes_per_sensor, welfare_sweep_1m_s        1M tracked water meters in one partition
replay_daiad_year_s                               the DAIAD year through every water detector
scaleout_2workers_ratio                           two workers vs one on the batched path

Speed is measured here, never in the tests. Only public APIs are used (DomainPipeline, the
simulators, produce, EmbeddedBroker, start_worker, the kernels' wrappers, streams.replay), so
whatever makes the project faster shows here.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results.json"

#: key -> (units, goal operator, goal number, goal text). Ratios' goals compare ours with a peer.
GOALS = {
    "kernel_readings_per_s": ("readings/s (min over detectors)", ">=", 100e6, ">= 100M/s per detector"),
    "kernel_vs_naive_ratio": ("x (min over detectors)", ">=", 100.0, ">= 100x its naive reference"),
    "pipeline_batched_readings_per_s": ("readings/s", ">=", 2e6, ">= 2M/s"),
    "pipeline_single_readings_per_s": ("readings/s", ">=", 500e3, ">= 500k/s"),
    "broker_batched_readings_per_s": ("readings/s", ">=", 500e3, ">= 500k/s sustained 60 s"),
    "broker_single_msgs_per_s": ("msgs/s", ">=", 0.5, ">= 0.5x aiokafka ceiling"),
    "aiokafka_ceiling_msgs_per_s": ("msgs/s", None, None, "peer (ceiling)"),
    "librdkafka_ceiling_msgs_per_s": ("msgs/s", None, None, "reported beside ours"),
    "faust_per_event_msgs_per_s": ("msgs/s", ">=", 3.0, "ours >= 3x"),
    "quix_per_event_msgs_per_s": ("msgs/s", ">=", 1.0, "ours >= 1x single, >= 5x batched"),
    "river_peer_readings_per_s": ("readings/s", ">=", 100.0, "ours >= 100x"),
    "alert_latency_p50_s": ("s", None, None, "reported (p99 <= 1 s)"),
    "alert_latency_p99_s": ("s", "<=", 1.0, "<= 1 s"),
    "state_bytes_per_sensor": ("bytes/meter", "<=", 300.0, "<= 300 B"),
    "welfare_sweep_1m_s": ("s", "<=", 0.05, "<= 0.05 s"),
    "replay_daiad_year_s": ("s", "<=", 5.0, "<= 5 s"),
    "scaleout_2workers_ratio": ("x", ">=", 1.6, ">= 1.6x"),
}


def meets(op, goal, value) -> bool | None:
    if op is None or value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value >= goal if op == ">=" else value <= goal


def entry(key: str, value, workload: dict, *, compared=None, ours=None, peer=None, **details) -> dict:
    """One result: ``value`` in the key's units; the goal is checked on ``compared`` when given
    (a ratio of ours to a peer), else on ``value``. ``ours``/``peer``: what the table shows."""
    units, op, goal, text = GOALS[key]
    met = meets(op, goal, compared if compared is not None else value)
    return {"value": value, "units": units, "workload": workload,
            "goal": {"text": text, "op": op, "target": goal, "on": "ratio ours/peer" if compared is not None
                     else "value", "checked": compared if compared is not None else value},
            "met": met, "ours": ours, "peer": peer, **details}


def failed(key: str, error: str, workload: dict | None = None) -> dict:
    units, _op, _goal, text = GOALS[key]
    return {"value": None, "units": units, "workload": workload or {}, "goal": {"text": text}, "met": None,
            "error": error, "ours": None, "peer": None}


# --- machine and table -----------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def human(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        return "yes" if x else "no"
    a = abs(x)
    if a >= 1e6:
        return f"{x / 1e6:.2f}M"
    if a >= 1e4:
        return f"{x / 1e3:.0f}k"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def table(report: dict) -> str:
    m = report["machine"]
    lines = [f"glasscity benchmarks on {m['cpu']}, {m['cores']} cores, Python {m['python']}"
             f"{' (--quick: small workloads)' if report['run'].get('quick') else ''}"]
    rows = [("key", "ours", "peer", "goal", "met")]
    for key, e in report["results"].items():
        ours = human(e.get("ours") if e.get("ours") is not None else e.get("value"))
        checked = e["goal"].get("checked")
        if e["goal"].get("on") == "ratio ours/peer" or key == "scaleout_2workers_ratio":
            ratios = checked.values() if isinstance(checked, dict) else [checked]
            ours += " (" + "/".join("-" if r is None else f"{r:.2f}x" for r in ratios) + ")"
        met = {True: "yes", False: "NO", None: "-"}[e.get("met")]
        if e.get("error"):
            ours, met = "error", "-"
        rows.append((key, ours, human(e.get("peer")), e["goal"]["text"], met))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for n, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    errors = [(k, e["error"]) for k, e in report["results"].items() if e.get("error")]
    for key, error in errors:
        lines.append(f"{key}: {error}")
    return "\n".join(lines)


def write(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=_plain) + "\n")


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON: {type(x).__name__}")


# --- groups of keys --------------------------------------------------------------------------------

class Context:
    """What one group measures that another needs (e.g. the batched rate sets the latency run's rate)."""

    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.results: dict = {}
        self.facts: dict = {}


def group_kernels(ctx: Context) -> None:
    from benchmarks import kernel_speed

    n = 200_000 if ctx.quick else 10_000_000
    naive_n = 2_000 if ctx.quick else 20_000
    timings = kernel_speed.measure(n=n, naive_n=naive_n)
    per = {t.detector: {"kernel": t.kernel, "unit": t.unit, "n": t.n, "seconds": round(t.seconds, 4),
                        "per_s": round(t.per_s), "met": t.per_s >= 100e6} for t in timings}
    ratios = {t.detector: {"kernel": t.kernel, "reference": t.reference, "naive_n": t.naive_n,
                           "naive_per_s": round(t.naive_per_s), "kernel_per_s": round(t.per_s),
                           "ratio": round(t.ratio, 1), "met": t.ratio >= 100} for t in timings}
    slowest = min(timings, key=lambda t: t.per_s)
    least = min(timings, key=lambda t: t.ratio)
    workload = {"units_per_kernel": n, "naive_units": naive_n, "one_core": True,
                "data": "synthetic sensors reporting in rounds (time-sorted), fresh state per timed call; "
                        "update kernels: readings; sweep kernels: subjects swept",
                "not_measured": kernel_speed.NOT_MEASURED}
    ctx.results["kernel_readings_per_s"] = entry(
        "kernel_readings_per_s", round(slowest.per_s), workload, per_detector=per, slowest=slowest.detector,
        met_by=sum(p["met"] for p in per.values()), of=len(per))
    ctx.results["kernel_vs_naive_ratio"] = entry(
        "kernel_vs_naive_ratio", round(least.ratio, 1), workload, per_detector=ratios, least=least.detector,
        met_by=sum(r["met"] for r in ratios.values()), of=len(ratios))


def group_pipeline(ctx: Context) -> None:
    from benchmarks.throughput import ENVELOPES_PER_BATCH, KEY, in_process, water_city
    from streams.config import settings_from
    from streams.domains import DOMAINS

    water = DOMAINS["water"]
    households, days = (2_000, 2) if ctx.quick else (10_000, 2)
    settings = settings_from(environ={}, pseudonym_key=KEY, batch_size=ENVELOPES_PER_BATCH)
    batched = in_process(water, water_city(households, days, 500), settings)
    ctx.facts["pipeline_batched"] = batched["readings_per_s"]
    ctx.results["pipeline_batched_readings_per_s"] = entry(
        "pipeline_batched_readings_per_s", batched["readings_per_s"],
        {"domain": "water", "households": households, "days": days, "readings_per_message": 500,
         "batch_size_messages": settings.batch_size, "one_core": True, **batched})
    settings = settings_from(environ={}, pseudonym_key=KEY)
    households, days = (500, 2) if ctx.quick else (2_000, 3)
    single = in_process(water, water_city(households, days, 1), settings)
    ctx.results["pipeline_single_readings_per_s"] = entry(
        "pipeline_single_readings_per_s", single["readings_per_s"],
        {"domain": "water", "households": households, "days": days, "readings_per_message": 1,
         "batch_size_messages": settings.batch_size, "one_core": True, **single})


def _peer(run, peer: str, topic: str, expected: int, limit_s: float) -> dict:
    """A peer process (benchmarks/peers.py) on ``topic``; its JSON line, or the error it died of."""
    command = [sys.executable, str(ROOT / "benchmarks" / "peers.py"), peer, "--bootstrap", run.bootstrap,
               "--topic", topic, "--expected", str(expected), "--limit-s", str(limit_s)]
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit_s + 120)
    except subprocess.TimeoutExpired as error:
        return {"error": f"{peer} did not finish within {limit_s + 120:.0f} s", "stderr": str(error.stderr)[-400:]}
    lines = [line[line.index("{"):] for line in done.stdout.splitlines() if "{" in line]
    if done.returncode != 0 or not lines:
        return {"error": f"{peer} exited with code {done.returncode}: "
                         f"{(done.stderr.strip().splitlines() or ['no output'])[-1][:300]}"}
    result = json.loads(lines[-1])
    result["wall_s_incl_startup"] = round(time.monotonic() - started, 1)
    return result


def _rate(result: dict, field: str = "msgs_per_s"):
    return None if "error" in result else result.get(field)


def _ratio(a, b):
    return round(a / b, 3) if a and b else None


def group_broker(ctx: Context) -> None:
    """One broker: the batched topic (worker, Quix and aiokafka on envelopes), the single-message
    topic (worker and every Kafka peer), and the two-worker run; in that order."""
    from benchmarks.throughput import ENVELOPES_PER_BATCH, BrokerRun, broker_workers, water_city

    wanted = ctx.args.only_keys
    keys_batched = {"broker_batched_readings_per_s", "quix_per_event_msgs_per_s", "scaleout_2workers_ratio",
                    "alert_latency_p50_s", "alert_latency_p99_s"}
    keys_single = {"broker_single_msgs_per_s", "aiokafka_ceiling_msgs_per_s", "librdkafka_ceiling_msgs_per_s",
                   "faust_per_event_msgs_per_s", "quix_per_event_msgs_per_s"}
    window = 10.0 if ctx.quick else 60.0
    peer_limit = 5.0 if ctx.quick else 20.0
    with BrokerRun() as run:
        batched = single = None
        if wanted is None or wanted & keys_batched:
            # sized to outlast the window: the in-process rate (an upper bound) decides, within bounds
            guess = ctx.facts.get("pipeline_batched", 200_000) * 0.5
            readings = int(min(ctx.args.max_readings, max(1_000_000, guess * window * 1.2)))
            if ctx.quick:
                readings = 300_000
            households = 20_000
            days = max(2.0, round(readings / (households * 24), 2))
            simulation = water_city(households, days, 500)
            batched = broker_workers(run, "b1", simulation, 1, window, batch_size=ENVELOPES_PER_BATCH)
            batched.update(households=households, days=days, readings_per_message=500, durable_state=True)
            ctx.facts["broker_batched"] = batched["rate_per_s"]
            ctx.facts["batched_sim"] = (households, days)
            note = ("the topic drained before the window's end: the rate is over a shorter window"
                    if batched["drained_before_window"] else None)
            ctx.results["broker_batched_readings_per_s"] = entry(
                "broker_batched_readings_per_s", batched["rate_per_s"], batched,
                note=note or "rate from the worker's glasscity_readings_consumed_total, from its first "
                             "reading counted; start-up and group join excluded")
            topic = run.settings("b1").topic("water.readings.v1")
            quix_b = _peer(run, "quix", topic, batched["messages"], peer_limit)
            aio_b = _peer(run, "aiokafka", topic, batched["messages"], peer_limit)
            ctx.facts["batched_peers"] = {"quix": quix_b, "aiokafka": aio_b}
        if wanted is None or wanted & keys_single:
            messages = 200_000 if ctx.quick else 1_500_000
            households = 2_000 if ctx.quick else 10_000
            days = round(max(2.0, messages / (households * 24)), 2)
            simulation = water_city(households, days, 1)
            single = broker_workers(run, "s1", simulation, 1, 10.0 if ctx.quick else 30.0,
                                    metric="glasscity_messages_consumed_total")
            topic = run.settings("s1").topic("water.readings.v1")
            peers = {peer: _peer(run, peer, topic, single["messages"], peer_limit)
                     for peer in ("aiokafka", "librdkafka", "faust", "quix")}
            workload = {"topic_messages": single["messages"], "readings_per_message": 1, "households": households,
                        "days": days, "partitions": 4, "peer_limit_s": peer_limit,
                        "peer_work": "dict meter id -> last seen, last index, last use; flag 24 h without use"}
            ours = single["rate_per_s"]
            ceiling = _rate(peers["aiokafka"])
            ctx.results["broker_single_msgs_per_s"] = entry(
                "broker_single_msgs_per_s", ours, {**workload, **single}, compared=_ratio(ours, ceiling),
                ours=ours, peer=ceiling, ratio_to_aiokafka=_ratio(ours, ceiling))
            ctx.results["aiokafka_ceiling_msgs_per_s"] = _peer_entry(
                "aiokafka_ceiling_msgs_per_s", peers["aiokafka"], workload, ours)
            ctx.results["librdkafka_ceiling_msgs_per_s"] = _peer_entry(
                "librdkafka_ceiling_msgs_per_s", peers["librdkafka"], workload, ours)
            faust_entry = _peer_entry("faust_per_event_msgs_per_s", peers["faust"], workload, ours,
                                      compared=_ratio(ours, _rate(peers["faust"])))
            ctx.results["faust_per_event_msgs_per_s"] = faust_entry
            quix = peers["quix"]
            single_ratio = _ratio(ours, _rate(quix))
            quix_entry = _peer_entry("quix_per_event_msgs_per_s", quix, workload, ours, compared=single_ratio)
            quix_b = ctx.facts.get("batched_peers", {}).get("quix")
            if quix_b is not None:
                batched_ratio = _ratio(ctx.facts.get("broker_batched"), _rate(quix_b, "readings_per_s"))
                quix_entry["batched"] = {"quix_readings_per_s": _rate(quix_b, "readings_per_s"),
                                         "ours_readings_per_s": ctx.facts.get("broker_batched"),
                                         "ratio": batched_ratio, "goal": ">= 5x",
                                         "met": meets(">=", 5.0, batched_ratio), "quix": quix_b}
                quix_entry["met"] = (quix_entry["met"] if quix_entry["met"] is None or batched_ratio is None
                                     else quix_entry["met"] and batched_ratio >= 5.0)
                quix_entry["goal"]["checked"] = {"single": single_ratio, "batched": batched_ratio}
            ctx.results["quix_per_event_msgs_per_s"] = quix_entry
            aio_b = ctx.facts.get("batched_peers", {}).get("aiokafka")
            if aio_b is not None:
                ctx.results["aiokafka_ceiling_msgs_per_s"]["batched_topic"] = aio_b
        if wanted is None or wanted & {"alert_latency_p50_s", "alert_latency_p99_s"}:
            latency(ctx, run)
        if wanted is None or "scaleout_2workers_ratio" in wanted:
            households, days = ctx.facts["batched_sim"]
            two = broker_workers(run, "b2", water_city(households, days, 500), 2, window,
                                 batch_size=ENVELOPES_PER_BATCH)
            one = ctx.facts["broker_batched"]
            ratio = _ratio(two["rate_per_s"], one)
            ctx.results["scaleout_2workers_ratio"] = entry(
                "scaleout_2workers_ratio", ratio, {"households": households, "days": days,
                                                    "readings_per_message": 500, "partitions": 4, **two},
                ours=two["rate_per_s"], peer=one, one_worker_readings_per_s=one,
                two_workers_readings_per_s=two["rate_per_s"],
                note=f"{os.cpu_count()} cores shared by the broker and both workers")


def _peer_entry(key: str, result: dict, workload: dict, ours, compared=None) -> dict:
    if "error" in result:
        return failed(key, result["error"], workload)
    value = result["msgs_per_s"]
    return entry(key, value, workload, compared=compared, ours=ours, peer=value, peer_run=result)


def latency(ctx: Context, run) -> None:
    """Background envelopes at half the sustained batched rate, plus probe readings carrying a device
    alarm (water.device_alarm raises on the reading itself); latency = the alert's arrival on the alerts
    topic minus the probe's send, per probe."""
    import orjson

    from benchmarks.throughput import ENVELOPES_PER_BATCH, KEY, LibrdkafkaProducer, water_city
    from streams.demo import AlertReader, metric_sum, read_metrics
    from streams.pseudonym import Pseudonymizer

    rate = max(1000.0, (ctx.facts.get("broker_batched") or 40_000) / 2)
    duration = 10.0 if ctx.quick else 30.0
    readings = int(min(2_000_000, rate * (duration + 5)))
    households = 10_000
    days = max(2.0, round(readings / (households * 24), 2))
    simulation = water_city(households, days, 500)
    steps = list(simulation.steps())
    settings = run.topics("lat", batch_size=ENVELOPES_PER_BATCH)
    topic = settings.topic("water.readings.v1")
    procs, ports = run.start_workers(settings, 1)
    sent_at: dict[str, float] = {}
    got: dict[str, float] = {}
    probes = [f"urn:ngsi-ld:WaterMeter:PROBE-{n:05d}" for n in range(int(duration * 4) + 10)]
    subject_of = dict(zip(Pseudonymizer(KEY.encode()).many("wm", probes), probes))

    def on_alert(event, _topic):
        probe = subject_of.get(event.get("subject"))
        if probe is not None and event["data"]["detector"] == "water.device_alarm":
            got.setdefault(probe, time.monotonic())

    reader = AlertReader(settings, on_alert=on_alert)
    reader.start()
    producer = LibrdkafkaProducer(run.bootstrap, **{"linger.ms": 1})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:      # the worker is up and has joined: a first reading counted
            for key, value in steps[0][1]:
                producer.send(topic, value=value, key=key)
            producer.flush()
            try:
                if metric_sum(read_metrics(ports[0]), "glasscity_readings_consumed_total") > 0:
                    break
            except OSError:
                pass
            time.sleep(1.0)
        steps = steps[1:]
        sent = 0
        probe_n = 0
        started = time.monotonic()
        next_probe = started + 0.5
        for when, step in steps:
            for key, value in step:
                producer.send(topic, value=value, key=key)
                sent += value.count(b'"dateObserved"')
                ahead = started + sent / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                now = time.monotonic()
                if now >= next_probe and probe_n < len(probes):
                    probe = probes[probe_n]
                    probe_n += 1
                    reading = {"id": probe, "type": "WaterConsumptionObserved",
                               "dateObserved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when + 1800)),
                               "waterConsumption": 1.0, "deviceAlarm": "leak"}
                    producer.send(topic, value=orjson.dumps(reading), key=key)
                    producer._producer.poll(0)
                    sent_at[probe] = time.monotonic()
                    next_probe = now + 0.25
            if time.monotonic() - started > duration:
                break
        producer.flush()
        produced_s = time.monotonic() - started
        wait_until = time.monotonic() + 15
        while time.monotonic() < wait_until and len(got) < len(sent_at):
            time.sleep(0.2)
    finally:
        reader.stop()
        run.stop_workers(procs)
    latencies = sorted(got[p] - sent_at[p] for p in sent_at if p in got)
    workload = {"target_readings_per_s": round(rate), "achieved_readings_per_s": round(sent / produced_s),
                "seconds": round(produced_s, 1), "probes": len(sent_at), "alerts_received": len(latencies),
                "readings_per_message": 500, "households": households,
                "probe": "a single reading carrying deviceAlarm=leak for a new meter; latency from its send "
                         "to the water.device_alarm alert read back from the alerts topic"}
    if not latencies:
        for key in ("alert_latency_p50_s", "alert_latency_p99_s"):
            ctx.results[key] = failed(key, "no probe alert came back", workload)
        return
    p50 = float(np.percentile(latencies, 50))
    p99 = float(np.percentile(latencies, 99))
    lost = len(sent_at) - len(latencies)
    ctx.results["alert_latency_p50_s"] = entry("alert_latency_p50_s", round(p50, 3), workload)
    ctx.results["alert_latency_p99_s"] = entry("alert_latency_p99_s", round(p99, 3), workload,
                                               max_s=round(latencies[-1], 3), probes_without_alert=lost)
    if lost:
        ctx.results["alert_latency_p99_s"]["met"] = False


def group_state(ctx: Context) -> None:
    """In a fresh process (its RSS is the state's): 1M water meters tracked, and one welfare sweep."""
    meters = 100_000 if ctx.quick else 1_000_000
    done = subprocess.run([sys.executable, __file__, "--internal-state", str(meters)], capture_output=True,
                          text=True, timeout=900)
    if done.returncode != 0:
        error = (done.stderr.strip().splitlines() or ["no output"])[-1]
        for key in ("state_bytes_per_sensor", "welfare_sweep_1m_s"):
            ctx.results[key] = failed(key, error)
        return
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    workload = {"meters": meters, "partitions": 1, "readings_per_meter": 1, "readings_per_message": 500}
    ctx.results["state_bytes_per_sensor"] = entry(
        "state_bytes_per_sensor", facts["bytes_per_meter"], {**workload, **facts["memory"]},
        how="RSS growth between 10% and 100% of the meters tracked, divided by the meters added (pseudonym "
            "cache, key->slot map and every state array included; input messages freed)")
    ctx.results["welfare_sweep_1m_s"] = entry(
        "welfare_sweep_1m_s", facts["sweep_s"], {**workload, **facts["sweep"]},
        how="water.no_use_24h's sweep (Detector.sweep on the partition's state, through its declared view) at "
            "one tick, best of 5; every water detector's sweep at that tick is given beside it")


def internal_state(meters: int) -> dict:
    import orjson

    from benchmarks.throughput import KEY
    from streams.config import settings_from
    from streams.detectors.access import DeclaredState
    from streams.domains import DOMAINS
    from streams.ingest import RawMessage
    from streams.pipeline import DomainPipeline
    from streams.pseudonym import Pseudonymizer
    from streams.simulate.water import meter_id

    def rss() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    settings = settings_from(environ={}, pseudonym_key=KEY)
    t0 = time.time() - 2 * 3600
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0))
    pipeline = DomainPipeline(DOMAINS["water"], settings, Pseudonymizer(KEY.encode()))
    offset = 0

    def feed(first: int, last: int):
        nonlocal offset
        for start in range(first, last, 20_000):
            messages = []
            for g in range(start, min(last, start + 20_000), 500):
                readings = [{"id": meter_id(i), "type": "WaterConsumptionObserved", "dateObserved": stamp,
                             "waterConsumption": 100.0 + i % 97} for i in range(g, min(last, g + 500))]
                messages.append(RawMessage(orjson.dumps({"type": "ReadingBatch", "gatewayId": f"gw-{g // 500:05d}",
                                                         "dateSent": stamp, "readings": readings}),
                                           "readings", 0, offset))
                offset += 1
            pipeline.process(messages)
        gc.collect()

    tenth = meters // 10
    feed(0, tenth)
    before = rss()
    feed(tenth, meters)
    after = rss()
    state = pipeline.state(0)
    tracked = len(state.subjects)
    arrays = sum(state.subjects.column(f).nbytes for f in state.subjects.fields)
    watermark = state.watermark + settings.sweep_interval_s
    timings = {}
    for detector in pipeline.detectors:
        view = DeclaredState(state, detector)
        best = math.inf
        for _ in range(5):
            started = time.perf_counter()
            detector.sweep(view, watermark)
            best = min(best, time.perf_counter() - started)
        timings[detector.declaration.name] = round(best, 5)
    return {"bytes_per_meter": round((after - before) / (meters - tenth), 1),
            "memory": {"rss_at_10pct_bytes": before, "rss_at_100pct_bytes": after, "meters_tracked": tracked,
                       "subject_array_bytes_per_meter": round(arrays / max(1, tracked), 1)},
            "sweep_s": timings.get("water.no_use_24h"),
            "sweep": {"meters_swept": tracked, "every_water_detector_s": timings,
                      "all_water_sweeps_s": round(sum(timings.values()), 4)}}


def group_replay(ctx: Context) -> None:
    """The DAIAD year (or a simulated one of the same size) through `glasscity replay`'s code path: the
    water domain's whole pipeline, every active water detector."""
    import io

    import orjson

    from streams.config import settings_from
    from streams.replay import replay

    path = ctx.args.daiad
    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "year.jsonl"
        started = time.perf_counter()
        if path:
            from benchmarks import quality

            households = quality.load_daiad(Path(path))
            messages = quality.daiad_messages(households)
            source = {"data": "DAIAD swm_trialA (real, CC-BY-SA 4.0)", "households": len(households),
                      "archive": Path(path).name}
        else:
            from benchmarks.throughput import water_city

            simulation = water_city(92, 365, 1)
            messages = [v for _when, step in simulation.steps() for _k, v in step]
            source = {"data": "SIMULATED water year (no --daiad / GLASSCITY_DAIAD given): 92 households, "
                              "hourly, one reading per message, the size of DAIAD swm_trialA", "households": 92}
        lines.write_bytes(b"\n".join(messages) + b"\n")
        load_s = time.perf_counter() - started
        settings = settings_from(environ={}, pseudonym_key="benchmark-pseudonym-key-0000")
        out = io.StringIO()
        started = time.perf_counter()
        summary = replay("water.no_use_24h", lines, Path(tmp) / "out.csv", settings, out=out)
        seconds = time.perf_counter() - started
    ctx.results["replay_daiad_year_s"] = entry(
        "replay_daiad_year_s", round(seconds, 2),
        {**source, "readings": len(messages), "load_and_write_jsonl_s": round(load_s, 2),
         "simulated": not path, "rows": summary["rows"]},
        how="streams.replay.replay (what `glasscity replay` runs) of a JSON-lines file of the year: one "
            "DomainPipeline.process over every reading (every active water detector), then the per-reading "
            "CSV of water.no_use_24h; reading the archive is not timed")


def group_river(ctx: Context) -> None:
    """river vs our series scorer, per reading, on the simulated traffic city's series."""
    import kernels
    from benchmarks.peers import river_scores
    from kernels import series as ks
    from streams.detectors.traffic.anomaly_score import TrafficAnomalyScore
    from streams.domains import DOMAINS
    from streams.ingest import RawMessage, decode

    traffic = DOMAINS["traffic"]
    days = 2 if ctx.quick else 7
    simulation = traffic.simulate(days=days, start=1_790_000_000.0)
    messages = [RawMessage(v, "t", 0, i) for i, v in enumerate(v for _w, step in simulation.steps() for _k, v in step)]
    batch = decode(messages, traffic, now=simulation.end + 3600)
    order = np.argsort(batch.ts, kind="stable")
    ids = np.array(batch.subject_ids, dtype=object)[order]
    ts = batch.ts[order]
    names = {c.json: (c.name or c.json) for c in traffic.columns}
    column = lambda json_name: batch.columns[names[json_name]][order]  # noqa: E731
    values = np.ascontiguousarray(np.column_stack(kernels.traffic_channels(
        column("intensity"), column("occupancy"), column("averageVehicleSpeed"))))
    unique = {s: n for n, s in enumerate(dict.fromkeys(ids.tolist()))}
    slot = np.array([unique[s] for s in ids.tolist()], dtype=np.int32)
    th = TrafficAnomalyScore.Thresholds()
    m = len(unique)
    args = (np.array([th.intensity_floor, th.occupancy_floor, th.speed_floor]),
            th.alert_score, th.calm_score, th.clip, th.bin_rate, th.baseline_age_s)
    kernels.score_series(slot[:100], ts[:100], values[:100], *args, np.full(m, np.nan), *ks.new_series_state(m, 3))
    best = math.inf
    for _ in range(3):
        state = ks.new_series_state(m, 3)
        started = time.perf_counter()
        kernels.score_series(slot, ts, values, *args, np.full(m, np.nan), *state)
        best = min(best, time.perf_counter() - started)
    ours = round(len(ts) / best)
    limit = 20_000 if ctx.quick else 100_000
    river = river_scores(ts[:limit].tolist(), slot[:limit].tolist(), values[:limit].tolist())
    ratio = _ratio(ours, river["readings_per_s"])
    ctx.results["river_peer_readings_per_s"] = entry(
        "river_peer_readings_per_s", river["readings_per_s"],
        {"series": m, "readings": len(ts), "river_readings": river["readings"], "days": days, "channels": 3,
         "data": "the simulated traffic city (streams.simulate, default scenario), decoded by the pipeline's "
                 "decoder, channels by kernels.traffic_channels"},
        compared=ratio, ours=ours, peer=river["readings_per_s"], ratio=ratio, river=river,
        ours_how="kernels.score_series (traffic.anomaly_score's kernel) over every reading, fresh state, best of 3",
        why_this_model="our score is per series: a prediction (Holt's level and trend among the views) and the "
                       "deviation's tail probability under the series' own learnt distribution. river's "
                       "PredictiveAnomalyDetection is the same shape: a per-series forecaster (HoltWinters "
                       "with a trend, no season) and a score from the error against its running spread; "
                       "GaussianScorer scores the raw value's distribution (no prediction) and HalfSpaceTrees "
                       "is a multivariate density over a window (no per-series time model)")


GROUPS = {  # group -> (keys it writes, function)
    "kernels": (("kernel_readings_per_s", "kernel_vs_naive_ratio"), group_kernels),
    "pipeline": (("pipeline_batched_readings_per_s", "pipeline_single_readings_per_s"), group_pipeline),
    "river": (("river_peer_readings_per_s",), group_river),
    "state": (("state_bytes_per_sensor", "welfare_sweep_1m_s"), group_state),
    "replay": (("replay_daiad_year_s",), group_replay),
    "broker": (("broker_batched_readings_per_s", "broker_single_msgs_per_s", "aiokafka_ceiling_msgs_per_s",
                "librdkafka_ceiling_msgs_per_s", "faust_per_event_msgs_per_s", "quix_per_event_msgs_per_s",
                "alert_latency_p50_s", "alert_latency_p99_s", "scaleout_2workers_ratio"), group_broker),
}
ORDER = ["kernel_readings_per_s", "kernel_vs_naive_ratio", "pipeline_batched_readings_per_s",
         "pipeline_single_readings_per_s", "broker_batched_readings_per_s", "broker_single_msgs_per_s",
         "aiokafka_ceiling_msgs_per_s", "librdkafka_ceiling_msgs_per_s", "faust_per_event_msgs_per_s",
         "quix_per_event_msgs_per_s", "river_peer_readings_per_s", "alert_latency_p50_s", "alert_latency_p99_s",
         "state_bytes_per_sensor", "welfare_sweep_1m_s", "replay_daiad_year_s", "scaleout_2workers_ratio"]
assert sorted(ORDER) == sorted(GOALS) == sorted(k for keys, _ in GROUPS.values() for k in keys)


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", metavar="KEY[,KEY]",
                        help="measure only these keys (their group runs: e.g. any broker key starts the broker); "
                             "the keys already in --output are kept")
    parser.add_argument("--quick", action="store_true",
                        help="small workloads and short windows, for development (figures not comparable)")
    parser.add_argument("--daiad", default=os.environ.get("GLASSCITY_DAIAD") or os.environ.get("GLASSCITY_DAIAD_ZIP",
                                                                                            ""),
                        metavar="PATH", help="the DAIAD archive swm_trialA.zip (env GLASSCITY_DAIAD); without it "
                                             "replay_daiad_year_s replays a simulated year of the same size")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"results file (default {RESULTS.relative_to(ROOT)})")
    parser.add_argument("--max-readings", type=int, default=6_000_000,
                        help="most readings produced for a batched broker run (the embedded broker keeps them in "
                             "memory); the sustained window is shorter if the worker drains them sooner")
    parser.add_argument("--list", action="store_true", help="list the keys with their units and goals, and exit")
    parser.add_argument("--table", action="store_true", help="print the table of --output (measure nothing), and exit")
    parser.add_argument("--internal-state", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    only = {k.strip() for k in args.only.split(",") if k.strip()}
    unknown = only - set(GOALS)
    if unknown:
        parser.error(f"unknown key(s) {', '.join(sorted(unknown))}; --list shows them")
    args.only_keys = only or None
    return args


def main(argv=None) -> int:
    args = parse(argv)
    if args.internal_state:
        print(json.dumps(internal_state(args.internal_state)))
        return 0
    if args.table:
        print(table(json.loads(args.output.read_text())))
        return 0
    if args.list:
        for key in ORDER:
            units, _op, _goal, text = GOALS[key]
            print(f"{key:34} {units:32} {text}")
        return 0
    ctx = Context(args)
    started = time.time()
    from streams.progress import progress

    chosen = {name: group for name, group in GROUPS.items()
              if args.only_keys is None or set(group[0]) & args.only_keys}
    for name, (keys, run) in progress(chosen.items(), total=len(chosen), desc="bench", unit="group"):
        group_started = time.perf_counter()
        print(f"[bench] {name} ...", flush=True)
        try:
            run(ctx)
        except Exception as error:   # one group failing must not lose the others' figures
            import traceback

            traceback.print_exc()
            for key in keys:
                ctx.results.setdefault(key, failed(key, f"{type(error).__name__}: {error}"))
        print(f"[bench] {name} done in {time.perf_counter() - group_started:.0f} s", flush=True)
    previous = {}
    if args.only_keys is not None and args.output.exists():
        try:
            previous = json.loads(args.output.read_text()).get("results", {})
        except ValueError:
            previous = {}
    if args.only_keys is not None:
        ctx.results = {k: v for k, v in ctx.results.items() if k in args.only_keys}
    merged = {**previous, **ctx.results}
    report = {"machine": machine(),
              "run": {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                      "seconds": round(time.time() - started, 1), "quick": args.quick,
                      "only": sorted(args.only_keys) if args.only_keys else None},
              "results": {k: merged[k] for k in ORDER if k in merged}}
    write(report, args.output)
    print(table(report))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
