"""Send a simulation's messages to the readings topic, paced by a simulated clock."""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["produce", "make_producer"]


def make_producer(bootstrap: str):
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=bootstrap.split(","), client_id="glasscity-simulator", acks="all",
                         linger_ms=10, batch_size=512 * 1024, max_request_size=8 * 1024 * 1024,
                         retries=5)


def produce(simulation, settings, hour_seconds: float = 0.0,
            progress: Callable[[int, int], None] | None = None, producer=None) -> int:
    """Produce every city-hour; ``hour_seconds`` of wall time per city-hour (0 = no pacing).

    Returns the number of messages sent. Each hour is flushed before the next one
    starts, so a reader sees hours complete and in order.
    """
    own = producer is None
    producer = producer or make_producer(settings.bootstrap)
    topic = settings.topic("water.readings.v1")
    sent = 0
    started = time.monotonic()
    try:
        for hour, (_when, messages) in enumerate(simulation.hours()):
            for key, value in messages:
                producer.send(topic, key=key, value=value)
            producer.flush()
            sent += len(messages)
            if progress:
                progress(hour, len(messages))
            if hour_seconds > 0:
                delay = started + (hour + 1) * hour_seconds - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
    finally:
        if own:
            producer.close(timeout=10)
    return sent
