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


#: Per-reading facts the tracker hands the detectors (:func:`kernels.previous_readings`): whether a reading
#: is new (later than the detector's previous one), and the previous reading's time (s) and occupancy.
FACTS = (("new", np.bool_), ("prev_ts", np.float64), ("prev_occupancy", np.float64))

#: Fields earlier releases kept per traffic detector in traffic.stuck, equal to the tracker's ``last_seen``
#: and ``occupancy``: dropped from restored state (:func:`upgrade_state`).
RETIRED_FIELDS = ("stuck_last_ts", "stuck_prev_occupancy")


class TrafficTracker:
    """Shared detector state: last reading time, road segment, position along it (m), last occupancy,
    and each detector's reporting cadence (learnt before a batch is folded in). Per reading it hands the
    detectors whether the reading is new and the previous reading's time and occupancy
    (``reading_facts``), so no detector keeps a copy of them."""

    subject_fields = (("last_seen", np.float64, NAN), ("segment", np.int32, -1), ("position", np.float64, NAN),
                      ("occupancy", np.float64, NAN))
    reading_facts = FACTS
    cadence = CadenceTracker()

    def prepare(self, state) -> None:
        state.subjects.ensure_all(self.subject_fields)
        state.group("segment")
        self.cadence.prepare(state)

    def update(self, state, readings) -> dict:
        """Fold a time-sorted slice in; returns the per-reading facts (``reading_facts``) of its readings."""
        occupancy = readings.columns["occupancy"]
        # before anything folds the slice in: previous readings from last_seen (read) and occupancy (folded here
        # as apply_traffic_readings folds it again below: every new reading's occupancy, NaN included)
        prev_ts, prev_occupancy, new = kernels.previous_readings(
            readings.slots, readings.ts, state.subject("last_seen"), occupancy, state.subject("occupancy"),
            value_required=False)
        self.cadence.update(state, readings)
        kernels.apply_traffic_readings(
            readings.slots, readings.ts, readings.groups["segment"], readings.columns["positionAlongSegment"],
            occupancy, state.subject("last_seen"), state.subject("segment"), state.subject("position"),
            state.subject("occupancy"))
        return {"new": new, "prev_ts": prev_ts, "prev_occupancy": prev_occupancy}


def upgrade_state(state) -> None:
    """State restored from an earlier release: traffic.stuck's copies of the previous reading's time and
    occupancy (the tracker's ``last_seen`` and ``occupancy`` all along) dropped."""
    state.subjects.retire(RETIRED_FIELDS)


def _simulate(days: float = 3.0, seed: int = 42, start: float | None = None, **scenario):
    from streams.simulate.traffic import TrafficScenario, simulate_traffic

    return simulate_traffic(TrafficScenario(days=days, seed=seed, start=start, **scenario))


TRAFFIC = Domain(
    name="traffic", schema="traffic-reading", reading_type="TrafficFlowObserved", subject_kind="traffic_detector",
    columns=(Column("intensity"), Column("occupancy"), Column("averageVehicleSpeed"),
             Column("positionAlongSegment")),
    groups=(("segment", "refRoadSegment"),),
    tracker=TrafficTracker(),
    upgrade=upgrade_state,
    # incidents first (a queue is an incident, not an anomaly), stuck before the anomaly score reads it
    detectors=(TrafficIncident, TrafficStuck, TrafficSilent, TrafficAnomalyScore),
    incident_detectors={"incident": "traffic.incident", "stuck": "traffic.stuck", "silent": "traffic.silent",
                        "anomaly": "traffic.anomaly_score"},
    simulate=_simulate,
)
