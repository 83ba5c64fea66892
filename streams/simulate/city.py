"""The synthetic city's plan: where every simulated sensor stands, so a page can draw a recognisable city.

One city for every domain: a centre (:data:`CENTRE`, lon/lat degrees), districts laid out as a grid
of :data:`DISTRICT_SIDE_M` squares around it (:func:`district_centres`), a few avenues through it
(:func:`road_point`: alternately east-west and north-south, :data:`AVENUE_SPACING_M` apart) carrying
the traffic detectors, and streets every :data:`BLOCK_M` inside each district, along which meters,
bins and lamps stand (:func:`along_streets`). Everything stays inside :data:`BOUNDS`.

Positions are made in metres east and north of the centre and turned into degrees on a local
tangent plane (:func:`to_degrees`; a few metres off over the city's size, which a plan does not
show), rounded to 6 decimals (0.1 m) to keep messages small. They are drawn from their own random
stream of the scenario's seed, so adding them changed no other draw of the simulators: for one seed
the same sensor is always in the same place.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CENTRE", "HALF_SIDE_M", "BOUNDS", "DISTRICT_SIDE_M", "BLOCK_M", "AVENUE_SPACING_M", "POSITION_STREAM",
           "to_degrees", "point", "district_centres", "road_point", "along_streets", "scatter"]

#: The city centre (longitude, latitude; WGS 84 degrees): a mid-sized European city's.
CENTRE = (5.04, 47.32)
#: Half the side of the square the city fits in (m).
HALF_SIDE_M = 6000.0
#: Side of a district's square (m).
DISTRICT_SIDE_M = 1200.0
#: Distance between two streets of a district's grid (m).
BLOCK_M = 100.0
#: Distance between two parallel avenues (m).
AVENUE_SPACING_M = 1500.0
#: Third key of the seed the positions are drawn with (``default_rng([seed, POSITION_STREAM])``): a stream
#: no simulator uses for anything else.
POSITION_STREAM = 77
_METRES_PER_DEGREE = 111_320.0


def to_degrees(east_m, north_m) -> tuple[np.ndarray, np.ndarray]:
    """(longitude, latitude) in degrees, rounded to 6 decimals, of points ``east_m``/``north_m`` metres from
    the centre (clipped to the city's square)."""
    east = np.clip(np.asarray(east_m, dtype=np.float64), -HALF_SIDE_M, HALF_SIDE_M)
    north = np.clip(np.asarray(north_m, dtype=np.float64), -HALF_SIDE_M, HALF_SIDE_M)
    lon0, lat0 = CENTRE
    return (np.round(lon0 + east / (_METRES_PER_DEGREE * math.cos(math.radians(lat0))), 6),
            np.round(lat0 + north / _METRES_PER_DEGREE, 6))


#: (west, south, east, north) in degrees: no simulated position lies outside.
BOUNDS = (*(float(x) for x in to_degrees(-HALF_SIDE_M, -HALF_SIDE_M)),
          *(float(x) for x in to_degrees(HALF_SIDE_M, HALF_SIDE_M)))


def point(longitude: float, latitude: float) -> dict:
    """A reading's ``location``: a GeoJSON Point (longitude first)."""
    return {"type": "Point", "coordinates": [float(longitude), float(latitude)]}


def district_centres(count: int) -> tuple[np.ndarray, np.ndarray]:
    """East and north (m) of ``count`` district centres: a grid of squares, row by row, centred on the centre."""
    columns = max(1, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / columns)
    d = np.arange(count)
    east = (d % columns - (columns - 1) / 2) * DISTRICT_SIDE_M
    north = ((rows - 1) / 2 - d // columns) * DISTRICT_SIDE_M
    return east, north


def road_point(road: int, distance_m) -> tuple[np.ndarray, np.ndarray]:
    """East and north (m) of points ``distance_m`` along avenue ``road`` from its western (or northern) end.

    Avenues alternate east-west and north-south, the first two through the centre, then pairs
    :data:`AVENUE_SPACING_M` further out on alternate sides; each is the city's side long."""
    pair, across = divmod(road, 2)
    offset = ((pair + 1) // 2) * AVENUE_SPACING_M * (1 if pair % 2 else -1)
    along = np.asarray(distance_m, dtype=np.float64) - HALF_SIDE_M
    if across:                     # north-south, from the north
        return np.full(along.shape, offset), -along
    return along, np.full(along.shape, offset)


def along_streets(rng: np.random.Generator, east_m, north_m, count: int, spread_m: float,
                  spacing_m: float) -> tuple[np.ndarray, np.ndarray]:
    """``count`` points on the street grid (streets every :data:`BLOCK_M`) within ``spread_m`` of a place
    (m): each on a street, east-west or north-south at random, ``spacing_m`` apart where they share one."""
    street = rng.integers(-int(spread_m // BLOCK_M), int(spread_m // BLOCK_M) + 1, count) * BLOCK_M
    along = (np.round(rng.uniform(-spread_m, spread_m, count) / spacing_m) * spacing_m)
    east_west = rng.random(count) < 0.5
    east = np.where(east_west, along, street) + east_m
    north = np.where(east_west, street, along) + north_m
    return east, north


def scatter(rng: np.random.Generator, east_m, north_m, spread_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Points uniformly within ``spread_m`` (m, a square) of each place (arrays of equal length)."""
    east_m = np.asarray(east_m, dtype=np.float64)
    return (east_m + rng.uniform(-spread_m, spread_m, east_m.shape),
            np.asarray(north_m, dtype=np.float64) + rng.uniform(-spread_m, spread_m, east_m.shape))
