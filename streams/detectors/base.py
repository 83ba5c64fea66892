"""The detector contract, shared by every detector of every domain.

A detector is one class in one file with:

- ``declaration``: a :class:`Declaration` — what it is for, on what legal basis,
  which data it reads, who may receive its alerts, retention, human oversight and
  status. The public register is generated from these, never hand-kept.
- ``__init__(thresholds)``: thresholds come from configuration, never from the
  scoring code.
- ``sweep(state, watermark) -> list[Transition]`` for absence detectors: run its
  kernel over a partition's columnar state at event time ``watermark`` (s) and
  return the episodes it opened or closed.

Detectors know no Faust and no Kafka; the same code runs in the worker, the demo,
replays and benchmarks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

__all__ = ["Declaration", "Detector", "Transition", "STATUSES"]

STATUSES = ("active", "dormant")


@dataclass(frozen=True)
class Declaration:
    """What a detector declares about itself (all fields required, none empty)."""

    name: str               # "<domain>.<detector>", e.g. "water.no_use_24h"
    domain: str
    purpose: str
    legal_basis: str
    reads: tuple[str, ...]  # data fields it reads
    recipients: str         # who may receive its alerts
    alert_topic: str        # short topic name: "alerts.v1" or "alerts.welfare.v1"
    severity: str           # "info" | "warning" | "critical"
    subject_kind: str       # what the alert subject is: "water_meter" (pseudonym) | "gateway"
    retention: str
    human_oversight: str
    status: str = "active"

    def __post_init__(self):
        for name, value in self.__dict__.items():
            if value in ("", ()):
                raise ValueError(f"detector declaration field {name!r} must not be empty")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.severity not in ("info", "warning", "critical"):
            raise ValueError(f"severity must be info, warning or critical, got {self.severity!r}")


class Transition(NamedTuple):
    """An episode opened (``raised``) or closed (``cleared``) by a detector at event time ``time`` (s)."""

    detector: str
    subject: str
    state: str              # "raised" | "cleared"
    episode_start: float    # s; with detector and subject it identifies the episode
    time: float             # s; the watermark at which the change was seen


class Detector(ABC):
    declaration: ClassVar[Declaration]

    @abstractmethod
    def sweep(self, state, watermark: float) -> list[Transition]:
        """Episodes opened or closed at event time ``watermark`` (s)."""
