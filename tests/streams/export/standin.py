"""A local stand-in NGSI-LD broker (aiohttp.web on 127.0.0.1, any free port) for the upsert tests.

It records every request to ``/ngsi-ld/v1/entityOperations/upsert`` and answers from a script:
each scripted answer is ``(status, body)`` used once, in order; when the script runs out it
answers 204 (every entity upserted). An entity whose id is in ``refuse`` is listed in a 207
body's ``errors`` instead.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import orjson
from aiohttp import web

__all__ = ["StandIn", "Request", "running"]


@dataclass
class Request:
    content_type: str
    authorization: str | None
    entities: list


@dataclass
class StandIn:
    script: list = field(default_factory=list)
    refuse: set = field(default_factory=set)
    requests: list = field(default_factory=list)

    async def upsert(self, request: web.Request) -> web.Response:
        body = await request.read()
        entities = orjson.loads(body)
        self.requests.append(Request(request.headers.get("Content-Type", ""), request.headers.get("Authorization"),
                                     entities))
        if self.script:
            status, answer = self.script.pop(0)
            return web.Response(status=status, body=orjson.dumps(answer) if answer is not None else None,
                                content_type="application/json")
        refused = [e["id"] for e in entities if e["id"] in self.refuse]
        if refused:
            answer = {"success": [e["id"] for e in entities if e["id"] not in self.refuse],
                      "errors": [{"entityId": i, "error": {"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData",
                                                           "title": "Bad request data",
                                                           "detail": "attribute has an invalid value"}}
                                 for i in refused]}
            return web.json_response(answer, status=207)
        return web.Response(status=204)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/ngsi-ld/v1/entityOperations/upsert", self.upsert)
        return app


class running:
    """``with running(standin) as url:`` the stand-in served on a thread's event loop until the block ends
    (so a blocking caller, such as the CLI, can talk to it)."""

    def __init__(self, standin: StandIn):
        self.standin = standin
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        self.runner = web.AppRunner(self.standin.app())
        asyncio.run_coroutine_threadsafe(self.runner.setup(), self.loop).result(10)
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        asyncio.run_coroutine_threadsafe(site.start(), self.loop).result(10)
        port = site._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
