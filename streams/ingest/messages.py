"""The one shape a consumed Kafka record takes below the Faust layer."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["RawMessage"]


class RawMessage(NamedTuple):
    """Raw value bytes and where they came from (for dead-letter headers)."""

    value: bytes | None
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
