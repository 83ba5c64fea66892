"""The HTML register in a real browser: headless Chromium (Debian's ``chromium``) renders it, every
active and dormant detector is in the rendered DOM with its status badge, and a screenshot shows a page."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone

import numpy as np
import pytest

from streams.audit import append
from streams.register import build_register, render_html
from tests.streams.test_register import DORMANT, cards, dormant_class, make_settings, with_dormant
from tests.support.apt import ensure_binary
from tests.support.png import read_png

ACTIVATED = "water.test_activated"


@pytest.fixture(scope="module")
def chromium():
    return ensure_binary("chromium", "chromium", path="/usr/bin/chromium")


def _chromium(binary, tmp_path, *args) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


@pytest.fixture
def page(tmp_path):
    """The register with every real detector, one dormant and one dormant-but-activated test detector."""
    log = tmp_path / "audit.jsonl"
    append(log, "activate", ACTIVATED, "Head of water services", "council decision 2026-14",
           now=datetime(2026, 1, 31, 8, 0, tzinfo=timezone.utc))
    registry = {**with_dormant(), ACTIVATED: dormant_class(ACTIVATED)}
    register = build_register(make_settings(audit_log=str(log)), registry=registry)
    path = tmp_path / "register.html"
    path.write_text(render_html(register), encoding="utf-8")
    return path, register


def test_every_detector_and_its_status_badge_are_in_the_rendered_dom(chromium, tmp_path, page):
    path, register = page
    result = _chromium(chromium, tmp_path, "--dump-dom", path.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = cards(result.stdout)
    expected = {d["name"]: d["status_code"] for d in register["detectors"]}
    assert expected[DORMANT] == "dormant" and expected[ACTIVATED] == "activated"
    assert set(expected.values()) == {"active", "dormant", "activated"}
    assert dom.cards == expected
    assert dom.badges == expected
    assert "Which algorithms watch the city's data, and why" in result.stdout


def test_the_screenshot_is_a_page_not_a_blank(chromium, tmp_path, page):
    path, _register = page
    shot = tmp_path / "register.png"
    result = _chromium(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,2400", path.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 50_000
    pixels = read_png(shot)[..., :3].astype(np.int64)
    assert pixels.shape[:2] == (2400, 1280)
    assert tuple(pixels[5, 5]) == (0xF6, 0xF6, 0xF3)                     # the page background, as styled
    grey = pixels.mean(axis=2)
    assert grey.std() > 15                                                 # not one colour
    dark = grey < 90                                                       # text
    assert dark.mean() > 0.01
    assert dark[:300].any(axis=1).sum() > 40                               # the heading and intro are at the top
    badge = (np.abs(pixels - (0xDF, 0xF3, 0xE4)).sum(axis=2) < 12)         # the "Runs now" badge's green
    assert badge.sum() > 500
