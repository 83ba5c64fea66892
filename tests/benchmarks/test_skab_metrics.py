"""benchmarks/skab.py: SKAB's binary and NAB metrics on hand-computed cases, and the harness on a
synthetic data folder (the SKAB data itself is not needed)."""

import math

import numpy as np
import pytest

from benchmarks import skab

T0 = 1_600_000_000.0


def scaled(fraction: float, a_tp: float, a_fp: float) -> float:
    """SKAB's scaled sigmoid at a detection ``fraction`` of the way through its window, written
    out by hand: point k = int(1000 fraction) (at most 999) of x = -pi/2 + k pi / 999."""
    k = min(int(fraction * 1000), 999)
    x = -math.pi / 2 + k * math.pi / 999
    return a_tp - (a_tp - a_fp) * (1 + math.tanh(x) / math.tanh(math.pi / 2)) / 2


def flags(n, *rows):
    out = np.zeros(n, dtype=bool)
    out[list(rows)] = True
    return out


def one_file(true_rows, pred_rows, n=300):
    ts = T0 + np.arange(n, dtype=float)
    return ts, flags(n, *true_rows), flags(n, *pred_rows)


def normalised(raw, null, perfect):
    return round(100 * (raw - null) / (perfect - null), 2)


# --- binary -------------------------------------------------------------------------------------------

def test_binary_metrics_on_a_tiny_example():
    true = np.array([0, 0, 1, 1, 1, 0], dtype=bool)
    pred = np.array([0, 1, 1, 0, 1, 0], dtype=bool)
    assert skab.binary_counts(true, pred) == (2, 2, 1, 1)          # TP, TN, FP, FN
    m = skab.binary_metrics([true], [pred])
    assert m["f1"] == pytest.approx(2 / 3)                         # TP / (TP + (FP + FN) / 2)
    assert m["far_pct"] == pytest.approx(100 / 3)                  # FP / (FP + TN)
    assert m["mar_pct"] == pytest.approx(100 / 3)                  # FN / (FN + TP)


def test_binary_metrics_pool_the_counts_over_files():
    m = skab.binary_metrics([np.array([0, 0, 1, 1, 1, 0], bool), np.array([1, 1], bool)],
                            [np.array([0, 1, 1, 0, 1, 0], bool), np.array([0, 0], bool)])
    assert (m["tp"], m["tn"], m["fp"], m["fn"]) == (2, 2, 1, 3)
    assert m["f1"] == pytest.approx(0.5)
    assert m["far_pct"] == pytest.approx(100 / 3)
    assert m["mar_pct"] == pytest.approx(60.0)


def test_binary_metrics_of_perfect_and_null_detectors():
    true = np.array([0, 1, 1, 0, 0, 1], dtype=bool)
    perfect = skab.binary_metrics([true], [true])
    assert (perfect["f1"], perfect["far_pct"], perfect["mar_pct"]) == (1.0, 0.0, 0.0)
    null = skab.binary_metrics([true], [np.zeros(6, bool)])
    assert (null["f1"], null["far_pct"], null["mar_pct"]) == (0.0, 0.0, 100.0)


def test_binary_counts_refuse_mismatched_lengths():
    with pytest.raises(ValueError):
        skab.binary_counts(np.zeros(3, bool), np.zeros(4, bool))


# --- NAB ----------------------------------------------------------------------------------------------

def test_perfect_detector_scores_100_and_null_detector_0_on_every_profile():
    files = [one_file([20, 150], []), one_file([100], []), one_file([5, 80, 200, 290], [])]
    perfect = [(ts, true, true) for ts, true, _ in files]
    null = [(ts, true, np.zeros_like(true)) for ts, true, _ in files]
    assert skab.nab_scores(perfect) == {"nab_standard": 100.0, "nab_low_fp": 100.0, "nab_low_fn": 100.0}
    assert skab.nab_scores(null) == {"nab_standard": 0.0, "nab_low_fp": 0.0, "nab_low_fn": 0.0}


def test_windows_run_60_s_right_of_each_change_point_and_the_later_one_is_cut():
    ts = T0 + np.arange(300, dtype=float)
    assert skab.nab_windows(ts, flags(300, 100, 200)) == [[T0 + 100, T0 + 160], [T0 + 200, T0 + 260]]
    # overlapping: the second window starts where the first ends
    assert skab.nab_windows(ts, flags(300, 100, 120)) == [[T0 + 100, T0 + 160], [T0 + 160, T0 + 180]]
    # the windows are in time, not rows: a 30 s gap after the change point shortens it in rows
    gappy = np.concatenate([T0 + np.arange(10.0), T0 + 40 + np.arange(10.0)])
    assert skab.nab_windows(gappy, flags(20, 5)) == [[T0 + 5, T0 + 65]]


def test_first_detection_in_a_window_counts_later_ones_do_not_outside_ones_are_false_positives():
    # change point at 100 (window [100, 160]); detections at 10 (FP), 100 (on time), 130 (ignored), 200 (FP)
    m = skab.nab_file_matrix(*one_file([100], [10, 100, 130, 200]))
    raw = {"standard": 1 - 2 * 0.11, "low_fp": 1 - 2 * 0.22, "low_fn": 1 - 2 * 0.11}
    np.testing.assert_allclose(m[0], list(raw.values()))
    np.testing.assert_allclose(m[1], [-1, -1, -2])                 # null: A_fn per window
    np.testing.assert_allclose(m[2], [1, 1, 1])                    # perfect: A_tp per window
    scores = skab.nab_scores([one_file([100], [10, 100, 130, 200])])
    assert scores == {"nab_standard": normalised(0.78, -1, 1), "nab_low_fp": normalised(0.56, -1, 1),
                      "nab_low_fn": normalised(0.78, -2, 1)}
    assert scores == {"nab_standard": 89.0, "nab_low_fp": 78.0, "nab_low_fn": 92.67}


@pytest.mark.parametrize("row, fraction", [(100, 0.0), (115, 0.25), (130, 0.5), (159, 59 / 60), (160, 1.0)])
def test_a_late_detection_scores_down_the_scaled_sigmoid(row, fraction):
    m = skab.nab_file_matrix(*one_file([100], [row]))
    for j, (a_tp, a_fp, _a_fn) in enumerate(skab.PROFILES.values()):
        assert m[0, j] == pytest.approx(scaled(fraction, a_tp, a_fp), abs=1e-12)
    assert m[0, 0] == pytest.approx({0.0: 1.0, 1.0: -0.11}.get(fraction, m[0, 0]))   # A_tp on time, A_fp at the end


def test_middle_of_the_window_by_hand():
    # 30 s into a 60 s window: k = 500, x = pi / 1998; standard 1 - 1.11 (1 + tanh(x) / tanh(pi/2)) / 2
    m = skab.nab_file_matrix(*one_file([100], [130]))
    assert m[0, 0] == pytest.approx(0.444049, abs=1e-6)


def test_a_detection_just_after_the_window_is_a_miss_and_a_false_positive():
    m = skab.nab_file_matrix(*one_file([100], [161]))
    np.testing.assert_allclose(m[0], [-0.11 - 1, -0.22 - 1, -0.11 - 2])


def test_close_change_points_share_a_detection_only_at_the_cut():
    # change points 20 s apart: windows [100, 160] and [160, 180]
    # a detection at the second change point (120) is inside the first window: window 2 is missed
    m = skab.nab_file_matrix(*one_file([100, 120], [100, 120]))
    np.testing.assert_allclose(m[0], [1 - 1, 1 - 1, 1 - 2])
    # a detection at 160 is the first in both windows: A_fp in the first, A_tp in the second
    m = skab.nab_file_matrix(*one_file([100, 120], [160]))
    np.testing.assert_allclose(m[0], [-0.11 + 1, -0.22 + 1, -0.11 + 1])


def test_files_without_change_points_count_their_detections_as_false_positives():
    quiet = one_file([], [50, 60])
    m = skab.nab_file_matrix(*quiet)
    np.testing.assert_allclose(m, [[-0.22, -0.44, -0.22], [0, 0, 0], [0, 0, 0]])
    # pooled: (raw 1 - 0.22, null -1, perfect 1) for the standard profile
    assert skab.nab_scores([one_file([100], [100]), quiet])["nab_standard"] == normalised(1 - 0.22, -1, 1)


def test_nab_scores_sum_raw_null_and_perfect_over_files_before_normalising():
    a = one_file([100], [100])                 # standard: raw 1
    b = one_file([50, 200], [])                # standard: raw -2
    assert skab.nab_scores([a, b])["nab_standard"] == normalised(1 - 2, -3, 3)   # 33.33, not the mean of 100 and 0


# --- the harness on synthetic files ------------------------------------------------------------------

HEADER = ["datetime", *skab.CHANNELS, "anomaly", "changepoint"]


def write_csv(path, n, anomaly_rows=(), changepoint_rows=(), labelled=True, start="2020-03-09 10:00:00"):
    base = np.datetime64(start.replace(" ", "T"))
    anomaly = flags(n, *anomaly_rows) if anomaly_rows else np.zeros(n, bool)
    cps = flags(n, *changepoint_rows) if changepoint_rows else np.zeros(n, bool)
    header = HEADER if labelled else HEADER[:-2]
    lines = [";".join(header)]
    for i in range(n):
        when = str(base + np.timedelta64(i, "s")).replace("T", " ")
        channels = [f"{float(anomaly[i]):.1f}"] + [f"{1.0 + 0.01 * (i % 7):.3f}"] * (len(skab.CHANNELS) - 1)
        row = [when, *channels] + ([f"{float(anomaly[i]):.1f}", f"{float(cps[i]):.1f}"] if labelled else [])
        lines.append(";".join(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def channel_zero_detect(ts, values, fit_rows):
    """A causal 'oracle': the synthetic files carry the anomaly label in the first channel."""
    outlier = values[:, 0] > 0.5
    return skab.Detection(outlier, skab.runs_start(outlier))


@pytest.fixture
def data_dir(tmp_path):
    # an anomaly inside the fitting rows (not scored) and one in the test part of each file
    write_csv(tmp_path / "valve1" / "0.csv", 600, anomaly_rows=[*range(50, 60), *range(450, 500)],
              changepoint_rows=[50, 450])
    write_csv(tmp_path / "other" / "1.csv", 500, anomaly_rows=range(420, 440), changepoint_rows=[420])
    write_csv(tmp_path / "anomaly-free" / "anomaly-free.csv", 450, labelled=False)
    return tmp_path


def test_load_reads_labelled_files_and_anomaly_free_runs(data_dir):
    labelled, free = skab.load(data_dir)
    assert [e.name for e in labelled] == ["other/1.csv", "valve1/0.csv"]
    assert [e.name for e in free] == ["anomaly-free/anomaly-free.csv"]
    e = labelled[1]
    assert e.values.shape == (600, 8) and e.values.dtype == np.float64
    assert np.all(np.diff(e.ts) == 1.0)
    assert e.ts[0] == np.datetime64("2020-03-09T07:00:00").astype("datetime64[s]").astype(float)   # Moscow, UTC+3
    assert e.anomaly.sum() == 60 and list(np.flatnonzero(e.changepoint)) == [50, 450]
    assert free[0].anomaly is None


def test_evaluate_scores_only_the_test_parts(data_dir):
    report = skab.evaluate(data_dir, channel_zero_detect)
    assert report["files"] == 2 and report["test_rows"] == 200 + 100
    assert report["outlier"] == {"f1": 1.0, "far_pct": 0.0, "mar_pct": 0.0}
    assert report["changepoint"] == {"nab_standard": 100.0, "nab_low_fp": 100.0, "nab_low_fn": 100.0}
    assert report["anomaly_free_far_pct"] == 0.0
    assert set(report["by_folder"]) == {"other", "valve1"}
    assert report["published"] is skab.PUBLISHED
    assert "Conv-AE" in skab.format_tables(report)


def test_evaluate_with_the_null_detector(data_dir):
    def null(ts, values, fit_rows):
        return skab.Detection(np.zeros(len(ts), bool), np.zeros(len(ts), bool))
    report = skab.evaluate(data_dir, null)
    assert report["outlier"] == {"f1": 0.0, "far_pct": 0.0, "mar_pct": 100.0}
    assert report["changepoint"] == {"nab_standard": 0.0, "nab_low_fp": 0.0, "nab_low_fn": 0.0}


def test_evaluate_refuses_labels_of_the_wrong_length(data_dir):
    def short(ts, values, fit_rows):
        return skab.Detection(np.zeros(len(ts) - 1, bool), np.zeros(len(ts) - 1, bool))
    with pytest.raises(ValueError, match="rows"):
        skab.evaluate(data_dir, short)


def test_causality_check_tells_streaming_from_look_ahead(data_dir):
    e = skab.load(data_dir)[0][1]
    assert skab.causality_violations(channel_zero_detect, e.ts, e.values, 400, (400, 470)) == 0

    def look_ahead(ts, values, fit_rows):       # flags the row before an anomalous one: it reads the next row
        outlier = np.append(values[1:, 0] > 0.5, False)
        return skab.Detection(outlier, skab.runs_start(outlier))
    assert skab.causality_violations(look_ahead, e.ts, e.values, 400, (400, 470)) > 0


def test_runs_start_marks_the_first_row_of_each_run():
    assert list(skab.runs_start(np.array([1, 1, 0, 1, 0, 0, 1, 1], bool))) == [1, 0, 0, 1, 0, 0, 1, 0]
