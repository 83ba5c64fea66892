"""The reporting cadence the absence detectors read: one tracker, its state declared once.

Every absence detector (``water.meter_silent``, ``water.no_use_24h``'s "still reporting",
``feed.gateway_outage``, ``traffic.silent``, ``lighting.silent``, ``waste.silent``) judges a
silence against ``max(its fixed floor, missed_reports x the subject's learnt cadence,
min(gap_margin x the longest gap it recovered from lately, gap_ceiling_s))``. The
cadence is learnt here, once per domain, from each subject's own inter-arrival times
(:func:`kernels.learn_cadence`), on the reading path before the domain folds a batch in; the
detectors only read it. Its state is three declared fields per subject (and per member of the
groups named, e.g. gateways), so the changelog persists and restores it like any other field:
``cadence`` (s, NaN = not learnt yet), ``cadence_intervals`` (intervals learnt, int32,
saturating at ``kernels.config.CADENCE_MIN_INTERVALS``) and ``longest_gap`` (s, 0 = none yet;
decays over ``kernels.config.CADENCE_GAP_MEMORY_S``). The silence detectors' shared thresholds
``missed_reports``, ``gap_margin`` and ``gap_ceiling_s`` make up their rule (:func:`silence_rule`).
"""

from __future__ import annotations

import numpy as np

import kernels

__all__ = ["CadenceTracker", "CADENCE", "CADENCE_INTERVALS", "CADENCE_READS", "LONGEST_GAP", "LAST_SEEN",
           "SILENCE_READS", "gap_margin_threshold", "group_silence_reads", "learnt_cadence", "silence_rule", "subject_silence"]

CADENCE = "cadence"
CADENCE_INTERVALS = "cadence_intervals"
LONGEST_GAP = "longest_gap"
LAST_SEEN = "last_seen"

#: What a detector judging by the cadence alone declares it reads (``state_reads``), and one that
#: also uses the longest gap (every silence detector); the fields are the tracker's.
CADENCE_READS = (LAST_SEEN, CADENCE, CADENCE_INTERVALS)
SILENCE_READS = (*CADENCE_READS, LONGEST_GAP)


def gap_margin_threshold():
    """The ``gap_margin`` threshold every silence detector declares (one text, one default)."""
    from streams.detectors.base import threshold

    return threshold(1.5, "x", "Not silent before this many times the longest gap between its readings in about the "
                               "last month (real networks drop readings for hours now and then): the same dropout is "
                               "not an alert each time, a longer one is; 0 judges by the cadence alone.", minimum=0.0)


def group_silence_reads(group: str) -> tuple[str, ...]:
    """``SILENCE_READS`` of a group's members (e.g. gateways)."""
    return tuple(f"{group}.{name}" for name in SILENCE_READS)


_FIELDS = ((CADENCE, np.float64, np.nan), (CADENCE_INTERVALS, np.int32, 0), (LONGEST_GAP, np.float64, 0.0))


class CadenceTracker:
    """Learns the reporting cadence of a domain's subjects and of the members of ``groups``.

    The subjects' newest reading time is the ``last_seen`` field: with ``owns_last_seen`` the
    tracker declares and updates it (a domain with no other reading state: lighting, waste),
    otherwise the domain's tracker does, after this one has read it (water, traffic). A group's
    ``last_seen`` always belongs to the domain's tracker (water's gateways).
    """

    def __init__(self, groups: tuple[str, ...] = (), owns_last_seen: bool = False):
        self.groups = tuple(groups)
        self.owns_last_seen = owns_last_seen
        self.subject_fields = (((LAST_SEEN, np.float64, np.nan),) if owns_last_seen else ()) + _FIELDS
        self.group_fields = {group: _FIELDS for group in self.groups}

    def prepare(self, state) -> None:
        state.subjects.ensure_all(self.subject_fields)
        for group, fields in self.group_fields.items():
            state.group(group).ensure_all(fields)

    def update(self, state, readings) -> np.ndarray:
        """Learn from a time-sorted slice of readings, before anything else folds it in.

        Returns the per-reading outcome for the subjects (``kernels.config.ARRIVAL_*``)."""
        codes = kernels.learn_cadence(readings.slots, readings.ts, state.subject(LAST_SEEN), state.subject(CADENCE),
                                      state.subject(CADENCE_INTERVALS), fold=self.owns_last_seen,
                                      longest_gap=state.subject(LONGEST_GAP))
        for group in self.groups:
            table = state.group(group)
            kernels.learn_cadence(readings.groups[group], readings.ts, table.column(LAST_SEEN), table.column(CADENCE),
                                  table.column(CADENCE_INTERVALS), longest_gap=table.column(LONGEST_GAP))
        return codes


def learnt_cadence(state, group: str | None = None, gaps: bool = True) -> dict:
    """The sweep kernels' cadence arguments for the subjects (or a group's members); ``gaps=False``
    leaves out the longest gaps (a rule that judges by the cadence alone)."""
    if group is None:
        learnt = {"cadence": state.subject(CADENCE), "cadence_count": state.subject(CADENCE_INTERVALS)}
        if gaps:
            learnt["longest_gap"] = state.subject(LONGEST_GAP)
        return learnt
    learnt = {"cadence": state.group_column(group, CADENCE),
              "cadence_count": state.group_column(group, CADENCE_INTERVALS)}
    if gaps:
        learnt["longest_gap"] = state.group_column(group, LONGEST_GAP)
    return learnt


def silence_rule(thresholds) -> dict:
    """A silence detector's rule from its thresholds (``missed_reports``, ``gap_margin``,
    ``gap_ceiling_s``), as the sweep kernels take it."""
    return {"missed_reports": thresholds.missed_reports, "gap_margin": thresholds.gap_margin,
            "gap_ceiling": thresholds.gap_ceiling_s}


def subject_silence(detector, state, ticks) -> list:
    """The sweep over ``ticks`` (s) of a subject's silence detector (``silent_since`` per subject;
    thresholds ``silent_after_s`` as floor and its :func:`silence_rule`): episodes opened by the passing
    of time, closed by the subject's next reading (timed by it). ``(tick index, transition)`` pairs."""
    from kernels import sweep_absence
    from streams.detectors._transitions import tick_transitions

    since = state.subject("silent_since")
    t = detector.thresholds
    return tick_transitions(detector.declaration.name, state.subjects.keys, since, ticks,
                            lambda raised_at: sweep_absence(ticks, t.silent_after_s, state.subject("last_seen"), since,
                                                            **silence_rule(t), **learnt_cadence(state),
                                                            raised_at=raised_at),
                            ended_by=state.subject("last_seen"))
