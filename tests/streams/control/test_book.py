"""AlertBook: open episodes, idempotent folding, intervention delays, age bands; AlertFilter."""

from __future__ import annotations

import pytest

from streams.alerts import alert_event, iso_time
from streams.control.book import AGE_BANDS, AlertBook, AlertFilter, MalformedAlert, age_band
from streams.detectors import REGISTRY
from streams.detectors.base import Transition

T0 = 1_780_000_000.0


def event(detector: str, subject: str, state: str, start: float, at: float) -> dict:
    return alert_event(Transition(detector, subject, state, start, at), REGISTRY[detector].declaration)


def test_raise_then_clear_gives_the_delay_and_closes_the_episode():
    book = AlertBook()
    raised = book.fold(event("water.burst", "wm-a", "raised", T0, T0 + 600), topic="t.alerts.v1")
    assert raised.alert is not None and raised.delay_s is None and not raised.duplicate
    assert [a.subject for a in book.open_alerts()] == ["wm-a"]
    assert book.open_alerts()[0].topic == "t.alerts.v1"
    cleared = book.fold(event("water.burst", "wm-a", "cleared", T0, T0 + 600 + 5400))
    assert cleared.delay_s == pytest.approx(5400.0)
    assert cleared.alert.raised_s == T0 + 600
    assert book.open_alerts() == [] and len(book) == 0


def test_folding_is_idempotent_under_redelivery():
    book = AlertBook()
    first = event("traffic.stuck", "det-1", "raised", T0, T0 + 60)
    clear = event("traffic.stuck", "det-1", "cleared", T0, T0 + 120)
    assert not book.fold(first).duplicate
    assert book.fold(first).duplicate
    assert len(book) == 1
    assert book.fold(clear).delay_s == pytest.approx(60.0)
    again = book.fold(clear)
    assert again.duplicate and again.delay_s is None
    late_raise = book.fold(first)            # an at-least-once re-delivery after the clear
    assert late_raise.duplicate and len(book) == 0


def test_a_clear_without_its_raise_has_no_delay():
    book = AlertBook()
    folded = book.fold(event("waste.overflow", "bin-9", "cleared", T0, T0 + 100))
    assert folded.alert is None and folded.delay_s is None and not folded.duplicate


def test_episodes_of_one_subject_are_kept_apart():
    book = AlertBook()
    book.fold(event("water.burst", "wm-a", "raised", T0, T0 + 10))
    book.fold(event("water.burst", "wm-a", "raised", T0 + 1000, T0 + 1010))
    book.fold(event("water.night_flow", "wm-a", "raised", T0, T0 + 20))
    assert len(book) == 3
    book.fold(event("water.burst", "wm-a", "cleared", T0, T0 + 50))
    assert sorted((a.detector, a.episode_start_s) for a in book.open_alerts()) == [
        ("water.burst", T0 + 1000), ("water.night_flow", T0)]


@pytest.mark.parametrize("age_s, band", [(-5.0, "0-1h"), (0.0, "0-1h"), (3599.9, "0-1h"), (3600.0, "1-6h"),
                                         (86399.0, "6-24h"), (86400.0, "1-7d"), (7 * 86400.0, "7d+"),
                                         (1e9, "7d+")])
def test_age_bands(age_s, band):
    assert age_band(age_s) == band


def test_open_counts_fill_every_band_of_every_domain():
    book = AlertBook()
    book.fold(event("water.burst", "wm-a", "raised", T0, T0))
    book.fold(event("water.burst", "wm-b", "raised", T0, T0 + 7200))
    book.fold(event("traffic.stuck", "det-1", "raised", T0, T0 + 9000))
    counts = book.open_counts(T0 + 9000, domains=("water", "traffic", "waste"))
    assert len(counts) == 3 * len(AGE_BANDS)
    assert counts[("water", "1-6h")] == 1          # wm-a, 2.5 h old
    assert counts[("water", "0-1h")] == 1          # wm-b, 0.5 h old
    assert counts[("traffic", "0-1h")] == 1
    assert sum(counts.values()) == 3 and counts[("waste", "7d+")] == 0


def test_the_clock_follows_the_feed_when_it_is_far_behind_the_wall():
    book = AlertBook()
    assert book.clock(wall_s=T0) == T0
    book.fold(event("water.burst", "wm-a", "raised", T0, T0 + 30))
    assert book.clock(wall_s=T0 + 60) == T0 + 60                 # live: the wall clock
    assert book.clock(wall_s=T0 + 10 * 86400) == T0 + 30         # a simulated city days ago: its own clock


def test_filter_criteria():
    burst = event("water.burst", "wm-a", "raised", T0, T0 + 30)
    stuck = event("traffic.stuck", "det-1", "cleared", T0, T0 + 90)
    assert AlertFilter().matches(burst) and AlertFilter().matches(stuck)
    assert AlertFilter.of(domains=["water"]).matches(burst) and not AlertFilter.of(domains=["water"]).matches(stuck)
    assert AlertFilter.of(detectors=["water.*"]).matches(burst)
    assert not AlertFilter.of(detectors=["water.*"]).matches(stuck)
    assert AlertFilter.of(states=["cleared"]).matches(stuck) and not AlertFilter.of(states=["cleared"]).matches(burst)
    severity = burst["data"]["severity"]
    assert AlertFilter.of(severities=[severity]).matches(burst)
    assert AlertFilter.of(subjects=["det-*"]).matches(stuck) and not AlertFilter.of(subjects=["det-*"]).matches(burst)
    assert AlertFilter.of(since_s=T0 + 60).matches(stuck) and not AlertFilter.of(since_s=T0 + 60).matches(burst)
    book = AlertBook()
    book.fold(burst)
    assert book.open_alerts(AlertFilter.of(domains=["traffic"])) == []
    assert len(book.open_alerts(AlertFilter.of(detectors=["water.burst"], since_s=T0))) == 1


@pytest.mark.parametrize("broken, why", [
    (lambda e: e.pop("data"), "data object"),
    (lambda e: e["data"].pop("episodeId"), "episodeId"),
    (lambda e: e.__setitem__("time", "yesterday"), "unreadable time"),
    (lambda e: e["data"].__setitem__("state", "exploded"), "unknown state"),
])
def test_malformed_events_are_refused_with_the_reason(broken, why):
    bad = event("water.burst", "wm-a", "raised", T0, T0 + 30)
    broken(bad)
    book = AlertBook()
    with pytest.raises(MalformedAlert, match=why):
        book.fold(bad)
    assert len(book) == 0


def test_iso_round_trip_of_times():
    folded = AlertBook().fold(event("water.burst", "wm-a", "raised", T0, T0 + 30))
    assert iso_time(folded.alert.raised_s) == iso_time(T0 + 30)
