"""Dead letters: invalid input as values, with the reason, routed to a DLQ topic.

Contract of :meth:`DeadLetter.kafka_record` (what goes to ``<prefix>.<domain>.dlq.v1``):

- key: the original message's key, so a replay lands on the same partition as the
  original; value: the offending bytes as received.
- headers, always: ``source_topic``, ``source_partition``, ``source_offset``,
  ``stage`` (``decode``: not a JSON document; ``validate``: a document, but not a
  valid reading), ``reason``, ``detail`` (at most :data:`MAX_DETAIL_BYTES`),
  ``reading_index`` (-1 = the whole message).
- bounded: key + value + headers never exceed :data:`MAX_DEAD_LETTER_RECORD_BYTES`,
  far below the 1,000,000-byte request limit of the producers, so a hostile 5 MB
  message cannot make its own dead letter fail. When the original does not fit, a
  prefix of it is kept and the headers ``truncated=true``, ``original_size`` (bytes)
  and ``sha256`` (hex, of the full value) are added; an oversized key is cut the
  same way (``original_key_size``, ``key_sha256``). A truncated record must not be
  replayed: its bytes are incomplete.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from streams.ingest.messages import RawMessage

__all__ = ["DeadLetter", "REASONS", "DEAD_LETTER_REASONS", "STAGES", "stage_of", "MAX_DEAD_LETTER_RECORD_BYTES",
           "MAX_DEAD_LETTER_KEY_BYTES", "MAX_DETAIL_BYTES", "TRUNCATED_HEADER"]

#: Upper bound of one dead-letter record: key + value + every header name and value.
#: A quarter of the producers' 1,000,000-byte default, leaving room for batch overhead.
MAX_DEAD_LETTER_RECORD_BYTES = 256 * 1024

#: Longest key forwarded whole; a longer (hostile) key is cut and the record marked truncated.
MAX_DEAD_LETTER_KEY_BYTES = 1024

#: Longest ``detail`` header, in UTF-8 bytes (cut on a character boundary).
MAX_DETAIL_BYTES = 500

#: Header present (value ``b"true"``) only on a record whose key or value was cut.
TRUNCATED_HEADER = "truncated"

#: Where an item was refused: ``decode`` = the bytes are not a JSON document (or not
#: UTF-8, or empty); ``validate`` = a document, refused by the schema or the value checks.
#: ``watermark`` = a valid reading that came later than the allowed lateness (the late topic).
STAGES = ("decode", "validate", "watermark")

#: The bounded set of reasons (a Prometheus label and the ``reason`` header).
REASONS = (
    "invalid_json",            # not JSON (or not UTF-8), or an empty value
    "non_finite",              # a number that is not finite (1e999, NaN)
    "schema",                  # JSON, but not a valid reading or envelope (missing field, wrong type, bad enum)
    "timestamp_invalid",       # dateObserved is not an ISO 8601 date-time with a UTC offset
    "timestamp_out_of_range",  # dateObserved before 2000-01-01 or too far in the future
    # A number of the right type but physically absurd (an index of 1e308 m3, a nominal flow of 0, a
    # negative count): outside the minimum/maximum its schema declares. Apart from "schema" because it
    # points at a faulty device or a units mix-up, not at a producer sending the wrong shape.
    "value_out_of_range",
    # Not a dead letter: a valid reading dated before its partition's event-time watermark (the
    # sweeps for its time have run). It is still folded in where it is newer than its subject's
    # last reading, counted, and copied to the domain's late topic -- never dropped unseen.
    "late",
)


#: Reasons found before there is a JSON document; every other reason is a validation
#: failure (so a reason added to REASONS later is "validate" unless listed here).
#: ``non_finite`` is "validate": 1e999 is valid JSON, only not a finite measurement.
_DECODE_REASONS = frozenset({"invalid_json"})


def stage_of(reason: str) -> str:
    """The stage that refuses items for ``reason`` (see :data:`STAGES`)."""
    if reason == "late":
        return "watermark"
    return "decode" if reason in _DECODE_REASONS else "validate"


#: The reasons of items sent to the dead-letter topic (all but ``late``, whose readings go to the late topic).
DEAD_LETTER_REASONS = tuple(reason for reason in REASONS if stage_of(reason) != "watermark")


@dataclass(frozen=True)
class DeadLetter:
    """One invalid item. ``value`` is the offending message (or reading) as received.

    ``stage`` defaults to :func:`stage_of` the reason, so the creators need not set it.
    """

    value: bytes
    reason: str
    detail: str
    source: RawMessage
    reading_index: int = -1   # position inside a batch envelope; -1 = the whole message
    stage: str = ""

    def __post_init__(self):
        if self.reason not in REASONS:
            raise ValueError(f"unknown dead-letter reason {self.reason!r}")
        if not self.stage:
            object.__setattr__(self, "stage", stage_of(self.reason))   # frozen: set once, here
        elif self.stage not in STAGES:
            raise ValueError(f"unknown dead-letter stage {self.stage!r}; expected one of {', '.join(STAGES)}")

    def _provenance(self) -> list[tuple[str, bytes]]:
        detail = self.detail.encode("utf-8", "replace")[:MAX_DETAIL_BYTES]
        return [
            ("source_topic", self.source.topic.encode("utf-8", "replace")),
            ("source_partition", str(self.source.partition).encode()),
            ("source_offset", str(self.source.offset).encode()),
            ("stage", self.stage.encode()),
            ("reason", self.reason.encode()),
            # cut on a character boundary: a half character would make the header invalid UTF-8
            ("detail", detail.decode("utf-8", "ignore").encode()),
            ("reading_index", str(self.reading_index).encode()),
        ]

    def kafka_record(self) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
        """(key, value, headers) for the domain's dead-letter topic, bounded (see the module doc)."""
        key, value = self.source.key, self.value or b""
        headers = self._provenance()
        key_too_long = key is not None and len(key) > MAX_DEAD_LETTER_KEY_BYTES
        if not key_too_long and _size(key, value, headers) <= MAX_DEAD_LETTER_RECORD_BYTES:
            return key, value, headers
        if key_too_long:
            headers += [("original_key_size", str(len(key)).encode()),
                        ("key_sha256", hashlib.sha256(key).hexdigest().encode())]
            key = key[:MAX_DEAD_LETTER_KEY_BYTES]
        # size and hash of the full value always accompany a cut record: what was lost, and proof of it
        headers += [("original_size", str(len(value)).encode()),
                    ("sha256", hashlib.sha256(value).hexdigest().encode()),
                    (TRUNCATED_HEADER, b"true")]
        room = MAX_DEAD_LETTER_RECORD_BYTES - _size(key, b"", headers)
        return key, value[:room], headers

    def headers(self) -> list[tuple[str, bytes]]:
        """The headers of :meth:`kafka_record`; send them only with that record's value."""
        return self.kafka_record()[2]


def _size(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value) + sum(len(name) + len(data) for name, data in headers)
