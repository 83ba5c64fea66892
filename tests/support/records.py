"""Produce raw records to the project's topics on a test broker (kafka-python, flushed before returning)."""

from __future__ import annotations

from kafka import KafkaProducer

__all__ = ["produce_records"]


def produce_records(settings, records, key: bytes = b"k") -> None:
    """Send each ``(short topic name, value bytes)`` of ``records`` with ``key``; flush, then close."""
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap)
    try:
        for short, value in records:
            producer.send(settings.topic(short), value=value, key=key)
        producer.flush(10)
    finally:
        producer.close()
