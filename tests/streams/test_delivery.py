"""Delivery checks without a broker: a producer double whose futures succeed or fail as told.

The real broker cases (a restarted broker refusing an idempotent producer) are in
tests/integration/test_delivery_check.py.
"""

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, UnknownProducerIdError
from kafka.future import Future

from streams.delivery import DeliveryCheck, ProduceError, close_producer
from streams.simulate.produce import produce


class ScriptedProducer:
    """Like kafka-python's producer: send() returns a future, flush() completes the pending ones.

    ``refuse(topic, key)`` -> an exception to fail that record with, or None to confirm it;
    ``raise_on_send`` keys make send() itself raise (as for a record too large).
    """

    def __init__(self, refuse=lambda topic, key: None, raise_on_send=(), complete_on_flush=True):
        self.refuse = refuse
        self.raise_on_send = set(raise_on_send)
        self.complete_on_flush = complete_on_flush
        self.pending: list[tuple[Future, str, bytes]] = []
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.flushes = 0

    def send(self, topic, value=None, key=None, headers=None, timestamp_ms=None):
        if key in self.raise_on_send:
            raise MessageSizeTooLargeError("the message is 2000000 bytes")
        future = Future()
        self.pending.append((future, topic, key))
        self.sent.append((topic, key, value))
        return future

    def flush(self, timeout=None):
        self.flushes += 1
        if not self.complete_on_flush:
            raise KafkaTimeoutError("Timeout waiting for future")
        for future, topic, key in self.pending:
            error = self.refuse(topic, key)
            future.failure(error) if error else future.success(("metadata", topic))
        self.pending = []


def test_all_confirmed_flush_returns_the_count():
    check = DeliveryCheck(ScriptedProducer())
    for i in range(5):
        check.send("t", b"v", key=b"%d" % i)
    assert check.flush() == 5 and check.confirmed == 5 and check.refused == 0


def test_refusals_raise_with_how_many_of_how_many_and_the_first_error():
    refused_keys = {b"3", b"7"}
    producer = ScriptedProducer(refuse=lambda topic, key: UnknownProducerIdError() if key in refused_keys else None)
    check = DeliveryCheck(producer)
    for i in range(10):
        check.send("city.water.readings.v1", b"v", key=b"%d" % i)
    with pytest.raises(ProduceError) as raised:
        check.flush()
    error = raised.value
    assert (error.refused, error.attempted, error.confirmed, error.unconfirmed) == (2, 10, 8, 0)
    assert "refused 2 of 10 messages" in str(error)
    assert error.first_error == "[Error 59] UnknownProducerIdError (topic city.water.readings.v1)"


def test_counts_are_cumulative_so_every_later_flush_raises_too():
    producer = ScriptedProducer(refuse=lambda topic, key: UnknownProducerIdError() if key == b"0" else None)
    check = DeliveryCheck(producer)
    check.send("t", b"v", key=b"0")
    with pytest.raises(ProduceError):
        check.flush()
    check.send("t", b"v", key=b"1")
    with pytest.raises(ProduceError, match="refused 1 of 2"):
        check.flush()


def test_a_send_refused_on_the_spot_flushes_what_is_in_flight_and_raises_at_once():
    producer = ScriptedProducer(raise_on_send={b"big"})
    check = DeliveryCheck(producer)
    check.send("t", b"v", key=b"a")
    with pytest.raises(ProduceError) as raised:
        check.send("t", b"v" * 10, key=b"big")
    assert (raised.value.refused, raised.value.attempted, raised.value.confirmed) == (1, 2, 1)
    assert raised.value.first_error == "[Error 10] MessageSizeTooLargeError: the message is 2000000 bytes (topic t)"


def test_a_bounded_flush_reports_records_without_an_outcome():
    check = DeliveryCheck(ScriptedProducer(complete_on_flush=False), flush_timeout_s=0.5)
    check.send("t", b"v")
    with pytest.raises(ProduceError) as raised:
        check.flush()
    assert (raised.value.refused, raised.value.unconfirmed) == (0, 1)
    assert "not confirmed in time" in str(raised.value) and "0.5 s" in raised.value.first_error


class StepSimulation:
    """A simulation double: ``steps`` city-hours of two messages each."""

    def __init__(self, domain="water", steps=3, start=0.0):
        self.domain = domain
        self.start = start
        self._steps = steps

    def steps(self):
        for hour in range(self._steps):
            yield self.start + hour * 3600, [(b"k%d-%d" % (hour, i), b"{}") for i in range(2)]


def test_produce_returns_the_confirmed_count(settings):
    producer = ScriptedProducer()
    assert produce(StepSimulation(steps=3), settings, producer=producer) == 6
    assert [topic for topic, _, _ in producer.sent] == ["glasscity.water.readings.v1"] * 6


def test_produce_stops_at_the_first_step_with_a_refusal(settings):
    producer = ScriptedProducer(refuse=lambda topic, key: UnknownProducerIdError() if key.startswith(b"k1-") else None)
    progress = []
    with pytest.raises(ProduceError) as raised:
        produce(StepSimulation(steps=5), settings, producer=producer, progress=lambda when, n: progress.append(n))
    assert (raised.value.refused, raised.value.attempted, raised.value.confirmed) == (2, 4, 2)
    assert progress == [2]                 # only the step the broker took was reported as done
    assert len(producer.sent) == 4         # nothing after the refused step was sent


class CloseTimesOut:
    def __init__(self):
        self.closes = []

    def close(self, timeout=None):
        self.closes.append(timeout)
        raise KafkaTimeoutError("Timeout waiting for future")


def test_closing_never_raises_so_it_cannot_hide_the_delivery_error():
    producer = CloseTimesOut()
    close_producer(producer, timeout_s=0.1)
    assert producer.closes == [0.1]
