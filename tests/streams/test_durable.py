"""The publisher's contract: confirmed or retried, never skipped (a stand-in producer decides outcomes)."""

import asyncio

import pytest

from streams.durable import Outgoing, Publisher, PublishFailed


class Producer:
    """Answers each send with a future; ``refuse(record, attempt)`` says whether it fails."""

    def __init__(self, refuse):
        self.refuse = refuse
        self.attempts: dict[bytes, int] = {}

    async def send(self, topic, key, value, partition, timestamp, headers):
        n = self.attempts[key] = self.attempts.get(key, 0) + 1
        outcome = self.refuse(key, n)
        if outcome == "at_enqueue":
            raise ValueError("message too large")
        future = asyncio.get_running_loop().create_future()
        if outcome:
            future.set_exception(ConnectionError("broker refused"))
        else:
            future.set_result((topic, key, n))
        return future


class App:
    def __init__(self, producer):
        self.producer = producer


def records(n):
    return [Outgoing("t", f"k{i}".encode(), b"v", "alert") for i in range(n)]


def publish(refuse, n=5, attempts=3):
    failures = []
    producer = Producer(refuse)
    publisher = Publisher(App(producer), attempts=attempts, pause_s=0.0,
                          on_failure=lambda label, kind, error: failures.append((label, kind, type(error))))
    result = asyncio.run(publisher.send_all(records(n), "water"))
    return result, failures, producer


def test_every_record_confirmed_in_order():
    result, failures, _ = publish(lambda key, n: False)
    assert result == [("t", f"k{i}".encode(), 1) for i in range(5)] and failures == []


def test_refused_records_are_sent_again_until_confirmed():
    result, failures, producer = publish(lambda key, n: key in (b"k1", b"k3") and n < 3)
    assert [r[2] for r in result] == [1, 3, 1, 3, 1]
    assert failures == [("water", "alert", ConnectionError)] * 4
    assert producer.attempts == {b"k0": 1, b"k1": 3, b"k2": 1, b"k3": 3, b"k4": 1}


def test_a_record_refused_every_time_stops_with_publish_failed():
    with pytest.raises(PublishFailed, match="1 of 5 records still refused after 3 attempts"):
        publish(lambda key, n: key == b"k2")


def test_a_refusal_at_enqueue_is_a_failure_like_any_other():
    with pytest.raises(PublishFailed, match="ValueError: message too large"):
        publish(lambda key, n: "at_enqueue" if key == b"k0" else False)
