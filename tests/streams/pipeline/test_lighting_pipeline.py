"""The lighting pipeline in-process (no broker): the default scenario's quality, exact alerts,
batching invariance and dead letters."""

import pytest

from streams.detectors import REGISTRY
from streams.domains import DOMAINS
from streams.evaluation import expected_alerts, summarise
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from streams.pseudonym import Pseudonymizer
from tests.conftest import TEST_KEY

LIGHTING = DOMAINS["lighting"]
PARTITIONS = 4
WINTER = 1_767_225_600.0   # 2026-01-01T00:00:00Z: long nights
SUMMER = 1_781_913_600.0   # 2026-06-20T00:00:00Z: short nights


@pytest.fixture(scope="module", params=[WINTER, SUMMER], ids=["winter", "summer"])
def simulation(request):
    return LIGHTING.simulate(start=request.param)   # the default scenario: 360 lamps, 20 cabinets, 3 days


@pytest.fixture(scope="module")
def winter():
    return LIGHTING.simulate(start=WINTER)


def feed(simulation):
    offsets = [0] * PARTITIONS
    messages = []
    for _when, step in simulation.steps():
        for key, value in step:
            partition = int(key.rsplit(b"C", 1)[-1]) % PARTITIONS   # partition by control cabinet
            messages.append(RawMessage(value, "glasscity.lighting.readings.v1", partition, offsets[partition], key))
            offsets[partition] += 1
    return messages


def run(settings, simulation, messages, batch_size):
    pipeline = DomainPipeline(LIGHTING, settings, Pseudonymizer(TEST_KEY.encode()),
                              clock=lambda: simulation.end + 3600)
    alerts, dead = [], []
    for i in range(0, len(messages), batch_size):
        result = pipeline.process(messages[i:i + batch_size])
        alerts += result.alerts
        dead += result.dead_letters
    return alerts, dead


def test_default_scenario_quality_per_detector(settings, simulation):
    alerts, dead = run(settings, simulation, feed(simulation), 1000)
    detectors = {name: cls() for name, cls in REGISTRY.items()}
    summaries = summarise([a.event for a in alerts], [(LIGHTING, simulation.incidents)], detectors, REGISTRY,
                          Pseudonymizer(TEST_KEY.encode()))
    assert {s.detector for s in summaries} == {c.declaration.name for c in LIGHTING.detectors}
    for s in summaries:
        assert s.injected >= 4, s.detector
        assert s.precision >= 0.95 and s.recall >= 0.98, (s.detector, s.precision, s.recall)
        assert s.false_alerts == 0 and s.cleared == s.expected_cleared, s
    assert len(dead) == len(simulation.malformed)


def test_exactly_the_expected_alerts_whatever_the_batching(settings, winter):
    simulation = winter
    messages = feed(simulation)
    expected = expected_alerts(LIGHTING, simulation.incidents, REGISTRY, Pseudonymizer(TEST_KEY.encode()))
    reference = None
    for batch_size in (len(messages), 97):
        alerts, dead = run(settings, simulation, messages, batch_size)
        got = [(a.event["data"]["detector"], a.event["subject"], a.event["data"]["state"]) for a in alerts]
        assert len(got) == len(set(got)), "an episode was raised or cleared twice"
        assert set(got) == expected
        events = sorted((a.event["id"], a.event["time"]) for a in alerts)
        assert reference is None or events == reference
        reference = events
        assert {d.reason for d in dead} <= {"invalid_json", "non_finite", "schema", "timestamp_invalid",
                                            "timestamp_out_of_range", "value_out_of_range"}
    for alert in alerts:
        assert alert.topic == "alerts.v1" and alert.key == alert.event["subject"].encode()
        subject = alert.event["subject"]
        # lamps; a control cabinet only for lighting.silent (a cabinet meter that stops reporting)
        assert subject.startswith("urn:ngsi-ld:Streetlight:") or (
            subject.startswith("urn:ngsi-ld:StreetlightControlCabinet:")
            and alert.event["data"]["detector"] == "lighting.silent")


# --- the energy KPI ------------------------------------------------------------------------------

def _lamp_rows(simulation):
    """The simulation's lamp and cabinet readings as the naive energy reference takes them, in feed order."""
    from datetime import datetime

    import orjson

    rows = []
    for _when, step in simulation.steps():
        for _key, value in step:
            message = orjson.loads(value)
            for r in message["readings"] if message.get("type") == "ReadingBatch" else [message]:
                rows.append(dict(lamp=r["id"], ts=datetime.fromisoformat(r["dateObserved"]).timestamp(),
                                 kind="lamp" if r["type"] == "Streetlight" else "cabinet",
                                 power=r.get("powerConsumption"), rating=r.get("powerRating")))
    return rows


def _energy(settings, simulation, batch_size):
    pipeline = DomainPipeline(LIGHTING, settings, Pseudonymizer(TEST_KEY.encode()),
                              clock=lambda: simulation.end + 3600)
    totals = {}
    messages = feed(simulation)
    for i in range(0, len(messages), batch_size):
        for label, joules in pipeline.process(messages[i:i + batch_size]).kpi.items():
            totals[label] = totals.get(label, 0.0) + joules
    return totals


@pytest.mark.parametrize("start", [WINTER, SUMMER], ids=["winter", "summer"])
def test_energy_kpi_matches_the_naive_reference_and_the_dimming_schedule(settings, start):
    import numpy as np

    import kernels
    from tests import naive

    simulation = LIGHTING.simulate(start=start, days=2.0, lamps=40, cabinets=4, malformed=0, lamp_failure=0,
                                   day_burner=0, power_out_of_range=0, cycling=0, silent=2)
    totals = _energy(settings, simulation, 1000)
    assert _energy(settings, simulation, 37) == pytest.approx(totals, rel=1e-9)   # batching changes nothing
    sc = simulation.scenario
    rows = _lamp_rows(simulation)
    used, full = naive.lighting_energy(rows, sc.latitude, sc.longitude, step=10.0)
    assert totals["used"] == pytest.approx(used, rel=1e-9)
    assert totals["full_power_night"] == pytest.approx(full, rel=1e-3)
    # with no faulty lamps, the simulated lamps burn at rated power at night and dim to dim_level from
    # 23:00 to 05:00 local: the saving is the dimmed share of the night times (1 - dim_level), give or
    # take the photocells' few minutes at dusk and dawn and the 8% power noise
    hours = np.arange(simulation.start, simulation.end, 60.0)
    night = kernels.night_seconds(hours, hours + 60.0, sc.latitude, sc.longitude)
    local_hour = ((hours / 3600.0 + sc.utc_offset_h) % 24.0)
    dimmed = (local_hour >= sc.dim_from_h) | (local_hour < sc.dim_to_h)
    nominal = night[dimmed].sum() / night.sum() * (1.0 - sc.dim_level)
    saving = 1.0 - totals["used"] / totals["full_power_night"]
    assert saving == pytest.approx(nominal, abs=0.03), (saving, nominal)
