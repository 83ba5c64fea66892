"""The lighting domain: street lamps and their control cabinets, reporting every 15 minutes.

One topic carries both kinds of reading (``type`` Streetlight or
StreetlightControlCabinet, the ``kind`` column); lamps are the detectors' subjects,
keyed by lamp id (not personal data), and messages are keyed by control cabinet
so a cabinet's lamps share a partition. The sun is the lamps' schedule: the
detectors compute sunrise and sunset for the city's coordinates (thresholds,
Dijon by default).
"""

from __future__ import annotations

from kernels.config import CABINET, LAMP
from streams.detectors.lighting.cycling import Cycling
from streams.detectors.lighting.day_burner import DayBurner
from streams.detectors.lighting.lamp_failure import LampFailure
from streams.detectors.lighting.power_out_of_range import PowerOutOfRange
from streams.detectors.lighting.silent import LightingSilent
from streams.detectors._cadence import CadenceTracker
from streams.domains.base import Column, Domain

__all__ = ["LIGHTING", "POWER_STATE_CODES"]

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
    # every lamp's and cabinet's newest reading and reporting cadence (lighting.silent reads them)
    tracker=CadenceTracker(owns_last_seen=True),
    detectors=(LampFailure, DayBurner, PowerOutOfRange, Cycling, LightingSilent),
    incident_detectors={"lamp_failure": "lighting.lamp_failure", "day_burner": "lighting.day_burner",
                        "power_out_of_range": "lighting.power_out_of_range", "cycling": "lighting.cycling",
                        "silent": "lighting.silent"},
    simulate=_simulate,
)
