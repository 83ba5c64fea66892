"""Ingest: raw Kafka bytes in, columnar valid readings and dead letters out.

Contract: :func:`decode_water` takes the raw messages of one batch and returns a
:class:`WaterBatch` whose arrays hold every valid reading (in arrival order) and
whose ``dead_letters`` hold one :class:`DeadLetter` per invalid item, with the
reason. An invalid reading inside a gateway envelope costs only itself, never its
valid siblings; nothing is dropped silently and nothing raises on bad input.
Knows no Faust and no Kafka client: it works on :class:`RawMessage` values.
"""

from streams.ingest.dead_letter import DeadLetter, REASONS
from streams.ingest.messages import RawMessage
from streams.ingest.water import WaterBatch, decode_water

__all__ = ["DeadLetter", "RawMessage", "REASONS", "WaterBatch", "decode_water"]
