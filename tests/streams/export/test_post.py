"""streams.export.post against a local stand-in NGSI-LD broker: batches, content type, the 207
partial failure, retries on 503 and on a broker that is not there, whole-batch refusals."""

from __future__ import annotations

import asyncio

import pytest

from streams.export.post import UPSERT_PATH, post_entities, upsert_url
from tests.streams.export.standin import StandIn, running


def entities(n: int, start: int = 0) -> list[dict]:
    return [{"id": f"urn:ngsi-ld:WasteContainer:B{i}", "type": "WasteContainer",
             "fillingLevel": {"type": "Property", "value": i / 100}} for i in range(start, start + n)]


def post(items, url, **options):
    waits = []

    async def no_sleep(seconds):
        waits.append(seconds)

    report = asyncio.run(post_entities(items, url, sleep=no_sleep, **options))
    return report, waits


def test_entities_go_in_batches_as_json_ld():
    standin = StandIn()
    with running(standin) as url:
        report, waits = post(entities(250), url, batch_size=100, token="s3cret-token")
    assert [len(r.entities) for r in standin.requests] == [100, 100, 50]
    assert [e["id"] for r in standin.requests for e in r.entities] == [e["id"] for e in entities(250)]
    assert {r.content_type for r in standin.requests} == {"application/ld+json"}
    assert {r.authorization for r in standin.requests} == {"Bearer s3cret-token"}
    assert (report.batches, report.sent, report.upserted, report.failures, waits) == (3, 250, 250, [], [])
    assert "s3cret-token" not in report.summary()


def test_a_batch_sends_only_the_newest_entity_of_each_id():
    standin = StandIn()
    older = entities(3)
    newer = [dict(e, fillingLevel={"type": "Property", "value": 0.99}) for e in older[:2]]
    with running(standin) as url:
        report, _ = post(older + newer, url)
    sent = standin.requests[0].entities
    assert [e["id"] for e in sent] == [older[2]["id"], newer[0]["id"], newer[1]["id"]]
    assert [e["fillingLevel"]["value"] for e in sent] == [0.02, 0.99, 0.99]
    assert standin.requests[0].authorization is None and report.sent == 3


def test_a_207_reports_each_refused_entity_and_counts_the_rest():
    standin = StandIn(refuse={"urn:ngsi-ld:WasteContainer:B3", "urn:ngsi-ld:WasteContainer:B7"})
    with running(standin) as url:
        report, waits = post(entities(10), url, batch_size=5)
    assert report.upserted == 8 and report.failed == 2 and waits == []
    assert [(f.batch, f.entity_id) for f in report.failures] == [(1, "urn:ngsi-ld:WasteContainer:B3"),
                                                                 (2, "urn:ngsi-ld:WasteContainer:B7")]
    assert report.failures[0].reason == "Bad request data: attribute has an invalid value"
    assert report.failures[0].line() == ("batch 1: urn:ngsi-ld:WasteContainer:B3: Bad request data: attribute "
                                         "has an invalid value")


def test_a_503_is_retried_with_a_growing_backoff_then_succeeds():
    standin = StandIn(script=[(503, {"title": "busy"}), (503, None), (502, {"detail": "proxy"})])
    with running(standin) as url:
        report, waits = post(entities(4), url, batch_size=4, retries=5, backoff_s=0.5)
    assert len(standin.requests) == 4 and all(r.entities == entities(4) for r in standin.requests)
    assert waits == [0.5, 1.0, 2.0]
    assert report.upserted == 4 and report.failures == [] and report.retries == 3


def test_a_batch_that_keeps_failing_is_reported_and_the_next_one_is_sent():
    standin = StandIn(script=[(503, {"title": "Service unavailable"})] * 3)
    with running(standin) as url:
        report, waits = post(entities(4), url, batch_size=2, retries=2, backoff_s=1.0)
    assert [len(r.entities) for r in standin.requests] == [2, 2, 2, 2]     # 3 attempts at batch 1, then batch 2
    assert waits == [1.0, 2.0]
    assert report.upserted == 2 and report.failed == 2
    assert [f.line() for f in report.failures] == [
        "batch 1: the whole batch: gave up after 3 attempts: HTTP 503: Service unavailable"]


def test_a_client_error_refuses_the_batch_without_retry():
    standin = StandIn(script=[(400, {"title": "Invalid request", "detail": "not an array"})])
    with running(standin) as url:
        report, waits = post(entities(2), url)
    assert len(standin.requests) == 1 and waits == []
    assert [f.line() for f in report.failures] == ["batch 1: the whole batch: HTTP 400: Invalid request: not an array"]


def test_connection_errors_are_retried_then_reported():
    standin = StandIn()
    with running(standin) as url:
        pass                                   # the port is closed again: nothing listens there
    report, waits = post(entities(1), url, retries=2, backoff_s=0.1)
    assert waits == [0.1, 0.2] and report.upserted == 0
    assert "gave up after 3 attempts: ClientConnectorError" in report.failures[0].reason


@pytest.mark.parametrize("base", ["http://broker:1026", "http://broker:1026/"])
def test_the_upsert_endpoint_is_under_the_base_url(base):
    assert upsert_url(base) == "http://broker:1026" + UPSERT_PATH
