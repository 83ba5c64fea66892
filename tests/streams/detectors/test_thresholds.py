"""Thresholds: one documented place, overridable from a file, with clear errors."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from streams.config import SettingsError
from streams.detectors import CONFIGURABLE, REGISTRY
from streams.detectors.thresholds import load_thresholds, thresholds_document

DOC = Path(__file__).resolve().parents[3] / "docs" / "thresholds.md"


def test_the_committed_page_is_what_the_code_generates():
    assert DOC.read_text() == thresholds_document(CONFIGURABLE), \
        "docs/thresholds.md is stale: regenerate with `glasscity thresholds > docs/thresholds.md`"


def test_command_prints_the_page():
    result = subprocess.run([sys.executable, "-m", "streams", "thresholds"], capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0 and result.stdout == thresholds_document(CONFIGURABLE)
    for name in REGISTRY:
        assert f"`{name}`" in result.stdout


def test_overrides_apply_and_defaults_stay(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"water.no_use_24h": {"no_use_after_s": 43200}}))
    thresholds = load_thresholds(str(path), REGISTRY)
    assert thresholds["water.no_use_24h"].no_use_after_s == 43200.0
    assert thresholds["water.meter_silent"] == REGISTRY["water.meter_silent"].Thresholds()


@pytest.mark.parametrize("content, message", [
    ({"water.nope": {}}, "unknown detectors: water.nope"),
    ({"water.no_use_24h": {"after": 1}}, "has no threshold after"),
    ({"water.no_use_24h": {"no_use_after_s": "12h"}}, "must be a number"),
    ({"water.meter_silent": {"gap_margin": -1}}, r"water.meter_silent.gap_margin must be >= 0 \(x\), got -1"),
    ({"traffic.silent": {"gap_ceiling_s": 0}}, r"traffic.silent.gap_ceiling_s must be > 0 \(s\), got 0"),
    ({"water.meter_silent": {"missed_reports": -1}}, r"water.meter_silent.missed_reports must be >= 0"),
    ({"water.burst": {"nominal_share": float("inf")}}, r"water.burst.nominal_share must be a finite number"),
    ({"lighting.silent": {"silent_after_s": float("inf")}}, r"silent_after_s must be a finite number > 0"),
    ({"traffic.anomaly_score": {"alert_score": 1.5}}, r"alert_score must be >= 0, <= 1 \(score 0-1\), got 1.5"),
    ({"waste.overflow": {"raise_at": -0.1}}, r"waste.overflow.raise_at must be >= 0, <= 1"),
    ({"lighting.cycling": {"latitude_deg": 91}}, r"latitude_deg must be >= -90, <= 90 \(deg N\), got 91"),
    ({"water.no_use_24h": {"no_use_after_s": -3600}}, r"no_use_after_s must be > 0 \(s\), got -3600"),
    ({"water.night_flow": {"night_start_s": float("nan")}}, r"night_start_s must be a finite number >= 0, <= 86399"),
    ([1, 2], "must hold a JSON object"),
])
def test_bad_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(content))
    with pytest.raises(SettingsError, match=message):
        load_thresholds(str(path), REGISTRY)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SettingsError, match="cannot read thresholds file"):
        load_thresholds(str(tmp_path / "none.json"), REGISTRY)


def test_every_threshold_declares_a_lower_bound_and_its_default_is_in_range():
    """A thresholds file is range-checked field by field, so every field must carry its range."""
    for name, cls in REGISTRY.items():
        for f in dataclasses.fields(cls.Thresholds):
            minimum, above, maximum = (f.metadata.get(k) for k in ("minimum", "above", "maximum"))
            assert minimum is not None or above is not None, f"{name}.{f.name} has no lower bound"
            assert (minimum is None or f.default >= minimum) and (above is None or f.default > above) \
                and (maximum is None or f.default <= maximum), f"{name}.{f.name} default outside its range"


def test_a_threshold_without_a_lower_bound_is_refused_at_definition():
    from streams.detectors.base import threshold

    with pytest.raises(TypeError, match="needs a lower bound"):
        threshold(1.0, "s", "no range given")
