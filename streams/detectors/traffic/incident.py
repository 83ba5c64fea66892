"""traffic.incident: a queue upstream of a capacity drop, free flow below it (California family)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import sweep_incident
from streams.detectors._transitions import transitions
from streams.detectors.base import Declaration, Detector, threshold

__all__ = ["TrafficIncident"]


class TrafficIncident(Detector):
    """Compares each detector with the next one downstream on its road segment (by
    ``positionAlongSegment``): an incident (crash, breakdown, lost load) between them backs
    traffic up over the upstream detector (occupancy up) and starves the downstream one
    (occupancy down). This is the occupancy-difference test of the California algorithms
    (Payne & Tignor, 1978) with a persistence check. The alert subject is the *upstream*
    detector of the pair: the incident lies between it and its downstream neighbour. Values
    of a detector with an open ``traffic.stuck`` episode are not evidence.
    """

    declaration = Declaration(
        name="traffic.incident", domain="traffic",
        purpose="Detect probable incidents (crash, breakdown) between two adjacent detectors of a road segment, "
                "so the control room can check cameras and send help.",
        legal_basis="Public task of managing road traffic (GDPR does not apply: no personal data).",
        reads=("id", "dateObserved", "occupancy", "refRoadSegment", "positionAlongSegment"),
        recipients="traffic control room",
        alert_topic="alerts.v1", severity="critical", subject_kind="traffic_detector",
        retention="alerts kept 90 days on the alert topic; incident statistics are kept by the traffic "
                  "management centre, outside this system",
        human_oversight="an operator confirms on camera before dispatching anyone or changing signal plans",
        owner="Traffic management centre",
        logic="It compares two neighbouring traffic sensors on the same road. A queue over the first sensor while "
              "the road after the second flows freely, for 15 minutes (by default), suggests a crash or a breakdown "
              "between them: the control room is told, and an operator checks the cameras before sending help or "
              "changing traffic lights. It counts vehicles; it does not see who is driving.",
    )

    @dataclass(frozen=True)
    class Thresholds:
        occupancy_difference: float = threshold(
            0.25, "fraction", "Upstream minus downstream occupancy: free-flowing urban lanes stay below 0.2 "
                              "occupancy even at peak, so only a queue over the upstream detector reaches it.", minimum=0, maximum=1)
        relative_difference: float = threshold(
            0.5, "fraction", "The difference must also be half the upstream occupancy: dense but moving "
                             "traffic over both detectors is congestion, not an incident between them.", minimum=0, maximum=1)
        persist_after_s: float = threshold(
            900.0, "s", "Congested for 15 min (three 5-minute intervals), the classic persistence check that "
                        "keeps a platoon or a long red light from raising an incident.", above=0)
        clear_after_s: float = threshold(
            900.0, "s", "Not congested for 15 min: a discharging queue can look free for one interval.", above=0)
        fresh_within_s: float = threshold(
            900.0, "s", "Both detectors must have reported within this time; a silent one is no evidence.", above=0)

    state_reads = ("last_seen", "segment", "position", "occupancy",   # the tracker's
                   "stuck_since")                                    # traffic.stuck's
    subject_fields = (("incident_congested_since", np.float64, np.nan), ("incident_calm_since", np.float64, np.nan),
                      ("incident_since", np.float64, np.nan))
    group_fields = {"segment": (("incident_open_since", np.float64, np.nan),
                                ("incident_ended", np.float64, np.nan))}

    def sweep(self, state, watermark):
        t = self.thresholds
        since = state.subject("incident_since")
        return transitions(self.declaration.name, state.subjects.keys, since, watermark,
                           lambda: sweep_incident(
                               watermark, t.occupancy_difference, t.relative_difference, t.persist_after_s,
                               t.clear_after_s, t.fresh_within_s, state.subject("last_seen"),
                               state.subject("segment"), state.subject("position"), state.subject("occupancy"),
                               state.subject("stuck_since"), state.subject("incident_congested_since"),
                               state.subject("incident_calm_since"), since,
                               state.group_column("segment", "incident_open_since"),
                               state.group_column("segment", "incident_ended")))

    def definitional_delay_s(self) -> float:
        return self.thresholds.persist_after_s
