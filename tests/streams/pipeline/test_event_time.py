"""Event time at the edges: readings later than the allowed lateness, UTC offsets, daylight saving."""

from __future__ import annotations

import zlib
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import orjson

from streams.domains import DOMAINS
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from streams.pseudonym import Pseudonymizer
from tests.conftest import TEST_KEY

PARTITIONS = 4
#: 2026-10-24T00:00Z: Europe/Paris leaves summer time on 2026-10-25 at 01:00 UTC (03:00 -> 02:00 local).
AROUND_DST = 1_792_800_000.0 - 1_792_800_000.0 % 86400


def feed(simulation, rewrite=lambda value: value):
    offsets = [0] * PARTITIONS
    batches = []
    for _when, step in simulation.steps():
        batch = []
        for key, value in step:
            p = zlib.crc32(key) % PARTITIONS
            batch.append(RawMessage(rewrite(value), "r", p, offsets[p], key))
            offsets[p] += 1
        batches.append(batch)
    return batches


def renumbered(batches):
    """Offsets in delivery order per partition, as a broker assigns them."""
    offsets = [0] * PARTITIONS
    out = []
    for batch in batches:
        out.append([])
        for m in batch:
            out[-1].append(m._replace(offset=offsets[m.partition]))
            offsets[m.partition] += 1
    return out


def run(settings, domain, simulation, batches):
    pipeline = DomainPipeline(domain, settings, Pseudonymizer(TEST_KEY.encode()), clock=lambda: simulation.end + 3600)
    alerts, late, readings = [], [], 0
    for batch in batches:
        result = pipeline.process(batch)
        alerts += [a.event for a in result.alerts]
        late += result.late
        readings += result.readings
    return alerts, late, readings


def to_local(value: bytes, zone=ZoneInfo("Europe/Paris")) -> bytes:
    """The same message with every dateObserved in local time with its UTC offset."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value

    def local(reading):
        if isinstance(reading, dict) and isinstance(reading.get("dateObserved"), str):
            try:
                moment = datetime.fromisoformat(reading["dateObserved"])
            except ValueError:
                return
            if moment.tzinfo is not None:
                reading["dateObserved"] = moment.astimezone(zone).isoformat()

    if isinstance(document, dict) and isinstance(document.get("readings"), list):
        for reading in document["readings"]:
            local(reading)
    else:
        local(document)
    return orjson.dumps(document)


def test_local_times_across_a_daylight_saving_change_give_the_same_alerts(settings):
    domain = DOMAINS["water"]
    simulation = domain.simulate(days=3.0, seed=4, start=AROUND_DST)
    utc_alerts, _late, utc_readings = run(settings, domain, simulation, feed(simulation))
    local_batches = feed(simulation, to_local)
    sample = orjson.loads(next(m.value for b in local_batches for m in b if b'"readings"' in m.value))
    offsets = {r["dateObserved"][-6:] for b in local_batches for m in b if b'"readings"' in m.value
               for r in orjson.loads(m.value)["readings"]}
    assert {"+02:00", "+01:00"} <= offsets, offsets           # both sides of the change are in the feed
    assert not sample["readings"][0]["dateObserved"].endswith("Z")
    local_alerts, _late, local_readings = run(settings, domain, simulation, local_batches)
    assert local_readings == utc_readings == simulation.valid_readings
    assert utc_alerts and local_alerts == utc_alerts


def test_a_reading_later_than_the_lateness_is_folded_in_counted_and_copied(settings):
    domain = DOMAINS["water"]
    simulation = domain.simulate(days=3.0, seed=4, start=AROUND_DST)
    batches = feed(simulation)
    clean_alerts, clean_late, _ = run(settings, domain, simulation, batches)
    assert clean_late == []
    # a message of hour 10 delivered again with hour 40: long after the watermark passed it
    straggler = next(m for m in batches[10] if b'"readings"' in m.value)
    batches[40].append(straggler)
    batches = renumbered(batches)
    straggler = batches[40][-1]
    alerts, late, _ = run(settings, domain, simulation, batches)
    envelope = orjson.loads(straggler.value)
    assert len(late) == len(envelope["readings"])
    # copied with the pseudonym in place of the meter id: no raw household id past ingress
    pseudonyms = Pseudonymizer(settings.require_pseudonym_key())
    assert {orjson.loads(d.value)["id"] for d in late} == {pseudonyms.meter(r["id"]) for r in envelope["readings"]}
    assert {orjson.loads(d.value)["dateObserved"] for d in late} == {r["dateObserved"] for r in envelope["readings"]}
    assert {d.kafka_record()[0] for d in late} == {pseudonyms.meter(r["id"]).encode() for r in envelope["readings"]}
    headers = dict(late[0].kafka_record()[2])
    assert headers["reason"] == b"late" and headers["stage"] == b"watermark"
    assert int(headers["source_offset"]) == straggler.offset
    assert alerts == clean_alerts          # a redelivered old reading changes nothing
    assert datetime.fromtimestamp(AROUND_DST, timezone.utc).isoformat().startswith("2026-10-24")


def test_a_late_household_reading_keeps_only_what_the_detectors_use(settings):
    domain = DOMAINS["water"]
    pipeline = DomainPipeline(domain, settings, Pseudonymizer(settings.require_pseudonym_key()),
                              clock=lambda: 1_790_100_000.0)
    def reading(hour, **extra):
        return orjson.dumps({"id": "meter-123", "type": "WaterConsumptionObserved", "gatewayId": "gw-1",
                             "dateObserved": f"2026-09-20T{hour:02d}:00:00Z", "waterConsumption": 1.0 + hour,
                             **extra})
    pipeline.process([RawMessage(reading(h), "w", 0, h, b"gw-1") for h in range(5, 12)])
    late = pipeline.process([RawMessage(reading(1, address={"streetAddress": "Main St 1"},
                                        refDevice="urn:ngsi-ld:Device:meter-123"), "w", 0, 20, b"meter-123")]).late
    assert len(late) == 1
    key, value, _headers = late[0].kafka_record()
    assert b"meter-123" not in key + value and b"Main St" not in value
    copy = orjson.loads(value)
    assert copy["waterConsumption"] == 2.0 and copy["gatewayId"] == "gw-1" and copy["id"].startswith("wm-")
