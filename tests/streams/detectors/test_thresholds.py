"""Thresholds: one documented place, overridable from a file, with clear errors."""

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
