"""What a domain is: its wire format, its columns, its groups, its detectors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Column", "Domain", "FactsTracker"]


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
    #: A city KPI measured from the readings the detectors see, or None: called with the pipeline's
    #: detectors, it gives an object with ``metric`` (a labelled prometheus Counter) and
    #: ``measure(readings) -> {label: amount}`` over one slice of readings with the tracker's facts.
    kpi: Callable | None = None

    def topic(self, kind: str) -> str:
        """Short topic name: ``<domain>.readings.v1`` or ``<domain>.dlq.v1``."""
        return f"{self.name}.{kind}.v1"


class FactsTracker:
    """A domain tracker made of the reporting-cadence tracker (``cadence``, which owns ``last_seen``)
    and the subject fields (``subject_fields``) behind the per-reading facts it hands the detectors
    (``reading_facts``). A domain gives :meth:`facts`: they are taken before the cadence tracker folds
    the slice into ``last_seen``, so ``last_seen`` is still the subject's previous reading then."""

    subject_fields: tuple = ()
    reading_facts: tuple = ()
    cadence = None

    def prepare(self, state) -> None:
        state.subjects.ensure_all(self.subject_fields)
        self.cadence.prepare(state)

    def facts(self, state, readings) -> dict:
        raise NotImplementedError

    def update(self, state, readings) -> dict:
        """Fold a time-sorted slice in; returns the per-reading facts (``reading_facts``) of its readings."""
        facts = self.facts(state, readings)
        self.cadence.update(state, readings)
        return facts
