"""Dead letters: invalid input as values, with the reason, routed to a DLQ topic."""

from __future__ import annotations

from dataclasses import dataclass

from streams.ingest.messages import RawMessage

__all__ = ["DeadLetter", "REASONS"]

#: The bounded set of reasons (a Prometheus label and the ``reason`` header).
REASONS = (
    "invalid_json",            # not JSON (or not UTF-8), or an empty value
    "non_finite",              # a number that is not finite (1e999, NaN)
    "schema",                  # JSON, but not a valid reading or envelope (missing field, wrong type, range)
    "timestamp_invalid",       # dateObserved is not an ISO 8601 date-time with a UTC offset
    "timestamp_out_of_range",  # dateObserved before 2000-01-01 or too far in the future
)


@dataclass(frozen=True)
class DeadLetter:
    """One invalid item. ``value`` is the offending message (or reading) as received."""

    value: bytes
    reason: str
    detail: str
    source: RawMessage
    reading_index: int = -1   # position inside a batch envelope; -1 = the whole message

    def __post_init__(self):
        if self.reason not in REASONS:
            raise ValueError(f"unknown dead-letter reason {self.reason!r}")

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers: where the item came from and why it was refused."""
        return [
            ("source_topic", self.source.topic.encode()),
            ("source_partition", str(self.source.partition).encode()),
            ("source_offset", str(self.source.offset).encode()),
            ("reason", self.reason.encode()),
            ("detail", self.detail[:500].encode("utf-8", "replace")),
            ("reading_index", str(self.reading_index).encode()),
        ]
