"""The one parser of user-given instants: epoch seconds or ISO 8601 text.

Readings on the wire are parsed in :mod:`streams.ingest.decode` (ISO 8601 with an offset,
nothing else); this is for command-line arguments and exported files.
"""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["parse_instant", "reading_time", "InstantError"]


class InstantError(ValueError):
    """Not an instant: the message says why (no callers' context; they add theirs)."""


def parse_instant(text: str, naive_is_utc: bool = False) -> float:
    """Epoch seconds from ``text``: a number (epoch s) or ISO 8601 (``2026-01-31T08:00:00+01:00``, ``...Z``).

    Text without a UTC offset is refused, unless ``naive_is_utc`` (exports often omit it).
    """
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InstantError("neither an ISO 8601 date-time (2026-01-31T08:00:00+01:00) nor epoch seconds") from None
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise InstantError("has no UTC offset; add one (Z, +01:00) so the moment is unambiguous")
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def reading_time(text: str) -> float | None:
    """Epoch seconds of a reading's ``dateObserved``: ISO 8601 date and time with a UTC offset (``Z`` or
    ``+01:00``), the only form the pipeline accepts; None for anything else (no offset, no time, not a date)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None or "T" not in text:
        return None
    return moment.timestamp()
