"""SKAB (Skoltech Anomaly Benchmark): a streaming detector on real, labelled water-circuit data.

The data (waico/SKAB v0.9, GPL-3.0) is read by path only, never copied into the project: the
folder is given with ``--skab DIR`` (benchmarks/quality.py), as the argument of this script, or
in the environment variable GLASSCITY_SKAB_DIR. It holds ``;``-separated CSV files, one
experiment each (``valve1/``, ``valve2/``, ``other/``: 34 files with one labelled anomaly each;
``anomaly-free/``: one run without labels). Columns: ``datetime`` (local time of the testbed,
Moscow), eight sensor channels (:data:`CHANNELS`), ``anomaly`` (0/1 per row) and ``changepoint``
(0/1, where a collective anomaly starts or changes).

Protocol (the SKAB leaderboard's, so figures compare with its published ones):

- Per file the first :data:`FIT_ROWS` (400) rows are fitting rows, the rest is the test part; no
  shuffling. Only the test parts are scored, pooled over the labelled files.
- The detector under test is streaming: ``detect(ts, values, fit_rows) -> Detection`` is given a
  file's rows in time order (epoch s, float64 ``[n, 8]``) and must label each row from that row
  and the rows before it only, learning online; the fitting rows may teach it, nothing else. The
  harness does not enforce this (it hands over the arrays); :func:`causality_violations` checks
  it on prefixes (``--check-causal``). ``Detection.outlier`` is the per-row anomaly label,
  ``Detection.changepoints`` is True where the detector declares a change point (an alarm start).
- Outlier problem: per-row labels against ``anomaly``, counts pooled over all test rows; F1 =
  TP / (TP + (FP + FN) / 2), FAR = FP / (FP + TN) in %, MAR = FN / (FN + TP) in % (SKAB's
  ``chp_score(..., metric="binary")``).
- Changepoint problem: NAB scores of the declared change points against ``changepoint``, as
  SKAB's ``chp_score(true_cp, predicted_cp, metric="nab", window_width="60s",
  anomaly_window_destination="righter")`` computes them (waico/SKAB core/metrics.py, from the
  waico/tsad evaluating module), replicated in :func:`nab_file_matrix`:

  * one window ``[t, t + 60 s]`` (both ends included) to the right of each true change point
    ``t``; where a window reaches the next one's start, the next window starts where this one
    ends ("cut right window");
  * in each window only the first detection counts: it scores ``y[int(1000 (t_d - t1) /
    (t2 - t1))]`` (index capped at 999), ``y`` SKAB's "improved" scaled sigmoid sampled at 1000
    points, ``y(x) = A_tp - (A_tp - A_fp) (1 + tanh(x) / tanh(pi/2)) / 2`` for ``x`` from -pi/2
    to pi/2 (A_tp at the change point, A_fp at the window's end); later detections in the
    window count for nothing; a window without detection scores A_fn; every detection outside
    all windows scores A_fp;
  * profiles (A_tp, A_fp, A_fn): standard (1, -0.11, -1), low FP (1, -0.22, -1), low FN (1,
    -0.11, -2);
  * raw, null (A_fn per window) and perfect (A_tp per window) scores are summed over files and
    normalised: ``100 (S - S_null) / (S_perfect - S_null)``, rounded to 2 decimals.

The default detector (:func:`default_detect`) is what the project has today: each channel
scored by ``TrafficAnomalyScore.score_series`` with the default thresholds, the scores combined by
max, a row an outlier at ``alert_score`` or above, a change point at the first row of each run of
outliers. Pass another ``detect`` to :func:`evaluate` to test another detector.

Usage: python benchmarks/skab.py [DIR] [--check-causal]  (prints the tables, writes nothing)
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

__all__ = ["CHANNELS", "FIT_ROWS", "NAB_WINDOW_S", "PROFILES", "PUBLISHED", "Detection", "Experiment",
           "read_experiment", "load", "runs_start", "default_detect", "causality_violations", "binary_counts",
           "binary_metrics", "nab_windows", "nab_window_score", "nab_file_matrix", "nab_scores", "evaluate",
           "format_tables", "summary_line"]

CHANNELS = ("Accelerometer1RMS", "Accelerometer2RMS", "Current", "Pressure", "Temperature", "Thermocouple",
            "Voltage", "Volume Flow RateRMS")
FIT_ROWS = 400
NAB_WINDOW_S = 60.0
PROFILES = {"standard": (1.0, -0.11, -1.0), "low_fp": (1.0, -0.22, -1.0), "low_fn": (1.0, -0.11, -2.0)}
TESTBED_ZONE = ZoneInfo("Europe/Moscow")   # Skoltech; UTC+3 all year since 2014
ANOMALY_FREE = "anomaly-free"
_SCALE_POINTS = 1000                       # SKAB's `detalization`

PUBLISHED = {
    "source": "SKAB README (waico/SKAB v0.9, commit b2c0d46), test set: first 400 rows of each file for fitting; "
              "NAB window 60 s to the right of each change point; offline batch models",
    "outlier": {
        "Conv-AE": {"f1": 0.78, "far_pct": 13.55, "mar_pct": 28.02},
        "MSET": {"f1": 0.78, "far_pct": 39.73, "mar_pct": 14.13},
        "T-squared+Q (PCA)": {"f1": 0.76, "far_pct": 26.62, "mar_pct": 24.92},
        "LSTM-AE": {"f1": 0.74, "far_pct": 29.96, "mar_pct": 25.92},
        "Isolation forest": {"f1": 0.29, "far_pct": 2.56, "mar_pct": 82.89},
    },
    "changepoint": {
        "MSCRED": {"nab_standard": 32.42, "nab_low_fp": 16.53, "nab_low_fn": 40.28},
        "Isolation forest": {"nab_standard": 26.16, "nab_low_fp": 19.5, "nab_low_fn": 30.82},
        "T-squared+Q (PCA)": {"nab_standard": 25.35, "nab_low_fp": 14.51, "nab_low_fn": 31.33},
        "Conv-AE": {"nab_standard": 23.61, "nab_low_fp": 21.54, "nab_low_fn": 27.55},
        "Null detector": {"nab_standard": 0.0, "nab_low_fp": 0.0, "nab_low_fn": 0.0},
    },
}


@dataclass(frozen=True)
class Detection:
    """What a detector says about each row of one file: ``outlier`` (bool[n], the row is
    anomalous) and ``changepoints`` (bool[n], True where it declares a change point / alarm start)."""
    outlier: np.ndarray
    changepoints: np.ndarray


@dataclass(frozen=True)
class Experiment:
    """One SKAB file: ``name`` (path relative to the data folder), ``ts`` (epoch s), ``values``
    (float64 [n, 8], :data:`CHANNELS`), ``anomaly`` and ``changepoint`` (bool[n]; None when unlabelled)."""
    name: str
    ts: np.ndarray
    values: np.ndarray
    anomaly: np.ndarray | None
    changepoint: np.ndarray | None


Detect = Callable[[np.ndarray, np.ndarray, int], Detection]


# --- data ------------------------------------------------------------------------------------------

def read_experiment(path: Path, name: str) -> Experiment:
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f, delimiter=";")
        header = [h.strip() for h in next(rows)]
        data = [r for r in rows if r]
    column = {h: i for i, h in enumerate(header)}
    missing = [c for c in ("datetime", *CHANNELS) if c not in column]
    if missing:
        raise ValueError(f"{name}: no column {', '.join(missing)}")
    ts = np.array([datetime.strptime(r[column["datetime"]], "%Y-%m-%d %H:%M:%S").replace(tzinfo=TESTBED_ZONE)
                   .timestamp() for r in data])
    values = np.array([[float(r[column[c]]) for c in CHANNELS] for r in data], dtype=np.float64)
    values = values.reshape(-1, len(CHANNELS))
    labels = {}
    for label in ("anomaly", "changepoint"):
        labels[label] = np.array([float(r[column[label]]) == 1.0 for r in data]) if label in column else None
    if np.any(np.diff(ts) <= 0):
        raise ValueError(f"{name}: timestamps not strictly increasing")
    return Experiment(name, ts, values, labels["anomaly"], labels["changepoint"])


def load(directory: str | Path) -> tuple[list[Experiment], list[Experiment]]:
    """(labelled experiments, anomaly-free runs): every ``*.csv`` under ``directory``, sorted by path."""
    root = Path(directory)
    paths = sorted(root.rglob("*.csv"))
    if not paths:
        raise FileNotFoundError(f"no SKAB CSV files under {root}")
    labelled, free = [], []
    for path in paths:
        name = path.relative_to(root).as_posix()
        experiment = read_experiment(path, name)
        if ANOMALY_FREE in path.relative_to(root).parts or experiment.anomaly is None:
            free.append(experiment)
        else:
            if experiment.changepoint is None:
                raise ValueError(f"{name}: anomaly labels without changepoint labels")
            labelled.append(experiment)
    return labelled, free


# --- detectors -------------------------------------------------------------------------------------

def runs_start(flags: np.ndarray) -> np.ndarray:
    """True at the first row of each run of True."""
    flags = np.asarray(flags, dtype=bool)
    return flags & ~np.concatenate([[False], flags[:-1]])


def default_detect(ts: np.ndarray, values: np.ndarray, fit_rows: int, thresholds=None) -> Detection:
    """The streaming detector as the worker runs it: ``traffic.anomaly_score``'s one series scorer
    (:meth:`TrafficAnomalyScore.backtest`) over all eight channels together, one reading at a time
    from the first row (the fitting rows are its first readings; it learns from every row it is
    given and never sees a later one), with its default thresholds and episode rule. An outlier
    is a row inside an episode (from its start to the reading that ends it); change points are
    the episodes' starts and ends (a changepoint is labelled where an anomaly begins and ends).
    """
    from streams.detectors.traffic.anomaly_score import TrafficAnomalyScore

    _scores, episodes = TrafficAnomalyScore.backtest(ts, values, thresholds)
    outlier = np.zeros(ts.shape[0], dtype=bool)
    changepoints = np.zeros(ts.shape[0], dtype=bool)
    for start, end in episodes:
        first = int(np.searchsorted(ts, start, side="left"))
        last = ts.shape[0] if end is None else int(np.searchsorted(ts, end, side="left"))
        outlier[first:last] = True
        changepoints[min(first, ts.shape[0] - 1)] = True
        if last < ts.shape[0]:
            changepoints[last] = True
    return Detection(outlier, changepoints)


def _checked(detection: Detection, n: int, name: str) -> Detection:
    outlier = np.asarray(detection.outlier, dtype=bool).reshape(-1)
    changepoints = np.asarray(detection.changepoints, dtype=bool).reshape(-1)
    if outlier.shape != (n,) or changepoints.shape != (n,):
        raise ValueError(f"{name}: the detector returned {outlier.shape[0]} outlier and {changepoints.shape[0]} "
                         f"changepoint labels for {n} rows")
    return Detection(outlier, changepoints)


def causality_violations(detect: Detect, ts: np.ndarray, values: np.ndarray, fit_rows: int,
                         cuts: Sequence[int]) -> int:
    """Rows whose labels change when the detector is given only the rows up to a cut (a streaming
    detector labels a row from that row and earlier ones only: 0)."""
    full = _checked(detect(ts, values, fit_rows), len(ts), "full")
    changed = 0
    for m in cuts:
        part = _checked(detect(ts[:m], values[:m], fit_rows), m, f"prefix {m}")
        changed += int(np.sum((part.outlier != full.outlier[:m]) | (part.changepoints != full.changepoints[:m])))
    return changed


# --- metrics (SKAB's chp_score) ----------------------------------------------------------------------

def binary_counts(true: np.ndarray, pred: np.ndarray) -> tuple[int, int, int, int]:
    """(TP, TN, FP, FN) of per-row labels."""
    true = np.asarray(true, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if true.shape != pred.shape:
        raise ValueError(f"labels differ in shape: {true.shape} and {pred.shape}")
    return (int(np.sum(true & pred)), int(np.sum(~true & ~pred)), int(np.sum(~true & pred)),
            int(np.sum(true & ~pred)))


def binary_metrics(trues: Sequence[np.ndarray], preds: Sequence[np.ndarray]) -> dict:
    """F1, FAR % and MAR % of per-row labels, counts pooled over the files (not rounded)."""
    if len(trues) != len(preds):
        raise ValueError("as many predictions as label series are needed")
    tp = tn = fp = fn = 0
    for true, pred in zip(trues, preds):
        a, b, c, d = binary_counts(true, pred)
        tp, tn, fp, fn = tp + a, tn + b, fp + c, fn + d
    ratio = lambda num, den: num / den if den else float("nan")  # noqa: E731
    return {"f1": ratio(tp, tp + (fn + fp) / 2), "far_pct": 100 * ratio(fp, fp + tn),
            "mar_pct": 100 * ratio(fn, fn + tp), "tp": tp, "tn": tn, "fp": fp, "fn": fn}


def nab_windows(ts: np.ndarray, true_cp: np.ndarray, window_s: float = NAB_WINDOW_S) -> list[list[float]]:
    """``[t, t + window_s]`` right of each true change point, overlaps cut from the later window
    (its start moved to the earlier one's end), as SKAB's ``single_detecting_boundaries`` does
    with ``anomaly_window_destination="righter"``, ``intersection_mode="cut right window"``."""
    if not window_s > 0:
        raise ValueError("window_s must be > 0")
    windows = [[float(t), float(t) + window_s] for t in np.asarray(ts, dtype=np.float64)[np.asarray(true_cp, bool)]]
    for i in range(len(windows) - 1):
        if windows[i][1] >= windows[i + 1][0]:
            windows[i + 1][0] = windows[i][1]
    return windows


def nab_window_score(t1: float, detected: float, t2: float, a_tp: float, a_fp: float) -> float:
    """SKAB's "improved" scaled sigmoid (``my_scale``, koef 1, 1000 points) at a detection in ``[t1, t2]``."""
    x = np.linspace(-np.pi / 2, np.pi / 2, _SCALE_POINTS)
    y = (a_tp - a_fp) / 2 * -1 * np.tanh(1 * x) / (np.tanh(np.pi * 1 / 2)) + (a_tp - a_fp) / 2 + a_fp
    event = min(int((detected - t1) / (t2 - t1) * _SCALE_POINTS), _SCALE_POINTS - 1)
    return float(y[event])


def nab_file_matrix(ts: np.ndarray, true_cp: np.ndarray, pred_cp: np.ndarray,
                    window_s: float = NAB_WINDOW_S) -> np.ndarray:
    """[[raw], [null], [perfect]] x [standard, low FP, low FN] scores of one file (SKAB's
    ``single_evaluate_nab`` on ``extract_cp_confusion_matrix``)."""
    ts = np.asarray(ts, dtype=np.float64)
    windows = nab_windows(ts, true_cp, window_s)
    detected = ts[np.asarray(pred_cp, dtype=bool)]
    first_in_window: list[tuple[float, float, float]] = []
    if windows:
        false_positives = int(np.sum(detected < windows[0][0]))
        for i, (t1, t2) in enumerate(windows):
            inside = detected[(detected >= t1) & (detected <= t2)]
            if inside.size:
                first_in_window.append((t1, float(inside[0]), t2))
            upper = windows[i + 1][0] if i + 1 < len(windows) else np.inf
            false_positives += int(np.sum((detected > t2) & (detected < upper)))
    else:
        false_positives = int(detected.size)
    missed = len(windows) - len(first_in_window)
    matrix = np.zeros((3, 3))
    for j, (a_tp, a_fp, a_fn) in enumerate(PROFILES.values()):
        score = 0
        score += a_fp * false_positives
        score += a_fn * missed
        for t1, t_d, t2 in first_in_window:
            score += nab_window_score(t1, t_d, t2, a_tp, a_fp)
        matrix[:, j] = score, len(windows) * a_fn, len(windows) * a_tp
    return matrix


def nab_scores(files: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], window_s: float = NAB_WINDOW_S) -> dict:
    """NAB standard / low FP / low FN over ``(ts, true_cp, pred_cp)`` per file: the files' raw,
    null and perfect scores summed, then ``100 (S - null) / (perfect - null)``, rounded to 2."""
    matrix = np.zeros((3, 3))
    for ts, true_cp, pred_cp in files:
        matrix = matrix + nab_file_matrix(ts, true_cp, pred_cp, window_s)
    result = {}
    for j, profile in enumerate(PROFILES):
        span = matrix[2, j] - matrix[1, j]
        result[f"nab_{profile}"] = round(float(100 * (matrix[0, j] - matrix[1, j]) / span), 2) if span else float("nan")
    return result


# --- the benchmark ---------------------------------------------------------------------------------

def _folder(name: str) -> str:
    return name.split("/")[0] if "/" in name else "."


def _figures(runs: list[tuple[Experiment, Detection]], fit_rows: int, window_s: float) -> dict:
    trues = [e.anomaly[fit_rows:] for e, _ in runs]
    preds = [d.outlier[fit_rows:] for _, d in runs]
    binary = binary_metrics(trues, preds)
    nab = nab_scores([(e.ts[fit_rows:], e.changepoint[fit_rows:], d.changepoints[fit_rows:]) for e, d in runs],
                     window_s)
    return {"outlier": {"f1": round(binary["f1"], 4), "far_pct": round(binary["far_pct"], 2),
                        "mar_pct": round(binary["mar_pct"], 2)},
            "changepoint": nab}


def evaluate(directory: str | Path, detect: Detect = default_detect, fit_rows: int = FIT_ROWS,
             window_s: float = NAB_WINDOW_S, check_causal: bool = False) -> dict:
    """Run ``detect`` on every SKAB file under ``directory`` and score the test parts (see the module)."""
    started = time.perf_counter()
    labelled, free = load(directory)
    loaded = time.perf_counter()
    runs = []
    violations = 0
    for e in labelled:
        if len(e.ts) <= fit_rows:
            raise ValueError(f"{e.name}: {len(e.ts)} rows, no test part after {fit_rows} fitting rows")
        runs.append((e, _checked(detect(e.ts, e.values, fit_rows), len(e.ts), e.name)))
        if check_causal:
            cuts = (fit_rows, fit_rows + (len(e.ts) - fit_rows) // 2)
            violations += causality_violations(detect, e.ts, e.values, fit_rows, cuts)
    free_far = None
    if free:
        flagged = rows = 0
        for e in free:
            d = _checked(detect(e.ts, e.values, fit_rows), len(e.ts), e.name)
            flagged += int(np.sum(d.outlier[fit_rows:]))
            rows += max(len(e.ts) - fit_rows, 0)
        free_far = round(100 * flagged / rows, 2) if rows else None
    detected = time.perf_counter()
    report = {**_figures(runs, fit_rows, window_s),
              "published": PUBLISHED,
              "files": len(runs),
              "test_rows": int(sum(len(e.ts) - fit_rows for e, _ in runs)),
              "anomaly_free_far_pct": free_far,
              "detector": f"{getattr(detect, '__module__', '?')}.{getattr(detect, '__qualname__', repr(detect))}",
              "by_folder": {folder: _figures([r for r in runs if _folder(r[0].name) == folder], fit_rows, window_s)
                            for folder in sorted({_folder(e.name) for e in labelled})}}
    if check_causal:
        report["causality_violations"] = violations
    report["seconds"] = round(time.perf_counter() - started, 2)
    report["seconds_detecting"] = round(detected - loaded, 2)
    return report


def sensitivity(directory: str | Path, alert_scores: Sequence[float] = (0.3, 0.4, 0.5, 0.6, 0.7)) -> list[dict]:
    """The default detector's figures at other alert levels (calm level 0.6 times the alert level),
    all else at its defaults: how much the result depends on that one threshold, for information; the
    headline figures are those at the documented default."""
    from dataclasses import replace

    from streams.detectors.traffic.anomaly_score import TrafficAnomalyScore

    rows = []
    for alert in alert_scores:
        t = replace(TrafficAnomalyScore.Thresholds(), alert_score=alert, calm_score=round(0.6 * alert, 3))
        report = evaluate(directory, lambda ts, values, fit_rows, t=t: default_detect(ts, values, fit_rows, t))
        rows.append({"alert_score": alert, "calm_score": t.calm_score, **report["outlier"], **report["changepoint"],
                     "anomaly_free_far_pct": report["anomaly_free_far_pct"]})
    return rows


def format_sensitivity(rows: list[dict]) -> str:
    lines = [f"{'alert/calm score':18} {'F1':>5} {'FAR %':>7} {'MAR %':>7} {'NAB std':>8} {'low FP':>7} {'low FN':>7}"
             f" {'anomaly-free FAR %':>19}"]
    for r in rows:
        lines.append(f"{r['alert_score']:.2f} / {r['calm_score']:<11.2f} {r['f1']:>5.2f} {r['far_pct']:>7.2f} "
                     f"{r['mar_pct']:>7.2f} {r['nab_standard']:>8.2f} {r['nab_low_fp']:>7.2f} {r['nab_low_fn']:>7.2f}"
                     f" {r['anomaly_free_far_pct']:>19.2f}")
    return "\n".join(lines)


def format_tables(report: dict, label: str = "glasscity (streaming)") -> str:
    """Our row next to the published rows: the outlier table and the changepoint table."""
    out = report["outlier"]
    cp = report["changepoint"]
    lines = [f"{'outlier problem':28} {'F1':>6} {'FAR %':>7} {'MAR %':>7}",
             f"{label:28} {out['f1']:>6.2f} {out['far_pct']:>7.2f} {out['mar_pct']:>7.2f}"]
    lines += [f"{name:28} {row['f1']:>6.2f} {row['far_pct']:>7.2f} {row['mar_pct']:>7.2f}"
              for name, row in PUBLISHED["outlier"].items()]
    lines += ["", f"{'changepoint problem':28} {'NAB standard':>12} {'NAB low FP':>11} {'NAB low FN':>11}",
              f"{label:28} {cp['nab_standard']:>12.2f} {cp['nab_low_fp']:>11.2f} {cp['nab_low_fn']:>11.2f}"]
    lines += [f"{name:28} {row['nab_standard']:>12.2f} {row['nab_low_fp']:>11.2f} {row['nab_low_fn']:>11.2f}"
              for name, row in PUBLISHED["changepoint"].items()]
    return "\n".join(lines)


def summary_line(report: dict) -> str:
    free = report["anomaly_free_far_pct"]
    return (f"SKAB test set: {report['files']} files, {report['test_rows']} test rows, {report['seconds']} s "
            f"({report['seconds_detecting']} s detecting); anomaly-free run FAR "
            f"{'-' if free is None else f'{free:.2f} %'}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", nargs="?", default=os.environ.get("GLASSCITY_SKAB_DIR", ""),
                        help="the SKAB data folder (valve1/, valve2/, other/, anomaly-free/); env GLASSCITY_SKAB_DIR")
    parser.add_argument("--check-causal", action="store_true",
                        help="also check that the detector's labels on a prefix of each file equal its labels on "
                             "the whole file (cuts at the end of the fitting rows and mid test part)")
    args = parser.parse_args(argv)
    if not args.dir:
        parser.error("name the SKAB data folder (argument or GLASSCITY_SKAB_DIR)")
    report = evaluate(args.dir, check_causal=args.check_causal)
    print(summary_line(report))
    if "causality_violations" in report:
        print(f"rows labelled differently on prefixes (0 for a streaming detector): {report['causality_violations']}")
    print(format_tables(report))
    print("\nby folder:")
    for folder, row in report["by_folder"].items():
        o, c = row["outlier"], row["changepoint"]
        print(f"  {folder:10} F1 {o['f1']:.2f} FAR {o['far_pct']:6.2f} % MAR {o['mar_pct']:6.2f} %   NAB "
              f"{c['nab_standard']:6.2f} / {c['nab_low_fp']:6.2f} / {c['nab_low_fn']:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
