"""The traffic domain: loop and radar detectors reporting flow, occupancy and speed per interval."""

from __future__ import annotations

import numpy as np

import kernels
from streams.detectors.traffic.anomaly_score import TrafficAnomalyScore
from streams.detectors.traffic.incident import TrafficIncident
from streams.detectors.traffic.silent import TrafficSilent
from streams.detectors.traffic.stuck import TrafficStuck
from streams.domains.base import Column, Domain
from streams.detectors._cadence import CadenceTracker

__all__ = ["TRAFFIC", "TrafficTracker"]

NAN = np.nan


class TrafficTracker:
    """Shared detector state: last reading time, road segment, position along it (m), last occupancy,
    and each detector's reporting cadence (learnt before a batch is folded in)."""

    subject_fields = (("last_seen", np.float64, NAN), ("segment", np.int32, -1), ("position", np.float64, NAN),
                      ("occupancy", np.float64, NAN))
    cadence = CadenceTracker()

    def prepare(self, state) -> None:
        state.subjects.ensure_all(self.subject_fields)
        state.group("segment")
        self.cadence.prepare(state)

    def update(self, state, readings) -> np.ndarray:
        self.cadence.update(state, readings)
        return kernels.apply_traffic_readings(
            readings.slots, readings.ts, readings.groups["segment"], readings.columns["positionAlongSegment"],
            readings.columns["occupancy"], state.subject("last_seen"), state.subject("segment"),
            state.subject("position"), state.subject("occupancy"))


def _simulate(days: float = 3.0, seed: int = 42, start: float | None = None, **scenario):
    from streams.simulate.traffic import TrafficScenario, simulate_traffic

    return simulate_traffic(TrafficScenario(days=days, seed=seed, start=start, **scenario))


TRAFFIC = Domain(
    name="traffic", schema="traffic-reading", reading_type="TrafficFlowObserved", subject_kind="traffic_detector",
    columns=(Column("intensity"), Column("occupancy"), Column("averageVehicleSpeed"),
             Column("positionAlongSegment")),
    groups=(("segment", "refRoadSegment"),),
    tracker=TrafficTracker(),
    # incidents first (a queue is an incident, not an anomaly), stuck before the anomaly score reads it
    detectors=(TrafficIncident, TrafficStuck, TrafficSilent, TrafficAnomalyScore),
    incident_detectors={"incident": "traffic.incident", "stuck": "traffic.stuck", "silent": "traffic.silent",
                        "anomaly": "traffic.anomaly_score"},
    simulate=_simulate,
)
