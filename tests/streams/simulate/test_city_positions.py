"""The synthetic city's plan: every simulated sensor has a stable position inside the city, the same for a seed."""

import math

import numpy as np
import orjson
import pytest

from streams.domains import DOMAINS
from streams.simulate import city

START = 1_790_000_000.0 - 1_790_000_000.0 % 3600


def located(domain_name: str, seed: int, days: float = 3.0):
    """Per subject id the set of locations its readings carried, per gateway its envelopes' locations,
    and the subjects seen without one."""
    simulation = DOMAINS[domain_name].simulate(days=days, seed=seed, start=START)
    subjects, gateways, missing = {}, {}, set()
    for _when, step in simulation.steps():
        for _key, value in step:
            try:
                document = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue                                  # the simulator's malformed items
            if not isinstance(document, dict):
                continue
            if document.get("type") == "ReadingBatch":
                if "location" in document:
                    gateways.setdefault(document["gatewayId"], set()).add(tuple(document["location"]["coordinates"]))
                readings = document.get("readings", [])
            else:
                readings = [document]
            for reading in readings:
                if not isinstance(reading, dict) or "BAD" in str(reading.get("id", "")):
                    continue
                if "location" in reading:
                    subjects.setdefault(reading["id"], set()).add(tuple(reading["location"]["coordinates"]))
                else:
                    missing.add(reading.get("id"))
    return subjects, gateways, missing


@pytest.fixture(scope="module", params=sorted(DOMAINS))
def runs(request):
    return request.param, located(request.param, 3), located(request.param, 3), located(request.param, 4)


def test_every_sensor_and_gateway_has_one_stable_position_inside_the_city(runs):
    name, (subjects, gateways, _missing), _again, _other = runs
    assert len(subjects) > 50 and gateways
    west, south, east, north = city.BOUNDS
    for where in (subjects, gateways):
        for key, places in where.items():
            assert len(places) == 1, (name, key, places)     # stable over the run
            (lon, lat), = places
            assert west <= lon <= east and south <= lat <= north, (name, key)
            assert round(lon, 6) == lon and round(lat, 6) == lat
    # a plan, not one dot: the sensors spread over kilometres
    lons = np.array([next(iter(p))[0] for p in subjects.values()])
    lats = np.array([next(iter(p))[1] for p in subjects.values()])
    assert (lats.max() - lats.min()) * 111_320 > 1000 and len(set(zip(lons, lats))) > 0.9 * len(subjects)


def test_positions_are_the_same_for_a_seed_and_differ_for_another(runs):
    name, first, again, other = runs
    assert first[0] == again[0] and first[1] == again[1]
    # another seed draws another layout (the avenues are the city's: traffic differs by its controllers only)
    assert (first[0], first[1]) != (other[0], other[1])
    if name != "traffic":
        assert first[0] != other[0]


def test_simulated_readings_carry_no_malformed_location(runs):
    name, (subjects, _gateways, missing), _again, _other = runs
    assert not (missing - {None}) - set(subjects), name      # every valid sensor reports its position


def test_traffic_detectors_stand_along_their_segment_in_order():
    simulation = DOMAINS["traffic"].simulate(days=3.0, seed=3, start=START)
    lon, lat = simulation.detector_positions
    per = simulation.scenario.detectors_per_segment
    for g in range(simulation.scenario.segments):
        a = slice(g * per, (g + 1) * per)
        east = np.diff(lon[a]) * 111_320 * math.cos(math.radians(city.CENTRE[1]))
        north = np.diff(lat[a]) * 111_320
        steps = np.hypot(east, north)
        # one straight road, detectors SPACING_M apart (0.1 m of rounding)
        assert np.allclose(steps, steps[0], atol=0.5) and steps[0] > 100
        assert (np.abs(east) < 0.5).all() or (np.abs(north) < 0.5).all()


def test_water_meters_stand_near_their_gateway_in_their_district():
    simulation = DOMAINS["water"].simulate(days=3.0, seed=3, start=START)
    meter_lon, meter_lat = simulation.meter_positions
    gateway_lon, gateway_lat = simulation.gateway_positions
    gateway_of_meter = np.repeat(np.arange(simulation.n_gateways), np.diff(simulation._gw_bounds))
    north = (meter_lat - gateway_lat[gateway_of_meter]) * 111_320
    east = (meter_lon - gateway_lon[gateway_of_meter]) * 111_320 * math.cos(math.radians(city.CENTRE[1]))
    assert np.abs(north).max() <= 301 and np.abs(east).max() <= 301
