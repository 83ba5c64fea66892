"""Every labelled series of streams.metrics exists at zero before the first event, for label values taken
from the code's own enumerations; per-partition series follow the assignment; build info is 1.

The metrics are found by introspecting the prometheus-client registry after importing streams.metrics,
so a metric added later is checked without editing this file.
"""

import itertools
import platform

import pytest
from prometheus_client import REGISTRY as PROMETHEUS
from prometheus_client.metrics import MetricWrapperBase

from streams import metrics
from streams.alerts import ALERT_TYPES
from streams.consent import REGISTER_TOPICS
from streams.control.book import AGE_BANDS
from streams.detectors import CONFIGURABLE
from streams.detectors.feed.stalled import declaration_for
from streams.domains import DOMAINS
from streams.ingest.dead_letter import REASONS, stage_of
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from streams.pseudonym import Pseudonymizer
from tests.conftest import TEST_KEY

ALL_DOMAINS = list(DOMAINS)
#: Small scenarios of each domain's simulator (every kind of incident still injected).
SMALL = {"water": dict(households=200, days=2.0), "traffic": dict(segments=20, days=2.0),
         "waste": dict(bins=60, days=3.0), "lighting": dict(lamps=40, cabinets=4, days=2.0)}
#: Labels whose values are known only at run time (the assignment), checked by their own test.
RUNTIME_LABELS = {"partition"}
#: Labels saying what runs, not what happened (the build-info gauge, value 1).
BUILD_LABELS = {"version", "python", "numba"}


def _glasscity_metrics() -> list[MetricWrapperBase]:
    """Every metric object of streams.metrics that the default registry holds."""
    registered = set(PROMETHEUS._collector_to_names)
    return [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase) and m in registered]


def _detectors(domain) -> list[str]:
    return [cls.declaration.name for cls in domain.detectors] + [declaration_for(domain.name).name]


def _values(metric, label: str, domain=None) -> list[str]:
    """The values a label takes, from the code's enumerations (``domain``: the series' domain label)."""
    if label == "domain":
        return ALL_DOMAINS
    if label == "reason":       # late readings are counted apart (glasscity_late_readings_total)
        return [r for r in REASONS if stage_of(r) != "watermark"]
    if label == "detector":
        return _detectors(DOMAINS[domain]) if domain else sorted(CONFIGURABLE)
    if label == "state":
        return list(ALERT_TYPES)
    if label == "kind":
        return list({metrics.PUBLISH_FAILURES: metrics.PUBLISH_KINDS,
                     metrics.LIGHTING_ENERGY: metrics.LIGHTING_ENERGY_KINDS}[metric])
    if label == "stage":
        return list(metrics.PROCESSING_STAGES)
    if label == "register":
        return list(REGISTER_TOPICS)
    if label == "age":
        return [band for _bound, band in AGE_BANDS]
    if label == "kernel":
        return None     # which kernels a domain times is checked by running the pipelines (below)
    raise AssertionError(f"{metric._name}: no enumeration known for label {label!r}")


def _expected(metric) -> set[tuple[str, ...]]:
    names = metric._labelnames
    if "domain" not in names:
        return set(itertools.product(*(_values(metric, label) for label in names)))
    expected = set()
    for domain in ALL_DOMAINS:
        rest = [[domain] if label == "domain" else _values(metric, label, domain) for label in names]
        expected |= set(itertools.product(*rest))
    return expected


def _series(metric) -> dict[tuple[str, ...], list[float]]:
    """Label values -> the sample values of that child (one for a counter or gauge, the buckets, count
    and sum for a histogram)."""
    found = {}
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            key = tuple(sample.labels[name] for name in metric._labelnames)
            found.setdefault(key, []).append(sample.value)
    return found


def _sample(metric, suffix: str, *labels: str) -> float:
    """The value of one sample (``suffix``: "_count", "_sum", "" ...) of the child with ``labels``."""
    for family in metric.collect():
        for sample in family.samples:
            if sample.name == family.name + suffix and tuple(sample.labels[n] for n in metric._labelnames) == labels:
                return sample.value
    raise KeyError((metric._name, suffix, labels))


@pytest.fixture
def fresh():
    """The labelled metrics emptied, then initialised for every domain as the worker does."""
    for metric in _glasscity_metrics():
        if metric._labelnames and not set(metric._labelnames) & BUILD_LABELS:
            metric.clear()
    metrics.init_series(ALL_DOMAINS)
    yield


def test_every_labelled_series_exists_at_zero_for_its_known_label_values(fresh):
    checked = []
    for metric in _glasscity_metrics():
        names = set(metric._labelnames)
        if not names or names & (RUNTIME_LABELS | BUILD_LABELS) or "kernel" in names:
            continue
        series = _series(metric)
        expected = _expected(metric)
        assert expected, metric._name
        missing = expected - set(series)
        assert not missing, f"{metric._name}: not initialised for {sorted(missing)[:5]}"
        assert set(series) == expected, f"{metric._name}: unknown label values {sorted(set(series) - expected)[:5]}"
        nonzero = {k: v for k, v in series.items() if any(v)}
        assert not nonzero, f"{metric._name}: not at 0: {list(nonzero.items())[:3]}"
        checked.append(metric._name)
    # the ones this change is about are among those checked
    for name in ("glasscity_processing_errors", "glasscity_batch_size_readings", "glasscity_produce_to_alert_seconds",
                 "glasscity_invalid", "glasscity_alerts", "glasscity_alerts_open"):
        assert name in checked, name


def test_running_every_domain_creates_no_series_that_was_not_initialised(fresh, settings):
    """What the pipelines emit (kernels, detectors, reasons...) on each domain's simulation and on bad
    input is all there before: no label value the code produces is missing from init_series."""
    before = {m: set(_series(m)) for m in _glasscity_metrics() if not set(m._labelnames) & RUNTIME_LABELS}
    kernels_before = before[metrics.KERNEL_SECONDS]
    assert kernels_before
    for name, domain in DOMAINS.items():
        simulation = domain.simulate(seed=3, **SMALL[name])
        pipeline = DomainPipeline(domain, settings, Pseudonymizer(TEST_KEY.encode()), clock=lambda: simulation.end)
        topic = settings.topic(domain.topic("readings"))
        messages = [RawMessage(value, topic, 0, i, key)
                    for i, (key, value) in enumerate(kv for _when, step in simulation.steps() for kv in step)]
        messages.append(RawMessage(b"{not json", topic, 0, len(messages), b"k"))
        for i in range(0, len(messages), 2000):
            pipeline.record(pipeline.process(messages[i:i + 2000]))
        assert _sample(metrics.BATCH_SIZE, "_count", name) > 0
    after = {m: set(_series(m)) for m in before}
    grown = {m._name: sorted(after[m] - before[m]) for m in before if after[m] - before[m]}
    assert not grown, f"series created on first use, not initialised: {grown}"
    # and the kernels did run: their observations landed on the initialised series
    assert sum(_sample(metrics.KERNEL_SECONDS, "_count", *k) > 0 for k in kernels_before) >= len(DOMAINS)


def test_per_partition_series_follow_the_assignment(fresh):
    metrics.partitions_assigned("water", {0, 1, 2})
    assert set(_series(metrics.CONSUMER_LAG)) >= {("water", "0"), ("water", "1"), ("water", "2")}
    assert _series(metrics.PARTITION_WATERMARK_LAG)[("water", "1")] == [0.0]
    assert _sample(metrics.PARTITIONS_ASSIGNED, "", "water") == 3
    metrics.consumer_lag("water", 1, end_offset=120, position=100)
    metrics.consumer_lag("water", 2, end_offset=90, position=100)     # an end offset behind the position: 0
    metrics.consumer_lag("water", 0, end_offset=None, position=100)   # unknown: left as it was
    lags = _series(metrics.CONSUMER_LAG)
    assert (lags[("water", "0")], lags[("water", "1")], lags[("water", "2")]) == ([0.0], [20.0], [0.0])
    metrics.partitions_assigned("water", {1, 3})        # 0 and 2 went to another worker
    lags = _series(metrics.CONSUMER_LAG)
    assert {k for k in lags if k[0] == "water"} == {("water", "1"), ("water", "3")}
    assert ("water", "0") not in _series(metrics.PARTITION_WATERMARK_LAG)
    assert lags[("water", "1")] == [20.0]            # a kept partition keeps its lag
    assert _sample(metrics.PARTITIONS_ASSIGNED, "", "water") == 2
    metrics.partitions_assigned("water", set())


def test_the_pipeline_sets_each_partitions_watermark_lag(fresh, settings):
    domain = DOMAINS["water"]
    simulation = domain.simulate(households=200, days=2.0, seed=5)
    now = simulation.end + 7200.0
    pipeline = DomainPipeline(domain, settings, Pseudonymizer(TEST_KEY.encode()), clock=lambda: now)
    topic = settings.topic(domain.topic("readings"))
    messages = [RawMessage(value, topic, i % 2, i // 2, key)
                for i, (key, value) in enumerate(kv for _when, step in simulation.steps() for kv in step)]
    pipeline.record(pipeline.process(messages))
    lags = _series(metrics.PARTITION_WATERMARK_LAG)
    for partition in (0, 1):
        expected = now - pipeline.states[partition].watermark
        assert lags[("water", str(partition))] == [pytest.approx(expected)]
        assert expected >= 7200.0
    assert _sample(metrics.WATERMARK_LAG, "", "water") == pytest.approx(min(lags[("water", "0")][0],
                                                                                    lags[("water", "1")][0]))


def test_build_info_is_one_and_names_what_runs():
    series = _series(metrics.BUILD_INFO)
    assert len(series) == 1
    (version, python, numba), = series
    assert series[(version, python, numba)] == [1.0]
    assert python == platform.python_version()
    from importlib.metadata import version as installed

    assert version == installed("glasscity") and numba == installed("numba")
