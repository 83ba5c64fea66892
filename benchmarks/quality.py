"""Detection quality, in numbers: precision, recall and delay per detector; false alerts on real data.

1. The simulated city (every registered domain, default scenarios, the same
   seed the demo uses) runs in-process through the same pipeline the worker runs
   (4 partitions, one batch per city step). Per detector: precision, recall,
   median detection delay (event time, from start + the detector's definitional
   delay).
2. The real DAIAD households (swm_trialA: 92 households, a year of hourly
   cumulative indices; CC-BY-SA 4.0, "DAIAD project, swm_trialA") run through the
   water pipeline twice: as recorded, and with incidents injected by us (labels of
   our own making). Per water detector: false alerts per 1,000 household-days, and
   recall on the injected incidents. The data carries no labels, so every alert not
   on an injected incident counts as false here, though some are real (holidays are
   true multi-day zero-use periods).

Writes benchmarks/quality.json:
``{"detectors": {NAME: {"precision": p, "recall": r, "median_delay_s": d}}, "daiad": {...}, ...}``

Usage: python benchmarks/quality.py [--daiad PATH/swm_trialA.zip] [--days 3] [--seed 42]
(the DAIAD part runs when --daiad or GLASSCITY_DAIAD_ZIP names the archive).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
import zipfile
import zlib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.config import settings_from  # noqa: E402
from streams.detectors import REGISTRY  # noqa: E402
from streams.detectors.thresholds import load_thresholds  # noqa: E402
from streams.domains import DOMAINS  # noqa: E402
from streams.evaluation import format_table, summarise  # noqa: E402
from streams.ingest import RawMessage  # noqa: E402
from streams.pipeline import DomainPipeline  # noqa: E402
from streams.pseudonym import Pseudonymizer  # noqa: E402

KEY = "quality-harness-key-000000"
PARTITIONS = 4
SETTINGS = settings_from(environ={}, pseudonym_key=KEY)
PSEUDONYMS = Pseudonymizer(KEY.encode())
THRESHOLDS = load_thresholds(os.environ.get("GLASSCITY_THRESHOLDS", ""), REGISTRY)
DETECTORS = {name: cls(THRESHOLDS[name]) for name, cls in REGISTRY.items()}


def partition_of(key: bytes | None) -> int:
    return zlib.crc32(key or b"") % PARTITIONS


def run_domain(domain, simulation, clock_s: float) -> list[dict]:
    """Every alert event the domain's pipeline emits on a simulation, one batch per city step."""
    pipeline = DomainPipeline(domain, SETTINGS, PSEUDONYMS, THRESHOLDS, clock=lambda: clock_s)
    offsets = [0] * PARTITIONS
    alerts = []
    for _when, step in simulation.steps():
        batch = []
        for key, value in step:
            p = partition_of(key)
            batch.append(RawMessage(value, domain.topic("readings"), p, offsets[p], key))
            offsets[p] += 1
        alerts += [a.event for a in pipeline.process(batch).alerts]
    return alerts


def simulated_city(days: float, seed: int, start: float) -> dict:
    alerts, runs = [], []
    for domain in DOMAINS.values():
        simulation = domain.simulate(days=days, seed=seed, start=start)
        alerts += run_domain(domain, simulation, simulation.end + 3600)
        runs.append((domain, simulation.incidents))
    summaries = summarise(alerts, runs, DETECTORS, REGISTRY, PSEUDONYMS)
    print(f"simulated city, seed {seed}, {days:g} days:")
    print(format_table(summaries))
    return {s.detector: {"domain": s.domain, "incident_kind": s.incident_kind, "injected": s.injected,
                         "detected": s.detected, "false_alerts": s.false_alerts,
                         "precision": round(s.precision, 4), "recall": round(s.recall, 4),
                         "median_delay_s": s.median_delay_s} for s in summaries}


# --- DAIAD ---------------------------------------------------------------------------------------

MADRID = ZoneInfo("Europe/Madrid")


def load_daiad(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """household key -> (epoch s UTC, cumulative index m3), sorted by time."""
    series: dict[str, list] = {}
    with zipfile.ZipFile(path) as archive:
        with archive.open("swm_trialA.csv") as raw:
            rows = csv.reader(io.TextIOWrapper(raw, encoding="utf-8"), delimiter=";")
            next(rows)
            for key, when, reading, _diff in rows:
                moment = datetime.strptime(when, "%d/%m/%Y %H:%M:%S").replace(tzinfo=MADRID)
                series.setdefault(key, []).append((moment.timestamp(), float(reading) / 1000.0))
    result = {}
    for key, points in series.items():
        points.sort()
        ts = np.array([p[0] for p in points])
        index = np.array([p[1] for p in points])
        keep = np.concatenate([[True], np.diff(ts) > 0])   # duplicate timestamps: keep the first
        result[key] = (ts[keep], index[keep])
    return result


class Injected:
    def __init__(self, kind, subject, start, end):
        self.kind, self.subject, self.start, self.end = kind, subject, start, end


def inject(households, rng) -> tuple[dict, list[Injected]]:
    """One welfare no-use episode (index frozen 30 h) and one silent spell (8 h without readings) per
    household, where it reports regularly; both labelled by us."""
    changed, incidents = {}, []
    for key, (ts, index) in households.items():
        ts, index = ts.copy(), index.copy()
        regular = np.flatnonzero(np.diff(ts) < 2 * 3600)
        if len(regular) < 200:
            changed[key] = (ts, index)
            continue
        # no use: freeze from a reading at which the index had just risen, for 30 h
        risen = [i for i in rng.permutation(regular[: len(regular) // 2])
                 if index[i] > index[i - 1] and ts[-1] - ts[i] > 5 * 86400 and
                 np.all(np.diff(ts[i:np.searchsorted(ts, ts[i] + 40 * 3600)]) < 2 * 3600)][:1]
        if risen:
            i = risen[0]
            j = np.searchsorted(ts, ts[i] + 30 * 3600)
            used = index[j] - index[i]
            index[i + 1:j] = index[i]
            index[j:] -= used - 0.001        # use resumes at j (1 L), the series stays cumulative
            incidents.append(Injected("no_use", key, ts[i], ts[j]))
        # silent: drop 8 h of readings in the second half
        later = [i for i in rng.permutation(regular[len(regular) // 2:])
                 if ts[-1] - ts[i] > 2 * 86400 and
                 np.all(np.diff(ts[i:np.searchsorted(ts, ts[i] + 12 * 3600)]) < 2 * 3600)][:1]
        if later:
            i = later[0]
            j = np.searchsorted(ts, ts[i] + 8 * 3600)
            incidents.append(Injected("meter_silent", key, ts[i], ts[j]))
            ts, index = np.delete(ts, range(i + 1, j)), np.delete(index, range(i + 1, j))
        changed[key] = (ts, index)
    return changed, incidents


def daiad_messages(households) -> list[bytes]:
    """Single-reading messages (no gateway), in time order across households."""
    rows = []
    for key, (ts, index) in households.items():
        for t, x in zip(ts, index):
            rows.append((float(t), key, float(x)))
    rows.sort()
    return [orjson.dumps({"id": key, "type": "WaterConsumptionObserved",
                          "dateObserved": datetime.fromtimestamp(t, MADRID).isoformat(),
                          "waterConsumption": round(x, 3)}) for t, key, x in rows]


def run_daiad_once(households, incidents) -> dict:
    domain = DOMAINS["water"]
    pipeline = DomainPipeline(domain, SETTINGS, PSEUDONYMS, THRESHOLDS, clock=lambda: 2e9)
    messages = daiad_messages(households)
    alerts = []
    started = time.perf_counter()
    for i in range(0, len(messages), 5000):
        chunk = messages[i:i + 5000]
        batch = [RawMessage(v, "daiad", partition_of(orjson.loads(v)["id"].encode()), i + n) for n, v in enumerate(chunk)]
        result = pipeline.process(batch)
        if result.dead_letters:
            raise RuntimeError(f"DAIAD reading refused: {result.dead_letters[0].detail}")
        alerts += [a.event for a in result.alerts]
    seconds = time.perf_counter() - started
    days = sum((ts[-1] - ts[0]) / 86400 for ts, _ in households.values())
    summaries = summarise(alerts, [(domain, incidents)], DETECTORS, REGISTRY, PSEUDONYMS)
    per_detector = {}
    for s in summaries:
        per_detector[s.detector] = {"false_alerts": s.false_alerts,
                                    "false_alerts_per_1000_household_days": round(1000 * s.false_alerts / days, 3),
                                    "injected": s.injected, "detected": s.detected,
                                    "recall": round(s.recall, 4) if s.injected else None}
    return {"readings": len(messages), "household_days": round(days, 1), "seconds": round(seconds, 2),
            "detectors": per_detector}


def daiad(path: Path, seed: int) -> dict:
    households = load_daiad(path)
    recorded = run_daiad_once(households, [])
    injected_households, incidents = inject(households, np.random.default_rng(seed))
    injected = run_daiad_once(injected_households, incidents)
    print(f"\nDAIAD swm_trialA, {len(households)} households, {recorded['household_days']} household-days "
          f"({recorded['readings']} readings, {recorded['seconds']} s through the water pipeline):")
    print(f"{'detector':24} {'false/1000 hh-days (as recorded)':>34} {'false/1000 hh-days (injected)':>31} "
          f"{'recall on injected (ours)':>26}")
    for name, row in injected["detectors"].items():
        rec = recorded["detectors"][name]
        recall = "-" if row["recall"] is None else f"{row['recall']:.3f} ({row['detected']}/{row['injected']})"
        print(f"{name:24} {rec['false_alerts_per_1000_household_days']:>34.2f} "
              f"{row['false_alerts_per_1000_household_days']:>31.2f} {recall:>26}")
    return {"households": len(households), "as_recorded": recorded, "with_injected_incidents": injected,
            "note": "incidents injected into DAIAD are labels of our own making; DAIAD has no labels, so alerts "
                    "on real events (holidays, real leaks) count as false here"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=3.0, help="city-days of the simulated city (default 3)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the default scenario (default 42)")
    parser.add_argument("--more-seeds", type=int, default=0,
                        help="also run this many further seeds and report the pooled figures (more incidents)")
    parser.add_argument("--daiad", default=os.environ.get("GLASSCITY_DAIAD_ZIP", ""),
                        help="path to swm_trialA.zip (env GLASSCITY_DAIAD_ZIP); the DAIAD part is skipped without it")
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "quality.json"))
    args = parser.parse_args()
    start = 1_790_000_000.0 - 1_790_000_000.0 % 86400   # a fixed city clock: the same figures every run
    report = {"scenario": {"days": args.days, "seed": args.seed, "start": start},
              "detectors": simulated_city(args.days, args.seed, start)}
    if args.more_seeds:
        pooled: dict = {}
        for seed in range(args.seed + 1, args.seed + 1 + args.more_seeds):
            for name, row in simulated_city(args.days, seed, start).items():
                total = pooled.setdefault(name, {"injected": 0, "detected": 0, "false_alerts": 0})
                for key in total:
                    total[key] += row[key]
        for name, total in pooled.items():
            first = report["detectors"][name]
            total["injected"] += first["injected"]
            total["detected"] += first["detected"]
            total["false_alerts"] += first["false_alerts"]
            raised = total["detected"] + total["false_alerts"]
            total["precision"] = round(total["detected"] / raised, 4) if raised else 1.0
            total["recall"] = round(total["detected"] / total["injected"], 4) if total["injected"] else 1.0
        report["pooled_seeds"] = {"seeds": list(range(args.seed, args.seed + 1 + args.more_seeds)),
                                  "detectors": pooled}
        print(f"\npooled over seeds {args.seed}..{args.seed + args.more_seeds}:")
        for name, total in pooled.items():
            print(f"  {name:30} precision {total['precision']:.3f} recall {total['recall']:.3f} "
                  f"({total['detected']}/{total['injected']} incidents, {total['false_alerts']} false alerts)")
    if args.daiad:
        report["daiad"] = daiad(Path(args.daiad), args.seed)
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
