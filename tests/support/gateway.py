"""A TLS-terminating, SASL-authenticating TCP gateway in front of the embedded broker.

The bundled Tansu broker has no working TLS listener (its ``--cert`` and ``--key`` options
refuse each other) and no way to log in with memory storage (SCRAM users live in its
storage, and with ``--authentication`` the first one cannot be created), so the tests put
this gateway in front of it, as TLS terminators and authenticating proxies are deployed in
front of brokers. The broker advertises the gateway's address, so every connection a
client makes (bootstrap, then the advertised broker) passes through it.

* ``certfile``/``keyfile``: the gateway speaks TLS (``client_ca``: and requires a client
  certificate of that CA).
* ``users`` ({name: password}): the gateway requires SASL before anything but ApiVersions,
  as a Kafka broker's SASL listener does: SaslHandshake v1 and SaslAuthenticate v0-v2 with
  PLAIN (RFC 4616) or SCRAM-SHA-256/512 (RFC 5802/7677), answered here; ApiVersions is
  relayed to the broker. A failed login gets SASL_AUTHENTICATION_FAILED (58) and the
  connection is closed.

Once authenticated (or at once, without ``users``) bytes are relayed unchanged. This checks
what the clients send against the SASL specifications, not against Kafka's own
authenticator. Runs in a daemon thread of the test process, on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import ssl
import struct
import threading
from pathlib import Path

__all__ = ["Gateway"]

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
NONE, SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE = 0, 58, 33, 34
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


# -- the wire format, as much of it as SaslHandshake and SaslAuthenticate need ---------------------------

def _uvarint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _put_uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _skip_tags(data: bytes, at: int) -> int:
    count, at = _uvarint(data, at)
    for _ in range(count):
        _, at = _uvarint(data, at)
        size, at = _uvarint(data, at)
        at += size
    return at


def _header(frame: bytes) -> tuple[int, int, int, int]:
    """api_key, api_version, correlation_id and where the rest starts (request header v1)."""
    key, version, correlation = struct.unpack_from(">hhi", frame, 0)
    (length,) = struct.unpack_from(">h", frame, 8)
    return key, version, correlation, 10 + max(length, 0)


def _string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


def _frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def _handshake_response(correlation: int, error: int) -> bytes:
    mechanisms = b"".join(_string(m) for m in MECHANISMS)
    return _frame(struct.pack(">ih", correlation, error) + struct.pack(">i", len(MECHANISMS)) + mechanisms)


def _authenticate_bytes(frame: bytes, version: int, at: int) -> bytes:
    if version >= 2:
        at = _skip_tags(frame, at)               # request header v2
        size, at = _uvarint(frame, at)           # compact bytes: length + 1
        return frame[at:at + size - 1]
    (size,) = struct.unpack_from(">i", frame, at)
    return frame[at + 4:at + 4 + size]


def _authenticate_response(correlation: int, version: int, error: int, message: str | None, data: bytes) -> bytes:
    if version >= 2:
        text = b"\x00" if message is None else _put_uvarint(len(message.encode()) + 1) + message.encode()
        body = (struct.pack(">h", error) + text + _put_uvarint(len(data) + 1) + data + struct.pack(">q", 0)
                + b"\x00")
        return _frame(struct.pack(">i", correlation) + b"\x00" + body)   # response header v1
    body = struct.pack(">h", error) + _string(message) + struct.pack(">i", len(data)) + data
    if version >= 1:
        body += struct.pack(">q", 0)             # session_lifetime_ms: no re-authentication
    return _frame(struct.pack(">i", correlation) + body)


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


# -- the mechanisms ----------------------------------------------------------------------------------------

class _Scram:
    """Server side of SCRAM-SHA-256/512 (no channel binding), one exchange."""

    def __init__(self, mechanism: str, users: dict[str, str]):
        self.hash = hashlib.sha256 if mechanism == "SCRAM-SHA-256" else hashlib.sha512
        self.users = users
        self.user = self.first_bare = self.server_first = self.nonce = None
        self.salt, self.iterations = os.urandom(16), 4096

    def _hmac(self, key: bytes, text: bytes) -> bytes:
        return hmac.new(key, text, self.hash).digest()

    def step(self, message: bytes) -> tuple[bool | None, bytes]:
        """(None, reply) to go on; (True, server-final) or (False, b"") at the end."""
        text = message.decode()
        if self.first_bare is None:
            gs2, _, bare = text.partition(",,") if text.startswith(("n,", "y,")) else ("", "", text)
            fields = dict(item.split("=", 1) for item in bare.split(","))
            self.user = fields["n"].replace("=2C", ",").replace("=3D", "=")
            self.first_bare, self.nonce = bare, fields["r"] + base64.b64encode(os.urandom(18)).decode()
            self.server_first = f"r={self.nonce},s={base64.b64encode(self.salt).decode()},i={self.iterations}"
            return None, self.server_first.encode()
        fields = dict(item.split("=", 1) for item in text.split(","))
        without_proof = text[:text.rindex(",p=")]
        password = self.users.get(self.user)
        if password is None or fields.get("r") != self.nonce:
            return False, b""
        salted = hashlib.pbkdf2_hmac(self.hash().name, password.encode(), self.salt, self.iterations)
        client_key = self._hmac(salted, b"Client Key")
        stored_key = self.hash(client_key).digest()
        auth_message = f"{self.first_bare},{self.server_first},{without_proof}".encode()
        signature = self._hmac(stored_key, auth_message)
        proof = base64.b64decode(fields["p"])
        recovered = bytes(a ^ b for a, b in zip(proof, signature))
        if len(proof) != len(signature) or not hmac.compare_digest(self.hash(recovered).digest(), stored_key):
            return False, b""
        server_signature = self._hmac(self._hmac(salted, b"Server Key"), auth_message)
        return True, b"v=" + base64.b64encode(server_signature)


def _plain(message: bytes, users: dict[str, str]) -> bool:
    try:
        authzid, user, password = message.decode().split("\x00")
    except ValueError:
        return False
    return authzid in ("", user) and user in users and hmac.compare_digest(users[user], password)


class Gateway:
    def __init__(self, port: int, upstream: tuple[str, int], certfile: Path | None = None,
                 keyfile: Path | None = None, client_ca: Path | None = None, users: dict[str, str] | None = None,
                 host: str = "127.0.0.1"):
        self.host, self.port, self.upstream, self.users = host, port, upstream, users
        self.context = None
        if certfile is not None:
            self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.context.load_cert_chain(str(certfile), str(keyfile))
            if client_ca is not None:   # mutual TLS
                self.context.load_verify_locations(str(client_ca))
                self.context.verify_mode = ssl.CERT_REQUIRED
        self.connections = 0
        self.logins: list[tuple[str, str]] = []        # (mechanism, user) of each successful login
        self.refused: list[tuple[str, str]] = []       # (mechanism, user or "?") of each failed one
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-gateway", daemon=True)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self) -> "Gateway":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the gateway did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._on_loop_error)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, self.host, self.port, ssl=self.context))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.close()

    @staticmethod
    def _on_loop_error(loop, context) -> None:
        if not isinstance(context.get("exception"), (ssl.SSLError, ConnectionError, OSError)):
            loop.default_exception_handler(context)   # a refused TLS handshake is an expected outcome

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        try:
            if self.users is not None and not await self._login(reader, writer, up_reader, up_writer):
                writer.close()
                up_writer.close()
                return
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError, ValueError, KeyError):
            writer.close()
            up_writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _login(self, reader, writer, up_reader, up_writer) -> bool:
        mechanism, scram = None, None
        while True:
            frame = await _read_frame(reader)
            key, version, correlation, at = _header(frame)
            if key == API_VERSIONS:                       # allowed before authentication: the broker answers
                up_writer.write(_frame(frame))
                await up_writer.drain()
                writer.write(_frame(await _read_frame(up_reader)))
            elif key == SASL_HANDSHAKE and version >= 1:
                (length,) = struct.unpack_from(">h", frame, at)
                mechanism = frame[at + 2:at + 2 + length].decode()
                ok = mechanism in MECHANISMS
                writer.write(_handshake_response(correlation, NONE if ok else UNSUPPORTED_SASL_MECHANISM))
                await writer.drain()
                if not ok:
                    return False
                scram = _Scram(mechanism, self.users) if mechanism.startswith("SCRAM-") else None
                continue
            elif key == SASL_AUTHENTICATE and mechanism is not None:
                data = _authenticate_bytes(frame, version, at)
                if scram is None:
                    done, reply = _plain(data, self.users), b""
                    user = data.split(b"\x00")[1].decode() if data.count(b"\x00") == 2 else "?"
                else:
                    done, reply = scram.step(data)
                    user = scram.user or "?"
                if done is None:
                    writer.write(_authenticate_response(correlation, version, NONE, None, reply))
                elif done:
                    self.logins.append((mechanism, user))
                    writer.write(_authenticate_response(correlation, version, NONE, None, reply))
                    await writer.drain()
                    return True
                else:
                    self.refused.append((mechanism, user))
                    writer.write(_authenticate_response(correlation, version, SASL_AUTHENTICATION_FAILED,
                                                        "Authentication failed: invalid username or password",
                                                        b""))
                    await writer.drain()
                    return False
            else:                                         # anything else before a login: as a broker, hang up
                return False
            await writer.drain()

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            try:
                dst.close()
            except Exception:
                pass
