"""What a domain is: its wire format, its columns, its groups, its detectors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Column", "Domain"]


@dataclass(frozen=True)
class Column:
    """A numeric column taken from each reading (float64; NaN when the reading lacks it).

    ``codes`` maps a string value to a number (for enums such as ``powerState``);
    an unknown string becomes NaN. Booleans become 0.0 / 1.0.
    """

    json: str
    name: str = ""
    codes: dict | None = None

    @property
    def column(self) -> str:
        return self.name or self.json


@dataclass(frozen=True)
class Domain:
    """A sensor domain. ``subject_pseudonym`` set means subject ids are personal data
    and are replaced by ``<subject_pseudonym>-<hmac>`` before anything else sees them."""

    name: str                                   # "water"
    schema: str                                 # schemas/<schema>.schema.json
    reading_type: str                           # the SDM type of a reading
    subject_kind: str                           # "water_meter", "traffic_detector", ...
    columns: tuple[Column, ...]
    groups: tuple[tuple[str, str], ...] = ()    # (group name, reading field) besides "gateway"
    subject_pseudonym: str | None = None
    tracker: object | None = None               # shared state updated before the detectors
    #: Brings state restored from an earlier release up to date (fields renamed or retired), after the
    #: current fields are declared; None = nothing to do.
    upgrade: Callable | None = None
    detectors: tuple = ()                       # detector classes, in run order
    incident_detectors: dict = field(default_factory=dict)   # simulator incident kind -> detector name
    simulate: Callable | None = None            # scenario kwargs -> simulation

    def topic(self, kind: str) -> str:
        """Short topic name: ``<domain>.readings.v1`` or ``<domain>.dlq.v1``."""
        return f"{self.name}.{kind}.v1"
