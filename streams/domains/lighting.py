"""The lighting domain: street lamps and their control cabinets, reporting every 15 minutes.

One topic carries both kinds of reading (``type`` Streetlight or
StreetlightControlCabinet, the ``kind`` column); lamps are the detectors' subjects,
keyed by lamp id (not personal data), and messages are keyed by control cabinet
so a cabinet's lamps share a partition. The sun is the lamps' schedule: the
detectors compute sunrise and sunset for the city's coordinates (thresholds,
Dijon by default).
"""

from __future__ import annotations

import numpy as np

import kernels
from kernels.config import (CABINET, CITY_LATITUDE_DEG, CITY_LONGITUDE_DEG, LAMP, LIGHTING_ENERGY_MAX_GAP_S,
                            SUN_HORIZON_DEG)
from streams import metrics
from streams.detectors.lighting.cycling import Cycling
from streams.detectors.lighting.day_burner import DayBurner
from streams.detectors.lighting.lamp_failure import LampFailure
from streams.detectors.lighting.power_out_of_range import PowerOutOfRange
from streams.detectors.lighting.silent import LightingSilent
from streams.detectors._cadence import CadenceTracker
from streams.domains.base import Column, Domain, FactsTracker

__all__ = ["LIGHTING", "LightingTracker", "LightingEnergy", "POWER_STATE_CODES"]

#: Per-reading facts the tracker hands the lamp detectors (:func:`kernels.previous_readings` over the lamp
#: readings alone): whether a lamp reading is new (later than the lamp's previous lamp reading) and that
#: previous reading's time (s). Cabinet readings are never new.
FACTS = (("new", np.bool_), ("prev_ts", np.float64))

#: Fields earlier releases kept per lamp and detector, now the tracker's ``lamp_last_seen``: dropped from
#: restored state (:func:`upgrade_state`), which takes the lamp's newest lamp reading from them first.
RETIRED_FIELDS = ("lamp_failure_last_ts", "day_burner_last_ts", "power_range_last_ts", "cycling_last_ts")


class LightingTracker(FactsTracker):
    """Shared lamp and cabinet state: the newest reading of every lamp and cabinet and their reporting
    cadence (``last_seen``, ``cadence``...: lighting.silent reads them), and the newest *lamp* reading's
    time (``lamp_last_seen``). Per reading it hands the lamp detectors whether it is a new lamp reading
    and the lamp's previous lamp reading (``reading_facts``), so no detector keeps a copy of it.

    ``lamp_last_seen`` and not ``last_seen``: the lamp detectors judged a lamp reading against the
    subject's previous *lamp* reading (a cabinet reading under the same id was neither new nor previous
    to them); the facts keep that, whatever shares an id."""

    subject_fields = (("lamp_last_seen", np.float64, np.nan),)
    reading_facts = FACTS
    cadence = CadenceTracker(owns_last_seen=True)

    def facts(self, state, readings) -> dict:
        lamps = np.where(readings.columns["kind"] == LAMP, readings.slots, np.int32(-1)).astype(np.int32, copy=False)
        prev_ts, _none, new = kernels.previous_readings(lamps, readings.ts, state.subject("lamp_last_seen"),
                                                        fold=True)
        return {"new": new, "prev_ts": prev_ts}


def upgrade_state(state) -> None:
    """State restored from an earlier release: the lamp's newest lamp reading from the detectors' old
    copies of it (all equal: each took every new lamp reading), then the old copies dropped."""
    state.subjects.retire(RETIRED_FIELDS, into="lamp_last_seen", sources=RETIRED_FIELDS)

class LightingEnergy:
    """The street-lighting energy KPI (``glasscity_lighting_energy_joules_total{kind}``): per new lamp
    reading, what the lamp drew since its previous reading and what it would have drawn at its rated
    power over that interval's night (:func:`kernels.lighting_energy`). The sun is the one
    lighting.lamp_failure expects lamps to burn under (its city coordinates and horizon thresholds),
    so the KPI and the detectors agree on what night is; the defaults when that detector is not run.
    """

    metric = metrics.LIGHTING_ENERGY

    def __init__(self, detectors=()):
        sun = (CITY_LATITUDE_DEG, CITY_LONGITUDE_DEG, SUN_HORIZON_DEG)
        for detector in detectors:
            if detector.declaration.name == LampFailure.declaration.name:
                t = detector.thresholds
                sun = (t.latitude_deg, t.longitude_deg, t.horizon_deg)
        self.latitude_deg, self.longitude_deg, self.horizon_deg = sun

    def measure(self, readings) -> dict[str, float]:
        """{"used": J, "full_power_night": J} over one time-sorted slice of readings with the tracker's facts."""
        if not len(readings):
            return {}
        c = readings.columns
        used, full = kernels.lighting_energy(readings.ts, c["kind"], c["powerConsumption"], c["powerRating"],
                                             readings.facts["new"], readings.facts["prev_ts"], self.latitude_deg,
                                             self.longitude_deg, self.horizon_deg, LIGHTING_ENERGY_MAX_GAP_S)
        return {"used": used, "full_power_night": full}


#: powerState -> lit (1) or dark (0) as the controller reports it; ``low`` is dimmed but burning.
POWER_STATE_CODES = {"on": 1.0, "low": 1.0, "bootingUp": 1.0, "off": 0.0}


def _simulate(days: float = 3.0, seed: int = 42, start: float | None = None, **scenario):
    from streams.simulate.lighting import LightingScenario, simulate_lighting

    return simulate_lighting(LightingScenario(days=days, seed=seed, start=start, **scenario))


LIGHTING = Domain(
    name="lighting", schema="lighting-reading", reading_type="Streetlight", subject_kind="streetlight",
    columns=(Column("type", "kind", codes={"Streetlight": float(LAMP), "StreetlightControlCabinet": float(CABINET)}),
             Column("powerState", codes=POWER_STATE_CODES),
             Column("powerConsumption"),            # W, instantaneous (lamps)
             Column("illuminanceLevel"),            # 0-1 dimming level (lamps)
             Column("powerRating"),                 # W at full level (lamps)
             Column("energyConsumed")),             # kWh, cumulative (cabinets)
    groups=(("cabinet", "refStreetlightControlCabinet"),),
    # every lamp's and cabinet's newest reading and reporting cadence (lighting.silent reads them), the
    # newest lamp reading, and per reading the facts the lamp detectors share (new, prev_ts)
    tracker=LightingTracker(),
    upgrade=upgrade_state,
    detectors=(LampFailure, DayBurner, PowerOutOfRange, Cycling, LightingSilent),
    incident_detectors={"lamp_failure": "lighting.lamp_failure", "day_burner": "lighting.day_burner",
                        "power_out_of_range": "lighting.power_out_of_range", "cycling": "lighting.cycling",
                        "silent": "lighting.silent"},
    simulate=_simulate,
    kpi=LightingEnergy,
)
