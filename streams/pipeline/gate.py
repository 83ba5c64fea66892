"""Consent and retention, applied between the detectors and everything they keep or say.

Contract. :class:`ConsentGate` is asked by :class:`streams.pipeline.DomainPipeline`, per
partition state and detector, which subjects the detector must not process (its *exclusion
mask*), and filters what the detector says:

* **consent** (:mod:`streams.consent`): a household not enrolled in a detector that
  ``requires_enrolment``, or one that objected to a detector whose ``objection_allowed``, is
  excluded from it: its readings never reach the detector, the detector's subject fields for it
  are reset to their fill values after every update and sweep (its state is deleted, and the
  changelog carries the deletion), and nothing the detector says about it is published;
* **retention** (``Declaration.retention_s``): a subject whose newest reading (the tracker's
  ``last_seen``) is older than a detector's retention at the partition's watermark is excluded
  from that detector in the same way; once it is older than every detector's retention, the
  tracker's fields for it are reset too, and nothing about it is left but its key;
* **absences**: a ``raised`` alert of a detector that ``absence_holds`` for a household with a
  declared absence covering the alert's time is held (the episode start is kept in the subject
  field ``hold_<detector>``, so a held alert survives a restart); a ``cleared`` for a held
  episode cancels it quietly; at the first sweep after the absence ends, an episode still held
  is raised, dated at that sweep. The detector's own state keeps running throughout.

Group state (gateways, districts, cabinets) is operational, not about a household, and is
not gated. With :meth:`ConsentRegister.everyone` and no stale subject the gate changes nothing
and costs one comparison per detector and sweep.
"""

from __future__ import annotations

import math

import numpy as np

from streams.consent import ConsentRegister
from streams.detectors.access import tracker_specs
from streams.detectors.base import Detector, Transition

__all__ = ["ConsentGate", "hold_field"]

LAST_SEEN = "last_seen"


def hold_field(detector_name: str) -> str:
    """The subject field holding a held alert's episode start (s; NaN = none) for an absence-holding detector."""
    return "hold_" + detector_name.split(".", 1)[1]


class ConsentGate:
    def __init__(self, domain, detectors: list[Detector], register: ConsentRegister | None):
        self.register = register if register is not None else ConsentRegister.everyone()
        self.detectors = detectors
        self.names = [d.declaration.name for d in detectors]
        self.retention_s = np.array([d.declaration.retention_s for d in detectors], dtype=np.float64)
        self.fields = [[(name, fill) for name, _dtype, fill in d.subject_fields] for d in detectors]
        self.holding = {i: hold_field(d.declaration.name) for i, d in enumerate(detectors)
                        if d.declaration.absence_holds and not self.register.everyone_enrolled}
        for i, name in self.holding.items():
            self.fields[i].append((name, np.nan))
        self.restricted = [i for i, d in enumerate(detectors) if self.register.restricts(d.declaration)]
        tracker = domain.tracker
        specs = tracker_specs(tracker) if tracker is not None else {}
        self.tracker_fields = [(name, fill) for name, (_dtype, fill) in specs.items() if "." not in name]
        self.tracker_retention_s = float(self.retention_s.max()) if len(detectors) else math.inf
        self.has_update = [type(d).update is not Detector.update for d in detectors]
        self._consent: dict[int, tuple] = {}   # partition -> (register version, per-detector masks, state)

    def prepare(self, state) -> None:
        for name in self.holding.values():
            state.subjects.ensure(name, np.float64, np.nan)

    def forget(self, partition: int) -> None:
        self._consent.pop(partition, None)

    # -- masks -----------------------------------------------------------------------------------
    def _consent_masks(self, state) -> list[np.ndarray | None]:
        """Per detector: excluded by the registers (bool per slot), or None when it is not restricted."""
        keys = state.subjects.keys
        version = self.register.version
        cached = self._consent.get(state.partition)
        if cached is None or cached[0] != version or cached[2] is not state:
            masks = [np.zeros(0, dtype=bool) if i in self.restricted else None for i in range(len(self.detectors))]
            cached = self._consent[state.partition] = (version, masks, state)
        masks = cached[1]
        for i in self.restricted:
            done = len(masks[i])
            if done < len(keys):             # new subjects since the masks were made: extend them
                declaration = self.detectors[i].declaration
                extra = np.fromiter((self.register.excluded(declaration, k) for k in keys[done:]), dtype=bool,
                                    count=len(keys) - done)
                masks[i] = np.concatenate([masks[i], extra])
        return masks

    def masks(self, state, now: float) -> list[np.ndarray | None]:
        """Per detector: the slots it must not process at event time ``now`` (s) (bool per slot), or
        None when there are none."""
        consent = self._consent_masks(state) if self.restricted else [None] * len(self.detectors)
        stale = None
        if not math.isnan(now) and LAST_SEEN in state.subjects.fields:
            age = now - state.subject(LAST_SEEN)
            if np.nanmax(age, initial=-np.inf) > self.retention_s.min():
                stale = age
        result = []
        for i, mask in enumerate(consent):
            if stale is not None and self.fields[i]:       # only a detector keeping per-subject state has any to purge
                old = stale > self.retention_s[i]
                mask = old if mask is None else (mask | old)
            result.append(mask if mask is not None and mask.any() else None)
        return result

    def splits(self, state, ticks: np.ndarray) -> np.ndarray:
        """Where a run of ``ticks`` (s, with no reading folded in between) must be cut so the gate has the
        same thing to do at every tick of each piece: the indices (ascending, in 1..len-1) of the ticks
        from which a subject is past a detector's retention (its masks change there), and the ticks just
        after one at which the tracker's fields of a subject are purged (the sweeps after it see them
        reset). Masks and purges are then as tick by tick with :meth:`masks` at the first tick of a
        piece and :meth:`purge_tracker` at its last."""
        n = len(ticks)
        if n < 2 or LAST_SEEN not in state.subjects.fields:
            return np.zeros(0, dtype=np.int64)
        seen = state.subject(LAST_SEEN)
        seen = seen[~np.isnan(seen)]
        if not len(seen):
            return np.zeros(0, dtype=np.int64)
        cuts = []
        kept = [float(r) for i, r in enumerate(self.retention_s) if self.fields[i]]
        for retention, purge in [(r, False) for r in sorted(set(kept))] + \
                ([(self.tracker_retention_s, True)] if self.tracker_fields else []):
            k = self._crossing(ticks, seen, retention)
            cuts.append(k[(k > 0) & (k < n)])
            if purge:
                k = k[k < n] + 1
                cuts.append(k[k < n])
        return np.unique(np.concatenate(cuts)) if cuts else np.zeros(0, dtype=np.int64)

    @staticmethod
    def _crossing(ticks, seen, retention: float) -> np.ndarray:
        """Per subject, the first tick index with ``tick - seen > retention`` (the masks' own comparison), or len."""
        k = np.searchsorted(ticks, seen + retention, side="right")
        n = len(ticks)
        # seen + retention is rounded: step one tick either way so the comparison is the masks' own
        back = (k > 0) & (ticks[np.maximum(k - 1, 0)] - seen > retention)
        k = k - back
        ahead = (k < n) & ~(ticks[np.minimum(k, n - 1)] - seen > retention)
        return k + ahead

    def holds_any(self, state) -> bool:
        """Whether any alert is held (only then does :meth:`release` have anything to do)."""
        return any(not np.isnan(state.subject(name)).all() for name in self.holding.values())

    # -- what detectors see, keep and say --------------------------------------------------------
    def readings_for(self, i: int, readings, mask):
        """The readings detector ``i`` may see: those of subjects it does not exclude."""
        if mask is None or not self.has_update[i]:
            return readings
        keep = ~mask[readings.slots]
        return readings if keep.all() else readings.take(np.flatnonzero(keep))

    def delete(self, state, i: int, mask) -> None:
        """Reset detector ``i``'s subject fields (and its held alert) at the excluded slots."""
        if mask is None:
            return
        slots = np.flatnonzero(mask)
        for name, fill in self.fields[i]:
            state.subject(name)[slots] = fill

    def purge_tracker(self, state, now: float) -> None:
        """Reset the tracker's fields of subjects older than every detector's retention at ``now`` (s)."""
        if math.isnan(now) or LAST_SEEN not in state.subjects.fields or not self.tracker_fields:
            return
        old = np.flatnonzero(now - state.subject(LAST_SEEN) > self.tracker_retention_s)
        if len(old):
            for name, fill in self.tracker_fields:
                state.subject(name)[old] = fill

    def say(self, state, i: int, mask, transitions: list[Transition]) -> list[Transition]:
        """What of detector ``i``'s transitions is published: excluded subjects' dropped, absences held."""
        if not transitions or (mask is None and i not in self.holding):
            return transitions
        slots = state.subjects.slots
        held = state.subject(self.holding[i]) if i in self.holding else None
        kept = []
        for t in transitions:
            slot = slots.get(t.subject)
            if slot is None:             # a group's alert (a gateway, a district): not about a household, not gated
                kept.append(t)
                continue
            if mask is not None and mask[slot]:
                continue
            if held is not None:
                if t.state == "raised" and self.register.absent(t.subject, t.time):
                    held[slot] = t.episode_start
                    continue
                if t.state == "cleared" and held[slot] == t.episode_start:
                    held[slot] = np.nan
                    continue
            kept.append(t)
        return kept

    def release(self, state, tick: float) -> list[tuple[int, Transition]]:
        """Held alerts whose absence is over at event time ``tick`` (s), raised now: (detector index, transition)."""
        result = []
        for i, name in self.holding.items():
            held = state.subject(name)
            for slot in np.flatnonzero(~np.isnan(held)):
                key = state.subjects.keys[slot]
                if not self.register.absent(key, tick):
                    result.append((i, Transition(self.names[i], key, "raised", float(held[slot]), tick)))
                    held[slot] = np.nan
        return result
