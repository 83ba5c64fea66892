"""Every alert the detectors emit is valid against schemas/alert.schema.json.

Two checks: the schema's closed lists (subject kinds, domains) are exactly what the
registered detectors declare, so a detector with a new kind fails here until the
schema follows; and a whole simulated city (every domain, default scenarios, every
detector fires) runs through the one pipeline with every emitted event validated.
"""

import re
import zlib
from collections import Counter
from datetime import datetime

import pytest
from jsonschema import Draft7Validator, FormatChecker

import schemas
from streams.config import settings_from
from streams.detectors import REGISTRY, WATCHERS
from streams.domains import DOMAINS
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from streams.pseudonym import Pseudonymizer
from tests.conftest import TEST_KEY

ALERT_SCHEMA = schemas.load("alert")
DATA = ALERT_SCHEMA["properties"]["data"]["properties"]
START = 1_790_000_000.0 - 1_790_000_000.0 % 3600   # a city-hour boundary, as the demo's city clock
PARTITIONS = 4
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _format_checker() -> FormatChecker:
    """Draft-07 formats, date-time included.

    jsonschema checks date-time only when the optional rfc3339-validator package is
    installed and skips it silently otherwise; this checker always checks it.
    """
    checker = FormatChecker(Draft7Validator.FORMAT_CHECKER.checkers)

    @checker.checks("date-time", raises=ValueError)
    def date_time(value) -> bool:
        if not isinstance(value, str):
            return True   # format applies to strings only; type is checked elsewhere
        if not RFC3339.match(value):
            raise ValueError(f"{value!r} is not an RFC 3339 date-time")
        datetime.fromisoformat(value)   # raises ValueError for e.g. month 13
        return True

    return checker


VALIDATOR = Draft7Validator(ALERT_SCHEMA, format_checker=_format_checker())


def test_subject_kinds_are_exactly_the_declared_ones():
    declared = {cls.declaration.subject_kind for cls in REGISTRY.values()}
    declared |= {watcher.declaration_for("water").subject_kind for watcher in WATCHERS.values()}
    assert set(DATA["subjectKind"]["enum"]) == declared


def test_domains_are_exactly_the_declared_ones():
    declared = {cls.declaration.domain for cls in REGISTRY.values()}
    assert set(DATA["domain"]["enum"]) == declared == set(DOMAINS)


def test_the_checker_checks_date_times():
    # otherwise the whole-city test below would not check time/episodeStart at all
    example = {"specversion": "1.0", "id": "0" * 32, "source": "s", "type": "city.glasscity.alert.raised",
               "subject": "x", "time": "2026-11-28T06:05:00Z", "datacontenttype": "application/json",
               "data": {"detector": "water.burst", "domain": "water", "state": "raised", "severity": "info",
                        "subjectKind": "water_meter", "episodeId": "0" * 32,
                        "episodeStart": "2026-11-28T06:05:00Z", "description": "d"}}
    assert VALIDATOR.is_valid(example)
    for bad in ("2026-11-28 06:05:00", "2026-13-28T06:05:00Z", "yesterday"):
        assert not VALIDATOR.is_valid({**example, "time": bad}), bad


@pytest.fixture(scope="module")
def city_alerts() -> list[dict]:
    """Every alert event of a 3-city-day run of every domain (the demo's length: every detector fires)."""
    settings = settings_from(environ={}, pseudonym_key=TEST_KEY)
    events = []
    for domain in DOMAINS.values():
        simulation = domain.simulate(days=3.0, seed=42, start=START)
        pipeline = DomainPipeline(domain, settings, Pseudonymizer(TEST_KEY.encode()),
                                  clock=lambda: simulation.end + 3600)
        offsets = [0] * PARTITIONS
        for _when, step in simulation.steps():
            batch = []
            for key, value in step:
                partition = zlib.crc32(key) % PARTITIONS
                batch.append(RawMessage(value, domain.topic("readings"), partition, offsets[partition], key))
                offsets[partition] += 1
            events += [alert.event for alert in pipeline.process(batch).alerts]
    return events


def test_every_emitted_alert_of_a_whole_city_validates(city_alerts):
    by_domain = Counter(event["data"]["domain"] for event in city_alerts)
    assert set(by_domain) == set(DOMAINS), by_domain   # not vacuous: every domain raised something
    invalid = []
    for event in city_alerts:
        errors = sorted(VALIDATOR.iter_errors(event), key=lambda e: list(e.path))
        if errors:
            invalid.append((event["data"]["detector"], [f"{list(e.path)}: {e.message}" for e in errors]))
    assert invalid == []


def test_the_city_run_reaches_every_active_detector_and_subject_kind(city_alerts):
    active = {name for name, cls in REGISTRY.items() if cls.declaration.status == "active"}
    assert {event["data"]["detector"] for event in city_alerts} == active
    # feed.stalled runs on the worker's wall clock, not in the pipeline: its alerts are checked
    # against the schema in tests/streams/detectors/test_feed_stalled.py
    assert {event["data"]["subjectKind"] for event in city_alerts} == set(DATA["subjectKind"]["enum"]) - {"feed"}
