"""Send simulations' messages to their readings topics, paced by one simulated clock."""

from __future__ import annotations

import heapq
import time
from typing import Callable

__all__ = ["produce", "make_producer"]


def make_producer(bootstrap: str):
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=bootstrap.split(","), client_id="glasscity-simulator", acks="all",
                         linger_ms=10, batch_size=512 * 1024, max_request_size=8 * 1024 * 1024,
                         retries=5)


def _tagged(simulation):
    for when, messages in simulation.steps():
        yield when, simulation.domain, messages


def produce(simulations, settings, hour_seconds: float = 0.0,
            progress: Callable[[float, int], None] | None = None, producer=None) -> int:
    """Produce every step of every simulation, merged in city-time order.

    ``hour_seconds`` of wall time per city-hour (0 = no pacing). Each step is flushed
    before a later city time is sent, so a reader sees time advance in order.
    Returns the number of messages sent.
    """
    if not isinstance(simulations, (list, tuple)):
        simulations = [simulations]
    own = producer is None
    producer = producer or make_producer(settings.bootstrap)
    topics = {s.domain: settings.topic(f"{s.domain}.readings.v1") for s in simulations}
    city_start = min(s.start for s in simulations)
    sent = 0
    started = time.monotonic()
    current = None
    try:
        for when, domain, messages in heapq.merge(*(_tagged(s) for s in simulations), key=lambda item: item[0]):
            if current is not None and when > current:
                producer.flush()
                if progress:
                    progress(current, sent)
                if hour_seconds > 0:
                    delay = started + (when - city_start) / 3600.0 * hour_seconds - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
            current = when
            topic = topics[domain]
            for key, value in messages:
                producer.send(topic, key=key, value=value)
            sent += len(messages)
        producer.flush()
    finally:
        if own:
            producer.close(timeout=10)
    return sent
