"""The page's HTTP contract (aiohttp's test server, a room fed by hand): routes, the welfare session, SSE."""

from __future__ import annotations

import asyncio
import dataclasses

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.control.page import SESSION_COOKIE, page_app, serve_page
from streams.control.room import ControlRoom
from tests.streams.control.test_room import DOMAINS, T0, WELFARE, _event, _item

TOKEN = "welfare-token-for-page-tests"


def _room(settings, token: str = TOKEN) -> ControlRoom:
    room = ControlRoom(dataclasses.replace(settings, welfare_token=token), DOMAINS, clock=lambda: T0 + 3600)
    room.ingest(_item(_event("water.burst", "wm-aaa", "raised", T0 + 60)))
    if token:
        room.ingest(_item(_event("water.no_use_24h", "wm-bbb", "raised", T0 + 60), topic=WELFARE))
    return room


def _run(room: ControlRoom, check) -> None:
    async def go():
        async with TestClient(TestServer(page_app(room))) as client:
            await check(client)

    asyncio.run(go())


def test_general_page_state_and_assets(settings):
    async def check(client):
        page = await client.get("/")
        assert page.status == 200 and 'data-view="general"' in await page.text()
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        for asset, kind in (("page.js", "javascript"), ("page.css", "css")):
            response = await client.get(f"/static/{asset}")
            assert response.status == 200 and kind in response.headers["Content-Type"]
        assert (await client.get("/static/../page.py")).status == 404
        state = orjson.loads(await (await client.get("/api/state")).read())
        assert state["view"] == "general" and state["open"]["total"] == 1
        assert "no_use_24h" not in orjson.dumps(state).decode()
        assert (await client.get("/api/state?view=other")).status == 400

    _run(_room(settings), check)


def test_welfare_view_needs_the_token_and_a_session(settings):
    async def check(client):
        assert (await client.get("/api/state?view=welfare")).status == 403
        assert (await client.get("/events?view=welfare")).status == 403
        form = await client.get("/welfare")
        assert form.status == 200 and 'name="token"' in await form.text()
        wrong = await client.post("/welfare", data={"token": "guess"}, allow_redirects=False)
        assert wrong.status == 403 and "not the welfare role" in await wrong.text()
        assert SESSION_COOKIE not in wrong.cookies and TOKEN not in await wrong.text()
        right = await client.post("/welfare", data={"token": TOKEN}, allow_redirects=False)
        assert right.status == 303 and right.headers["Location"] == "/welfare"
        cookie = right.cookies[SESSION_COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie.value != TOKEN
        page = await client.get("/welfare")
        assert 'data-view="welfare"' in await page.text()
        state = orjson.loads(await (await client.get("/api/state?view=welfare")).read())
        assert state["open"]["total"] == 2 and "water.no_use_24h" in {r["detector"] for r in state["feed"]}
        await client.post("/welfare/logout", allow_redirects=False)
        assert (await client.get("/api/state?view=welfare")).status == 403

    _run(_room(settings), check)


def test_no_welfare_role_configured_means_no_welfare_view(settings):
    async def check(client):
        assert (await client.get("/welfare")).status == 404
        assert (await client.post("/welfare", data={"token": ""})).status == 404

    _run(_room(settings, token=""), check)


def test_event_stream_sends_the_view_then_each_alert(settings):
    room = _room(settings)

    async def check(client):
        response = await client.get("/events")
        assert response.headers["Content-Type"].startswith("text/event-stream")

        async def next_event():
            name = data = None
            while True:
                line = (await response.content.readline()).decode().rstrip("\n")
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = orjson.loads(line[6:])
                elif line == "" and name:
                    return name, data

        name, state = await asyncio.wait_for(next_event(), 5)
        assert name == "state" and state["open"]["total"] == 1
        room.ingest(_item(_event("traffic.stuck", "urn:ngsi-ld:TrafficFlowObserved:TD-9", "raised", T0 + 90)))
        room.ingest(_item(_event("water.no_use_24h", "wm-ccc", "raised", T0 + 95), topic=WELFARE))
        room.refresh()
        name, alert = await asyncio.wait_for(next_event(), 5)
        assert name == "alert" and alert["subject"] == "urn:ngsi-ld:TrafficFlowObserved:TD-9"
        name, state = await asyncio.wait_for(next_event(), 5)       # the welfare alert never came
        assert name == "state" and state["open"]["total"] == 2
        response.close()

    _run(room, check)


def test_serve_page_binds_a_free_port_and_refuses_a_taken_one(settings):
    async def go():
        room = _room(settings)
        runner, port = await serve_page(room, "127.0.0.1", 0)
        try:
            assert port > 0
            with pytest.raises(OSError):
                await serve_page(room, "127.0.0.1", port)
        finally:
            await runner.cleanup()

    asyncio.run(go())


def test_signing_out_ends_an_open_welfare_stream(settings):
    room = _room(settings)

    async def check(client):
        assert (await client.post("/welfare", data={"token": TOKEN}, allow_redirects=False)).status == 303
        stream = await client.get("/events?view=welfare")
        assert stream.status == 200
        async def until_state():
            while not (await stream.content.readline()).startswith(b"event: state"):
                pass

        await asyncio.wait_for(until_state(), 5)
        await client.post("/welfare/logout", allow_redirects=False)
        room.ingest(_item(_event("water.no_use_24h", "wm-after-logout", "raised", T0 + 99), topic=WELFARE))
        rest = await asyncio.wait_for(stream.content.read(), 5)     # the server ends the stream
        assert b"wm-after-logout" not in rest

    _run(room, check)
