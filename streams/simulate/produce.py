"""Send simulations' messages to their readings topics, paced by one simulated clock.

Every send is checked (:class:`streams.delivery.DeliveryCheck`): :func:`produce`
returns the number of messages the broker confirmed, and raises
:class:`~streams.delivery.ProduceError` at the first step flush (or the final one)
after any message was refused, saying how many of how many.
"""

from __future__ import annotations

import heapq
import time
from typing import Callable

from streams.delivery import DeliveryCheck, ProduceError, close_producer
from streams.delivery import make_producer as _make_producer
from streams.kafka_security import kafka_python_security

__all__ = ["produce", "make_producer", "ProduceError"]


def make_producer(bootstrap: str, **config):
    """The simulator's producer; ``config`` overrides kafka-python settings (e.g. timeouts in tests)."""
    options = dict(linger_ms=10, batch_size=512 * 1024, max_request_size=8 * 1024 * 1024, retries=5)
    options.update(config)
    return _make_producer(bootstrap, "glasscity-simulator", **options)


def _tagged(simulation):
    for when, messages in simulation.steps():
        yield when, simulation.domain, messages


def enrolments(simulations, settings) -> list[tuple[bytes, bytes]]:
    """The simulated city's welfare office: every simulated household enrolled (register records).
    Needs the pseudonym key (none: nobody is enrolled, and no welfare alert is raised)."""
    from streams.consent import Enrolment, encode, record_key
    from streams.pseudonym import Pseudonymizer

    meters = [m for s in simulations for m in getattr(s, "meter_ids", ())]
    if not meters or not (settings.pseudonym_key or settings.pseudonym_key_file):
        return []
    pseudonyms = Pseudonymizer(settings.require_pseudonym_key()).many("wm", meters)
    value = encode(Enrolment(True, "simulated"))
    return [(record_key("enrolment", p), value) for p in pseudonyms]


def produce(simulations, settings, hour_seconds: float = 0.0,
            progress: Callable[[float, int], None] | None = None, producer=None, enrol: bool = True) -> int:
    """Produce every step of every simulation, merged in city-time order.

    ``enrol``: first enrol every simulated household in the welfare check (:func:`enrolments`;
    confirmed, not counted in the result).

    ``hour_seconds`` of wall time per city-hour (0 = no pacing). Each step is flushed
    before a later city time is sent, so a reader sees time advance in order; a step
    with a refused message stops the run there with :class:`ProduceError`.
    ``progress(city_time, confirmed)`` is called after each step's flush. Returns the
    number of messages the broker confirmed (all of them, or it raises).
    """
    if not isinstance(simulations, (list, tuple)):
        simulations = [simulations]
    own = producer is None
    producer = producer or make_producer(settings.bootstrap, **kafka_python_security(settings))
    check = DeliveryCheck(producer)
    topics = {s.domain: settings.topic(f"{s.domain}.readings.v1") for s in simulations}
    city_start = min(s.start for s in simulations)
    current = None
    try:
        if enrol:
            from streams.consent import REGISTER_TOPICS

            register = settings.topic(REGISTER_TOPICS["enrolment"])
            for key, value in enrolments(simulations, settings):
                check.send(register, key=key, value=value)
            check.flush()
            check = DeliveryCheck(producer)
        started = time.monotonic()
        for when, domain, messages in heapq.merge(*(_tagged(s) for s in simulations), key=lambda item: item[0]):
            if current is not None and when > current:
                confirmed = check.flush()
                if progress:
                    progress(current, confirmed)
                if hour_seconds > 0:
                    delay = started + (when - city_start) / 3600.0 * hour_seconds - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
            current = when
            topic = topics[domain]
            for key, value in messages:
                check.send(topic, key=key, value=value)
        return check.flush()
    finally:
        if own:
            close_producer(producer, timeout_s=10)
