"""Where the sensors are: the latest known position of each subject and gateway, for the control-room plan.

Readings may carry a ``location`` (a GeoJSON Point, WGS 84 degrees; decoded and range-checked by
:mod:`streams.ingest.decode`). The pipeline keeps, per partition, the latest position each subject
(by the event time of its readings) and each gateway (by the last envelope that gave one) reported,
so a page can draw the sensors and place the alerts it receives, by the subject key they carry.

The positions are read by the pipeline for the page only: no detector is given them (they are not
a reading column) and no alert carries them.

Privacy: a personal subject's position (a household's water meter: a domain with a
``subject_pseudonym``) is snapped, before it is kept, to the centre of a cell of
:data:`PERSONAL_POSITION_CELL_M` metres (:func:`snap_to_cell`), so no exact household position
leaves the decoder; public assets (traffic detectors, bins, street lights, gateways) keep theirs.

Positions are kept in memory only, not in the state changelog: they come back with each subject's
next reading (a meter's hour, a detector's five minutes), and the state topic, kept as long as the
detectors' retention, then holds no position of a household at all. After a restart or rebalance a
partition's positions are unknown until its subjects report again.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PERSONAL_POSITION_CELL_M", "METRES_PER_DEGREE_LATITUDE", "POSITION_PURPOSE", "PartitionPositions",
           "snap_to_cell", "position_precision"]

#: Side of the grid cells a personal subject's position is snapped to (m): a city block or a few, so a
#: cell holds many households where people live densely (see docs/privacy.md for what it does not hide).
PERSONAL_POSITION_CELL_M = 250.0
#: Length of a degree of latitude (m, mean over WGS 84); a degree of longitude is this times cos(latitude).
METRES_PER_DEGREE_LATITUDE = 111_320.0
#: Why positions are read (the register says it, from here).
POSITION_PURPOSE = ("to draw the sensors and their alerts on the control room's plan of the city "
                    "(`DomainPipeline.subject_positions`, `gateway_positions`); kept in worker memory only, given "
                    "to no detector, in no alert or state record")


def position_precision(domain) -> str:
    """How precisely a domain's subject positions leave the pipeline, in words (the register's)."""
    if domain.subject_pseudonym is not None:
        return (f"snapped to the centre of a {PERSONAL_POSITION_CELL_M:g} m grid cell (personal data: a "
                "household's meter); gateways exact")
    return "exact (public assets); gateways exact"


def snap_to_cell(longitude, latitude, cell_m: float = PERSONAL_POSITION_CELL_M) -> tuple[np.ndarray, np.ndarray]:
    """The centre of the grid cell of side ``cell_m`` (m) holding each position (degrees, arrays).

    Rows are ``cell_m`` of latitude from the equator; each row's cells are ``cell_m`` of longitude
    measured at the row's middle latitude (so cells stay about square away from the equator), counted
    from the prime meridian. Every position of one cell gives the same centre, rounded to 6 decimals
    (0.1 m). NaN (no position) stays NaN."""
    longitude = np.asarray(longitude, dtype=np.float64)
    latitude = np.asarray(latitude, dtype=np.float64)
    row_deg = cell_m / METRES_PER_DEGREE_LATITUDE
    centre_lat = np.clip((np.floor(latitude / row_deg) + 0.5) * row_deg, -90.0, 90.0)
    # near the poles a cell's longitude span would exceed the globe: one cell per row there
    column_deg = np.minimum(row_deg / np.maximum(np.cos(np.radians(centre_lat)), row_deg / 360.0), 360.0)
    centre_lon = np.clip((np.floor(longitude / column_deg) + 0.5) * column_deg, -180.0, 180.0)
    return np.round(centre_lon, 6), np.round(centre_lat, 6)


class PartitionPositions:
    """One partition's positions: per subject slot longitude and latitude (degrees, NaN = unknown) and the
    event time (s) of the reading that gave them; per gateway id its (longitude, latitude)."""

    def __init__(self, capacity: int = 64):
        self.longitude = np.full(capacity, math.nan)
        self.latitude = np.full(capacity, math.nan)
        self.observed = np.full(capacity, math.nan)
        self.gateways: dict[str, tuple[float, float]] = {}

    def _grow(self, slots: int) -> None:
        if slots <= len(self.longitude):
            return
        capacity = max(slots, 2 * len(self.longitude))
        for name in ("longitude", "latitude", "observed"):
            grown = np.full(capacity, math.nan)
            old = getattr(self, name)
            grown[:len(old)] = old
            setattr(self, name, grown)

    def update(self, slots: np.ndarray, ts: np.ndarray, longitude: np.ndarray, latitude: np.ndarray) -> None:
        """Fold in readings' positions (degrees, NaN: none given): per slot the one of its latest reading
        (event time ``ts``, s), unless the slot already has a later one. Readings without one change nothing."""
        given = ~np.isnan(longitude)
        if not given.any():
            return
        slots, ts, longitude, latitude = slots[given], ts[given], longitude[given], latitude[given]
        order = np.lexsort((ts, slots))          # by slot, then time (stable: of equal times, the last to arrive)
        slots, ts, longitude, latitude = slots[order], ts[order], longitude[order], latitude[order]
        last = np.flatnonzero(np.append(slots[1:] != slots[:-1], True))
        slots, ts, longitude, latitude = slots[last], ts[last], longitude[last], latitude[last]
        self._grow(int(slots.max()) + 1)
        newer = ~(ts < self.observed[slots])     # NaN (no position yet) compares False: taken
        slots = slots[newer]
        self.longitude[slots], self.latitude[slots], self.observed[slots] = longitude[newer], latitude[newer], ts[newer]

    def known(self, keys: list[str]) -> dict[str, tuple[float, float]]:
        """Subject key -> (longitude, latitude) of every slot with a position (``keys``: the subjects table's)."""
        count = min(len(keys), len(self.longitude))
        found = np.flatnonzero(~np.isnan(self.longitude[:count]))
        return {keys[slot]: (lon, lat) for slot, lon, lat in zip(found.tolist(), self.longitude[found].tolist(),
                                                                 self.latitude[found].tolist())}
