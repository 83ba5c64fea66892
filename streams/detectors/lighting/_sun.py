"""Where the lighting detectors' sun is: the city's coordinates as thresholds (Dijon by default)."""

from __future__ import annotations

from kernels.config import CITY_LATITUDE_DEG, CITY_LONGITUDE_DEG, SUN_HORIZON_DEG
from streams.detectors.base import threshold

__all__ = ["latitude", "longitude", "horizon"]


def latitude():
    return threshold(CITY_LATITUDE_DEG, "deg N",
                     "The city's latitude: sunrise and sunset are computed for it (default Dijon, 47.32 N).",
                     minimum=-90, maximum=90)


def longitude():
    return threshold(CITY_LONGITUDE_DEG, "deg E",
                     "The city's longitude: sunrise and sunset are computed for it (default Dijon, 5.04 E).",
                     minimum=-180, maximum=180)


def horizon():
    return threshold(SUN_HORIZON_DEG, "deg",
                     "Solar elevation of sunrise and sunset as almanacs define them: upper limb on the horizon, "
                     "with standard refraction.", minimum=-90, maximum=90)
