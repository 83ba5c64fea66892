"""Where the sensors are: the pipeline's positions snapshot, keyed as alerts are, households snapped to the grid."""

import math

import numpy as np
import orjson
import pytest

from streams.domains import DOMAINS
from streams.ingest import RawMessage
from streams.pipeline import DomainPipeline
from streams.pipeline.positions import (
    METRES_PER_DEGREE_LATITUDE, PERSONAL_POSITION_CELL_M, PartitionPositions, snap_to_cell,
)
from streams.pseudonym import Pseudonymizer
from tests.conftest import TEST_KEY

NOW = 1_800_000_000.0
HOUR = 3600.0


def iso(ts: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def point(longitude, latitude) -> dict:
    return {"type": "Point", "coordinates": [longitude, latitude]}


def water(meter: str, ts: float, location=None, index: float = 100.0) -> dict:
    reading = {"id": meter, "type": "WaterConsumptionObserved", "dateObserved": iso(ts), "waterConsumption": index}
    return reading if location is None else {**reading, "location": location}


def traffic(detector: str, ts: float, location=None) -> dict:
    reading = {"id": detector, "type": "TrafficFlowObserved", "dateObserved": iso(ts), "refRoadSegment": "rs-1",
               "intensity": 10, "occupancy": 0.1}
    return reading if location is None else {**reading, "location": location}


def messages(documents, partition: int = 0, first_offset: int = 0) -> list[RawMessage]:
    return [RawMessage(orjson.dumps(d), "readings", partition, first_offset + i, b"k")
            for i, d in enumerate(documents)]


def pipeline_for(name: str, settings) -> DomainPipeline:
    return DomainPipeline(DOMAINS[name], settings, Pseudonymizer(TEST_KEY.encode()), clock=lambda: NOW)


def test_water_positions_are_keyed_by_pseudonym_and_snapped(settings):
    pipeline = pipeline_for("water", settings)
    t = NOW - 10 * HOUR
    exact = {"urn:ngsi-ld:WaterMeter:A": (5.041702, 47.321918), "urn:ngsi-ld:WaterMeter:B": (5.043391, 47.318204)}
    pipeline.process(messages([water(m, t, point(*p)) for m, p in exact.items()]
                              + [water("urn:ngsi-ld:WaterMeter:C", t)]))
    positions = pipeline.subject_positions()
    pseudonyms = dict(zip(exact, Pseudonymizer(TEST_KEY.encode()).many("wm", list(exact))))
    assert set(positions) == set(pseudonyms.values())          # C gave no location; no raw id anywhere
    assert not any(key.startswith("urn:") for key in positions)
    for meter, (lon, lat) in exact.items():
        snapped = positions[pseudonyms[meter]]
        assert snapped != (lon, lat)
        assert snapped == tuple(float(x[()]) for x in snap_to_cell(lon, lat))
        # within half a cell's diagonal of the meter, and the same for every meter of its cell
        north_m = (snapped[1] - lat) * METRES_PER_DEGREE_LATITUDE
        east_m = (snapped[0] - lon) * METRES_PER_DEGREE_LATITUDE * math.cos(math.radians(lat))
        assert math.hypot(north_m, east_m) <= PERSONAL_POSITION_CELL_M * math.sqrt(2) / 2 + 1.0


def test_other_domains_keep_exact_positions_by_their_own_id(settings):
    pipeline = pipeline_for("traffic", settings)
    t = NOW - HOUR
    pipeline.process(messages([traffic("td-1", t, point(5.045871, 47.32)), traffic("td-2", t, point(-0.0, 0.0)),
                               traffic("td-3", t)]))
    assert pipeline.subject_positions() == {"td-1": (5.045871, 47.32), "td-2": (-0.0, 0.0)}


def test_the_latest_reading_by_event_time_wins_and_a_silent_location_keeps_the_last(settings):
    pipeline = pipeline_for("traffic", settings)
    t = NOW - 5 * HOUR
    # within one batch out of order, then an older one late, then one without a location
    pipeline.process(messages([traffic("td", t + 600, point(5.0, 47.0)), traffic("td", t, point(6.0, 48.0)),
                               traffic("td", t + 300, point(7.0, 49.0))]))
    assert pipeline.subject_positions() == {"td": (5.0, 47.0)}
    pipeline.process(messages([traffic("td", t + 60, point(8.0, 50.0))], first_offset=3))
    assert pipeline.subject_positions() == {"td": (5.0, 47.0)}
    pipeline.process(messages([traffic("td", t + 900)], first_offset=4))
    assert pipeline.subject_positions() == {"td": (5.0, 47.0)}
    pipeline.process(messages([traffic("td", t + 1200, point(5.5, 47.5))], first_offset=5))
    assert pipeline.subject_positions() == {"td": (5.5, 47.5)}


def test_gateway_positions_come_from_envelopes_exact(settings):
    pipeline = pipeline_for("water", settings)
    t = NOW - HOUR
    envelope = {"type": "ReadingBatch", "gatewayId": "gw-7", "location": point(5.042181, 47.322517),
                "readings": [water("urn:ngsi-ld:WaterMeter:A", t)]}
    pipeline.process(messages([envelope, {**envelope, "gatewayId": "gw-8", "location": point(5.05, 47.33)},
                               {k: v for k, v in envelope.items() if k != "location"} | {"gatewayId": "gw-9"}]))
    assert pipeline.gateway_positions() == {"gw-7": (5.042181, 47.322517), "gw-8": (5.05, 47.33)}
    assert pipeline.subject_positions() == {}


def test_positions_are_per_owned_partition_and_not_in_the_changelog(settings):
    pipeline = pipeline_for("traffic", settings)
    t = NOW - HOUR
    pipeline.process(messages([traffic("td-a", t, point(5.0, 47.0))], partition=0)
                     + messages([traffic("td-b", t, point(5.1, 47.1))], partition=1))
    assert pipeline.subject_positions() == {"td-a": (5.0, 47.0), "td-b": (5.1, 47.1)}
    records = pipeline.changelog()
    assert records and not any(b"5.1" in value or b"47.1" in value for _p, _k, value in records)
    snapshot = pipeline.revoke(1)
    assert pipeline.subject_positions() == {"td-a": (5.0, 47.0)}
    pipeline.adopt(1, snapshot)      # state comes back, its positions with the next reading
    assert pipeline.subject_positions() == {"td-a": (5.0, 47.0)}
    pipeline.process(messages([traffic("td-b", t + 300, point(5.2, 47.2))], partition=1, first_offset=1))
    assert pipeline.subject_positions() == {"td-a": (5.0, 47.0), "td-b": (5.2, 47.2)}


def test_a_reading_off_the_globe_gives_no_position(settings):
    pipeline = pipeline_for("traffic", settings)
    result = pipeline.process(messages([traffic("td", NOW - HOUR, point(5.0, 91.0))]))
    assert [d.reason for d in result.dead_letters] == ["value_out_of_range"]
    assert pipeline.subject_positions() == {}


# --- the grid ---------------------------------------------------------------------------------------------

def test_snapping_gives_one_centre_per_cell_about_the_cell_size_apart():
    rng = np.random.default_rng(5)
    lat = 47.32 + rng.uniform(-0.05, 0.05, 20_000)
    lon = 5.04 + rng.uniform(-0.07, 0.07, 20_000)
    snapped_lon, snapped_lat = snap_to_cell(lon, lat)
    again = snap_to_cell(snapped_lon, snapped_lat)       # a centre is in its own cell
    np.testing.assert_array_equal(again[0], snapped_lon)
    np.testing.assert_array_equal(again[1], snapped_lat)
    north_m = (snapped_lat - lat) * METRES_PER_DEGREE_LATITUDE
    east_m = (snapped_lon - lon) * METRES_PER_DEGREE_LATITUDE * np.cos(np.radians(lat))
    half = PERSONAL_POSITION_CELL_M / 2
    assert np.abs(north_m).max() <= half + 0.1 and np.abs(east_m).max() <= half + 1.0
    assert np.abs(north_m).max() > 0.9 * half          # coarse indeed: not a rounding to metres
    rows = np.unique(snapped_lat)
    assert np.allclose(np.diff(rows) * METRES_PER_DEGREE_LATITUDE, PERSONAL_POSITION_CELL_M, atol=0.2)
    cells = len({(a, b) for a, b in zip(snapped_lon.tolist(), snapped_lat.tolist())})
    area_m2 = (0.1 * METRES_PER_DEGREE_LATITUDE) * (0.14 * METRES_PER_DEGREE_LATITUDE * math.cos(math.radians(47.32)))
    assert 0.9 < cells * PERSONAL_POSITION_CELL_M ** 2 / area_m2 < 1.15


@pytest.mark.parametrize("lon, lat", [(180.0, 90.0), (-180.0, -90.0), (179.9999, 89.9999), (0.0, 0.0),
                                      (-0.0001, -0.0001)])
def test_snapping_stays_on_the_globe(lon, lat):
    snapped_lon, snapped_lat = snap_to_cell(lon, lat)
    assert -180 <= snapped_lon <= 180 and -90 <= snapped_lat <= 90
    assert np.isnan(snap_to_cell(math.nan, math.nan)[0])


def test_partition_positions_grow_with_the_slots():
    positions = PartitionPositions(capacity=2)
    slots = np.array([0, 70, 3], dtype=np.int32)
    positions.update(slots, np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, np.nan]), np.array([4.0, 5.0, np.nan]))
    keys = [f"s{i}" for i in range(80)]
    assert positions.known(keys) == {"s0": (1.0, 4.0), "s70": (2.0, 5.0)}
