"""streams.fetches without a broker: batch bounds, stale fetches, acks in Faust's own structures."""

from __future__ import annotations

import asyncio
import weakref
from collections import defaultdict
from types import SimpleNamespace

import pytest

from faust.types import TP
from streams.fetches import App, FetchBuffer, FetchConsumer, FetchTransport, check_faust


class Record(SimpleNamespace):
    pass


def records(topic, partition, offsets):
    return [Record(topic=topic, partition=partition, offset=o, key=b"k", value=b"{}") for o in offsets]


class FakeConsumer:
    def __init__(self, app):
        self.app = app
        self._committed_offset = defaultdict(lambda: None)
        self._acked = defaultdict(list)
        self._acked_index = defaultdict(set)
        self._n_acked = 0
        self._commit_every = 5
        self._unacked_messages = weakref.WeakSet()
        self._waiting_for_ack = None
        self.flow_active = True
        self.should_stop = False
        self.commits = 0

    ack_offsets = FetchConsumer.ack_offsets

    async def commit(self):
        self.commits += 1


def fake_app():
    flow = SimpleNamespace(active=True)
    app = SimpleNamespace(consumer_generation_id=1, monitor=SimpleNamespace(stream_inbound_time={}),
                          flow_control=SimpleNamespace(is_active=lambda: flow.active),
                          topics=SimpleNamespace(acks_enabled_for=lambda topic: True), flow=flow)
    app.consumer = FakeConsumer(app)
    return app


def test_the_installed_faust_has_what_the_hand_off_relies_on():
    check_faust()
    assert FetchTransport.Consumer is FetchConsumer
    assert issubclass(App, __import__("faust").App)


def test_batches_are_bounded_split_in_order_and_acked_in_the_consumer():
    async def main():
        app = fake_app()
        buffer = FetchBuffer(app, "t", max_records=4, within_s=0.0)
        tp0, tp1 = TP("t", 0), TP("t", 1)
        await buffer.put(tp0, records("t", 0, range(0, 6)), 1, app.consumer)
        await buffer.put(tp1, records("t", 1, range(10, 12)), 1, app.consumer)
        first = await buffer.take()
        assert [r.offset for r in first.records] == [0, 1, 2, 3]
        assert len(app.consumer._unacked_messages) == 1          # a revocation waits for it
        second = await buffer.take()
        assert [(r.partition, r.offset) for r in second.records] == [(0, 4), (0, 5), (1, 10), (1, 11)]
        assert buffer.pending == 0
        assert app.consumer._acked == {}                        # nothing acknowledged before ack()
        assert await second.ack() == 4
        assert app.consumer.commits == 0                        # 4 < broker_commit_every (5)
        assert await first.ack() == 4
        assert await first.ack() == 0                           # once
        assert app.consumer.commits == 1 and app.consumer._n_acked == 0
        assert sorted(app.consumer._acked[tp0]) == [0, 1, 2, 3, 4, 5] and app.consumer._acked[tp1] == [10, 11]
        assert len(app.consumer._unacked_messages) == 0
        assert set(app.monitor.stream_inbound_time) == {tp0, tp1}

    asyncio.run(main())


def test_offsets_below_the_committed_one_are_not_acked_again():
    app = fake_app()
    tp = TP("t", 0)
    app.consumer._committed_offset[tp] = 3
    assert app.consumer.ack_offsets({tp: [1, 2, 3, 4, 4]}) == 2
    assert app.consumer._acked[tp] == [3, 4]


def test_fetches_from_before_a_rebalance_are_dropped_unacknowledged():
    async def main():
        app = fake_app()
        buffer = FetchBuffer(app, "t", max_records=100, within_s=0.0)
        await buffer.put(TP("t", 0), records("t", 0, range(3)), 1, app.consumer)
        app.consumer_generation_id = 2                          # a rebalance since that fetch
        await buffer.put(TP("t", 0), records("t", 0, range(7, 9)), 2, app.consumer)
        batch = await buffer.take()
        assert [r.offset for r in batch.records] == [7, 8]
        assert buffer.dropped == 3
        app.flow.active = False                                 # a rebalance in progress
        await buffer.put(TP("t", 0), records("t", 0, range(9, 10)), 2, app.consumer)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(buffer.take(), 0.3)
        assert buffer.dropped == 4 and app.consumer._acked == {}

    asyncio.run(main())


def test_a_batch_waits_within_s_for_more_then_goes_with_what_it_has():
    async def main():
        app = fake_app()
        buffer = FetchBuffer(app, "t", max_records=10, within_s=0.3)
        await buffer.put(TP("t", 0), records("t", 0, range(2)), 1, app.consumer)

        async def later():
            await asyncio.sleep(0.05)
            await buffer.put(TP("t", 0), records("t", 0, range(2, 5)), 1, app.consumer)

        task = asyncio.ensure_future(later())
        batch = await buffer.take()
        await task
        assert [r.offset for r in batch.records] == [0, 1, 2, 3, 4]

    asyncio.run(main())


def test_a_full_buffer_holds_the_fetcher_back():
    async def main():
        app = fake_app()
        buffer = FetchBuffer(app, "t", max_records=2, within_s=0.0)   # limit: 4 records
        await buffer.put(TP("t", 0), records("t", 0, range(4)), 1, app.consumer)
        blocked = asyncio.ensure_future(buffer.put(TP("t", 0), records("t", 0, range(4, 6)), 1, app.consumer))
        await asyncio.sleep(0.1)
        assert not blocked.done()
        await buffer.take()
        await asyncio.wait_for(blocked, 1.0)
        assert buffer.pending == 4

    asyncio.run(main())
