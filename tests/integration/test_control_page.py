"""The control room's page, served by a real worker on the real broker, in headless Chromium.

One simulated city (all four domains) goes through the broker and a worker that serves the page.
Chromium (Debian's, driven by playwright) loads it and the test checks what it draws against the
page's own JSON state: open alerts, the plan's markers and sensors, the feed; that a new alert appears
without a reload; that a welfare alert appears only after signing in with the welfare role's token;
and that the worker's /metrics carries the KPIs the page shows. A screenshot is saved with the test's
files (and copied into ``GLASSCITY_TEST_SCREENSHOTS`` when that folder is given).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
import urllib.request

import orjson
import pytest

from streams.alerts import alert_event
from streams.broker import free_port, stop_process
from streams.demo import metric_sum, read_metrics, start_worker, wait_until_consumed
from streams.detectors import REGISTRY
from streams.detectors.base import Transition
from streams.domains import DOMAINS
from streams.simulate.produce import produce
from tests.support.apt import ensure_binary
from tests.support.records import produce_records

START = 1_790_000_000.0 - 1_790_000_000.0 % 86400
TOKEN = "welfare-role-token-for-the-page-test"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _state(port: int, cookie: str | None = None, view: str = "general") -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/state" + ("?view=welfare" if view == "welfare" else ""),
                                     headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return orjson.loads(response.read())


def _publish(settings, topic: str, event: dict) -> None:
    produce_records(settings, [(topic, orjson.dumps(event))], key=event["subject"].encode())


def _fresh_alert(detector: str, subject: str) -> dict:
    now = time.time()
    return alert_event(Transition(detector, subject, "raised", now - 600, now), REGISTRY[detector].declaration)


@pytest.fixture(scope="module")
def chromium():
    return ensure_binary("chromium", "chromium", path="/usr/bin/chromium")


def test_live_page_in_chromium(broker_settings, tmp_path, chromium):
    from playwright.sync_api import sync_playwright

    settings = dataclasses.replace(broker_settings, page=True, page_host="127.0.0.1", page_port=free_port())
    simulations = [DOMAINS["water"].simulate(days=2.0, seed=7, start=START, households=150),
                   DOMAINS["traffic"].simulate(days=2.0, seed=7, start=START),
                   DOMAINS["waste"].simulate(days=2.0, seed=7, start=START),
                   DOMAINS["lighting"].simulate(days=2.0, seed=7, start=START, lamps=80, cabinets=8)]
    worker = start_worker(settings, tmp_path / "worker.log", extra_env={"GLASSCITY_WELFARE_TOKEN": TOKEN})
    try:
        produce(simulations, settings)
        samples = wait_until_consumed(worker, settings.metrics_port, sum(s.valid_readings for s in simulations),
                                      sum(len(s.malformed) for s in simulations), timeout_s=120)
        port = settings.page_port
        deadline = time.monotonic() + 30
        state = _state(port)
        while time.monotonic() < deadline and (state["open"]["total"] == 0 or not state["plan"]["sensors"]):
            time.sleep(1.0)
            state = _state(port)
        assert state["open"]["total"] > 0, state
        assert set(state["plan"]["sensors"]) == {"traffic", "waste", "lighting", "gateways"} and state["plan"]["cells"]
        assert state["kpi"]["lighting"]["saving"] is not None and 0.0 < state["kpi"]["lighting"]["saving"] < 1.0
        assert "no_use_24h" not in orjson.dumps(state).decode()

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                errors = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_selector("body[data-updated]", timeout=20_000)
                page.wait_for_selector("#connection.live", timeout=10_000)
                shot = tmp_path / "control-room.png"
                page.screenshot(path=str(shot))
                if os.environ.get("GLASSCITY_TEST_SCREENSHOTS"):
                    shutil.copy(shot, os.path.join(os.environ["GLASSCITY_TEST_SCREENSHOTS"], shot.name))
                assert shot.stat().st_size > 20_000      # a drawn page, not a blank one

                shown = _state(port)
                assert page.text_content("#kpi-open") == str(shown["open"]["total"])
                assert page.locator("svg#plan circle.alert-marker").count() == len(shown["plan"]["markers"])
                assert page.locator("svg#plan g.cell-alert").count() == len(shown["plan"]["cell_alerts"])
                assert page.locator("svg#plan .sensors circle").count() == sum(
                    len(points) for points in shown["plan"]["sensors"].values())
                assert page.locator("#feed tbody tr").count() == min(30, len(shown["feed"]))
                saving = page.text_content("#kpi-saving")
                assert saving == f"{100 * shown['kpi']['lighting']['saving']:.1f} %"
                assert "no_use_24h" not in page.content()

                # live: a new alert appears at the top of the feed without a reload
                page.evaluate("window.notReloaded = true")
                subject = "urn:ngsi-ld:TrafficFlowObserved:LIVE-TEST-1"
                _publish(settings, "alerts.v1", _fresh_alert("traffic.stuck", subject))
                page.wait_for_function(
                    "s => document.querySelector('#feed tbody tr td:nth-child(6)')?.textContent === s", arg=subject,
                    timeout=15_000)
                assert page.evaluate("window.notReloaded") is True
                # a welfare alert never reaches the general page...
                _publish(settings, "alerts.welfare.v1", _fresh_alert("water.no_use_24h", "wm-welfare-live-test"))
                first_update = page.evaluate("document.body.dataset.updated")
                changed = "u => document.body.dataset.updated !== u"
                page.wait_for_function(changed, arg=first_update, timeout=10_000)
                page.wait_for_function(changed, arg=page.evaluate("document.body.dataset.updated"), timeout=10_000)
                assert "wm-welfare-live-test" not in page.content()

                # ... and appears to the welfare role, once signed in with its token
                welfare = browser.new_page(viewport={"width": 1400, "height": 1000})
                welfare.goto(f"http://127.0.0.1:{port}/welfare")
                welfare.fill("input[name=token]", "not-the-token")
                welfare.click("button[type=submit]")
                assert "not the welfare role" in welfare.content()
                welfare.fill("input[name=token]", TOKEN)
                welfare.click("button[type=submit]")
                welfare.wait_for_selector("body[data-view=welfare][data-updated]", timeout=20_000)
                assert welfare.text_content("#view-badge") == "welfare view"
                welfare.wait_for_function("s => document.querySelector('#feed').textContent.includes(s)",
                                          arg="wm-welfare-live-test", timeout=15_000)
                welfare.screenshot(path=str(tmp_path / "control-room-welfare.png"))
                session = {c["name"]: c["value"] for c in welfare.context.cookies()}["glasscity_welfare"]
                assert not errors, errors
            finally:
                browser.close()

        # the KPIs the page shows are metrics too: open alerts (welfare ones included: counts only),
        # one intervention delay per cleared episode, the lighting energy
        time.sleep(2.5)                       # one refresh of the gauge
        metrics = read_metrics(settings.metrics_port)
        with_welfare = _state(port, cookie=f"glasscity_welfare={session}", view="welfare")
        assert with_welfare["open"]["total"] > _state(port)["open"]["total"]
        assert metric_sum(metrics, "glasscity_alerts_open") == with_welfare["open"]["total"]
        cleared = metric_sum(samples, "glasscity_alerts_total", state="cleared")
        assert cleared > 0 and metric_sum(metrics, "glasscity_alert_intervention_delay_seconds_count") == cleared
        used = metric_sum(metrics, "glasscity_lighting_energy_joules_total", kind="used")
        full = metric_sum(metrics, "glasscity_lighting_energy_joules_total", kind="full_power_night")
        assert 0 < used < full and 1 - used / full == pytest.approx(with_welfare["kpi"]["lighting"]["saving"])
    except BaseException:
        print((tmp_path / "worker.log").read_text(errors="replace")[-5000:])
        raise
    finally:
        stop_process(worker, grace_s=10.0)
