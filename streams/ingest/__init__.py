"""Ingest: raw Kafka bytes in, columnar valid readings and dead letters out.

Contract: :func:`decode` takes the raw messages of one batch and a domain and
returns a :class:`Batch` whose arrays hold every valid reading (in arrival order)
and whose ``dead_letters`` hold one :class:`DeadLetter` per invalid item, with
the reason. An invalid reading inside a gateway envelope costs only itself, never
its valid siblings; nothing is dropped silently and nothing raises on bad input.
Knows no Faust and no Kafka client: it works on :class:`RawMessage` values.
"""

from streams.ingest.dead_letter import DeadLetter, REASONS
from streams.ingest.decode import Batch, decode
from streams.ingest.messages import RawMessage

__all__ = ["Batch", "DeadLetter", "RawMessage", "REASONS", "decode"]
