"""Producing with a delivery check: every send's outcome is counted, refusals raise.

kafka-python's ``send()`` only enqueues a record; whether the broker took it is known
later, from the future it returns. A producer that never looks reports records as
sent that the broker refused: after a restart of the embedded broker an idempotent
producer's sends all fail with ``UnknownProducerId``, and nothing else notices.

Contract of :class:`DeliveryCheck` (one per producer):

- :meth:`~DeliveryCheck.send` enqueues one record and counts its outcome when the
  broker answers (confirmed) or the producer gives up (refused: an error response,
  or ``delivery_timeout_ms`` passed with the broker unreachable). A send refused on
  the spot (record too large, no metadata within ``max_block_ms``) is counted too,
  and the check flushes and raises at once rather than block on every later send.
- :meth:`~DeliveryCheck.flush` waits until every record sent so far has an outcome
  and raises :class:`ProduceError` if any record has been refused since the check
  began (the counts are cumulative), else returns the number confirmed.
- :func:`close_producer` closes without ever raising, so closing cannot hide the
  ``ProduceError`` being raised.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["ProduceError", "DeliveryCheck", "make_producer", "close_producer"]

log = logging.getLogger(__name__)


class ProduceError(RuntimeError):
    """The broker refused (or did not confirm) some of the records sent.

    ``refused`` records got an error; ``unconfirmed`` had no outcome yet when a
    bounded flush gave up; ``attempted`` records were sent in all, ``confirmed`` of
    them acknowledged; ``first_error`` describes the first refusal.
    """

    def __init__(self, refused: int, attempted: int, confirmed: int, first_error: str, unconfirmed: int = 0):
        self.refused = refused
        self.unconfirmed = unconfirmed
        self.attempted = attempted
        self.confirmed = confirmed
        self.first_error = first_error
        parts = [f"the broker refused {refused} of {attempted} messages"]
        if unconfirmed:
            parts.append(f"{unconfirmed} more were not confirmed in time")
        super().__init__(f"{'; '.join(parts)} ({confirmed} confirmed); first error: {first_error}")


class DeliveryCheck:
    """Sends through ``producer`` and counts each record's outcome (thread-safe: the
    producer's I/O thread runs the callbacks)."""

    def __init__(self, producer, flush_timeout_s: float | None = None):
        self.producer = producer
        self.flush_timeout_s = flush_timeout_s   # None = until the producer's own delivery timeout
        self._lock = threading.Lock()
        self.attempted = 0
        self.confirmed = 0
        self.refused = 0
        self.first_error: str | None = None

    def send(self, topic: str, value: bytes, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None, timestamp_ms: int | None = None) -> None:
        from kafka.errors import KafkaError

        self.attempted += 1
        try:
            future = self.producer.send(topic, value=value, key=key, headers=headers, timestamp_ms=timestamp_ms)
        except KafkaError as error:
            self._refused(topic, error)
            self.flush()   # raises: the refusal is counted, and what is in flight gets its outcome first
            raise AssertionError("unreachable: flush raises after a refusal")  # pragma: no cover
        future.add_callback(self._confirmed)
        future.add_errback(self._refused, topic)   # called as _refused(topic, error)

    def _confirmed(self, _metadata) -> None:
        with self._lock:
            self.confirmed += 1

    def _refused(self, topic: str, error: BaseException) -> None:
        with self._lock:
            self.refused += 1
            if self.first_error is None:
                self.first_error = f"{_describe(error)} (topic {topic})"

    def flush(self) -> int:
        """Wait for every outcome; raise :class:`ProduceError` on any refusal, else return ``confirmed``."""
        from kafka.errors import KafkaTimeoutError

        try:
            self.producer.flush(timeout=self.flush_timeout_s)
        except KafkaTimeoutError:
            pass   # counted below as unconfirmed
        with self._lock:
            refused, confirmed, first_error = self.refused, self.confirmed, self.first_error
        unconfirmed = self.attempted - confirmed - refused
        if refused or unconfirmed:
            if first_error is None:
                waited = "the flush" if self.flush_timeout_s is None else f"{self.flush_timeout_s:g} s"
                first_error = f"no answer from the broker within {waited}"
            raise ProduceError(refused, self.attempted, confirmed, first_error, unconfirmed)
        return confirmed


def _describe(error: BaseException) -> str:
    """The error's type and message, the type once (Kafka errors repeat it in their text)."""
    text, name = str(error), type(error).__name__
    return text if name in text else f"{name}: {text}" if text else name


def make_producer(bootstrap: str, client_id: str, **config):
    """A kafka-python producer that waits for every replica (``acks="all"``); ``config`` overrides."""
    from kafka import KafkaProducer

    options = dict(bootstrap_servers=bootstrap.split(","), client_id=client_id, acks="all")
    options.update(config)
    return KafkaProducer(**options)


def close_producer(producer, timeout_s: float = 10.0) -> None:
    """Close ``producer`` within about ``timeout_s``; never raises (a failed close is only logged)."""
    from kafka.errors import KafkaError

    try:
        producer.close(timeout=timeout_s)
    except KafkaError as error:
        # close() flushes first and raises when records are still pending after the
        # timeout (the broker is gone). Its I/O thread is a daemon thread: it ends with
        # the process, and those records were never counted as confirmed.
        log.warning("producer not closed cleanly, records still pending: %s", error)
