"""Event-only detectors fold a batch in one call after its sweeps: the same alerts as folding them at every
sweep step with the others (where their readings were cut between the sweeps)."""

import zlib

import pytest

from streams.config import settings_from
from streams.domains import DOMAINS
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from streams.pseudonym import Pseudonymizer

SETTINGS = settings_from(environ={}, pseudonym_key="k" * 28)
START = 1_790_000_000.0 - 1_790_000_000.0 % 3600


def _alerts(domain, messages, end, batch_size, per_step: bool):
    pipeline = DomainPipeline(domain, SETTINGS, Pseudonymizer(b"k" * 28), clock=lambda: end + 3600)
    if per_step:
        pipeline._event_only = set()      # every detector folded at every sweep step, as before
    found = []
    for i in range(0, len(messages), batch_size):
        found += [(a.event["id"], a.event["data"]["state"], a.event["time"])
                  for a in pipeline.process(messages[i:i + batch_size]).alerts]
    return sorted(found)


#: the domains whose pipeline has event-only detectors (traffic's read the tracker's state)
WITH_EVENT_ONLY = [name for name, domain in sorted(DOMAINS.items())
                   if DomainPipeline(domain, SETTINGS, Pseudonymizer(b"k" * 28))._event_only]


def test_the_flow_detectors_are_event_only():
    pipeline = DomainPipeline(DOMAINS["water"], SETTINGS, Pseudonymizer(b"k" * 28))
    names = {pipeline.detectors[i].declaration.name for i in pipeline._event_only}
    assert {"water.burst", "water.backflow", "water.device_alarm"} <= names
    assert not names & {"water.no_use_24h", "water.meter_silent", "feed.gateway_outage", "water.night_flow"}
    assert len(WITH_EVENT_ONLY) >= 3


@pytest.mark.parametrize("name", WITH_EVENT_ONLY)
def test_event_only_detectors_fold_a_batch_at_once_with_the_same_alerts(name):
    domain = DOMAINS[name]
    simulation = domain.simulate(days=3.0, seed=4, start=START)
    offsets, messages = [0, 0, 0], []
    for _when, step in simulation.steps():
        for key, value in step:
            p = zlib.crc32(key or b"") % 3
            messages.append(RawMessage(value, "r", p, offsets[p], key))
            offsets[p] += 1
    for batch_size in (29, 3000):
        batched = _alerts(domain, messages, simulation.end, batch_size, per_step=False)
        assert len(batched) > 10
        assert batched == _alerts(domain, messages, simulation.end, batch_size, per_step=True)
