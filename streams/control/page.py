"""The control room's live alert page: an aiohttp web app over a :class:`~streams.control.room.ControlRoom`.

Routes:

* ``GET /`` — the general page (static HTML, script and style from ``static/``); it draws what ``/events``
  sends, without reload.
* ``GET /events`` — server-sent events: ``state`` (the whole view, at connection and every
  :data:`~streams.control.room.REFRESH_S`) and ``alert`` (one alert event as it arrives). ``/events?view=welfare``
  adds the welfare book, for the welfare role's session only.
* ``GET /api/state`` (``?view=welfare``) — the same view as one JSON document, for scripts and checks.
* ``GET /welfare`` — the welfare view for a welfare session, else a form asking for the role's token;
  ``POST /welfare`` checks the token (``welfare_token`` setting, compared in constant time) and opens a
  session: a random id in an HttpOnly, SameSite=Strict cookie, valid :data:`SESSION_S`, kept in memory
  only (a worker restart ends every session). The token is never logged or echoed.
* ``POST /welfare/logout`` ends the session.

No welfare alert ever reaches a response without a valid session: the general view is built from the
general book alone (:meth:`ControlRoom.view`). Every response forbids framing and caching of welfare
data, and the page loads nothing from outside (Content-Security-Policy ``default-src 'self'``).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from importlib.resources import files

import orjson
from aiohttp import web

from streams.control.room import ControlRoom

__all__ = ["page_app", "serve_page", "SESSION_COOKIE", "SESSION_S", "KEEPALIVE_S"]

#: Cookie that carries a welfare session id.
SESSION_COOKIE = "glasscity_welfare"
#: How long a welfare session lasts (s): one control-room shift.
SESSION_S = 12 * 3600.0
#: Comment line sent on an idle event stream, so proxies and browsers keep it open (s).
KEEPALIVE_S = 15.0

_STATIC = files("streams.control") / "static"
_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
_ROOM = web.AppKey("room", ControlRoom)
_SESSIONS = web.AppKey("sessions", dict)


def _static(name: str) -> bytes:
    return (_STATIC / name).read_bytes()


def _json(data) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)


def _welfare_session(request: web.Request) -> bool:
    sessions: dict[str, float] = request.app[_SESSIONS]
    session = request.cookies.get(SESSION_COOKIE)
    if not session:
        return False
    expiry = sessions.get(session)
    if expiry is None:
        return False
    if expiry < time.monotonic():
        del sessions[session]
        return False
    return True


def _wants_welfare(request: web.Request) -> bool:
    """``?view=welfare`` asked for: allowed only with a session (403 otherwise)."""
    if request.query.get("view", "general") not in ("general", "welfare"):
        raise web.HTTPBadRequest(text="view must be general or welfare\n")
    if request.query.get("view") != "welfare":
        return False
    if not _welfare_session(request):
        raise web.HTTPForbidden(text="the welfare view needs a welfare session: sign in at /welfare\n")
    return True


def _page(view: str) -> web.Response:
    html = _static("page.html").replace(b"{{view}}", view.encode())
    return web.Response(body=html, content_type="text/html", charset="utf-8", headers=_HEADERS)


async def _index(request: web.Request) -> web.Response:
    return _page("general")


async def _welfare(request: web.Request) -> web.Response:
    room: ControlRoom = request.app[_ROOM]
    if not room.welfare_enabled:
        raise web.HTTPNotFound(text="no welfare role is configured on this worker (GLASSCITY_WELFARE_TOKEN)\n")
    if _welfare_session(request):
        return _page("welfare")
    return web.Response(body=_static("login.html"), content_type="text/html", charset="utf-8", headers=_HEADERS)


async def _login(request: web.Request) -> web.Response:
    room: ControlRoom = request.app[_ROOM]
    if not room.welfare_enabled:
        raise web.HTTPNotFound(text="no welfare role is configured on this worker\n")
    form = await request.post()
    given = str(form.get("token", ""))
    if not given or not hmac.compare_digest(given.encode(), room.settings.welfare_token.encode()):
        await asyncio.sleep(0.5)        # no fast guessing
        body = _static("login.html").replace(b"<!--error-->", b'<p class="error">That token is not the welfare '
                                                                 b"role's.</p>")
        return web.Response(status=403, body=body, content_type="text/html", charset="utf-8", headers=_HEADERS)
    session = secrets.token_urlsafe(32)
    sessions: dict[str, float] = request.app[_SESSIONS]
    now = time.monotonic()
    for expired in [s for s, expiry in sessions.items() if expiry < now]:
        del sessions[expired]
    sessions[session] = now + SESSION_S
    response = web.Response(status=303, headers={**_HEADERS, "Location": "/welfare"})
    response.set_cookie(SESSION_COOKIE, session, max_age=int(SESSION_S), httponly=True, samesite="Strict",
                        path="/", secure=request.secure)
    return response


async def _logout(request: web.Request) -> web.Response:
    request.app[_SESSIONS].pop(request.cookies.get(SESSION_COOKIE, ""), None)
    response = web.Response(status=303, headers={**_HEADERS, "Location": "/"})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def _state(request: web.Request) -> web.Response:
    room: ControlRoom = request.app[_ROOM]
    return web.Response(body=_json(room.view(_wants_welfare(request))), content_type="application/json",
                        headers=_HEADERS)


async def _events(request: web.Request) -> web.StreamResponse:
    room: ControlRoom = request.app[_ROOM]
    welfare = _wants_welfare(request)
    response = web.StreamResponse(headers={**_HEADERS, "Content-Type": "text/event-stream",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    subscriber = room.subscribe(welfare)
    try:
        await response.write(b"retry: 2000\n\n")
        while not subscriber.dropped:
            try:
                name, data = await asyncio.wait_for(subscriber.queue.get(), KEEPALIVE_S)
            except asyncio.TimeoutError:
                name, data = None, None
            if welfare and not _welfare_session(request):    # signed out or expired: not one more alert
                break
            if name is None:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(b"event: " + name.encode() + b"\ndata: " + _json(data) + b"\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        room.unsubscribe(subscriber)
    return response


async def _asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    types = {"page.js": "application/javascript", "page.css": "text/css"}
    if name not in types:
        raise web.HTTPNotFound()
    return web.Response(body=_static(name), content_type=types[name], charset="utf-8", headers=_HEADERS)


def page_app(room: ControlRoom) -> web.Application:
    """The page's aiohttp application over ``room``."""
    app = web.Application()
    app[_ROOM] = room
    app[_SESSIONS] = {}
    app.add_routes([web.get("/", _index), web.get("/events", _events), web.get("/api/state", _state),
                    web.get("/welfare", _welfare), web.post("/welfare", _login),
                    web.post("/welfare/logout", _logout), web.get("/static/{name}", _asset)])
    return app


async def serve_page(room: ControlRoom, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving the page on ``host``:``port`` (0 = a free port) in the running loop; returns the
    runner (``await runner.cleanup()`` stops it) and the port bound. Raises OSError if it cannot bind."""
    runner = web.AppRunner(page_app(room), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = site._server.sockets[0].getsockname()[1] if site._server and site._server.sockets else port
    return runner, bound
