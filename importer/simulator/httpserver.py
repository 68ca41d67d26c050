"""A small HTTP/1.1 server on asyncio, made for the simulator.

Why not uvicorn/ASGI: the simulator has to (1) drop a connection without sending a single byte,
so that a client sees a transport error and not a 500, and (2) notice that a client gave up on a
slow answer, so that the event is not recorded. ASGI hides the socket and answers 500 when an app
fails before responding; here a handler returns ``None`` to drop the connection and calls
``Request.client_gone()`` to ask whether anyone is still listening.

Scope: what HTTP clients such as httpx and curl send. Keep-alive, ``Content-Length`` and chunked
request bodies, ``Expect: 100-continue``, HTTP/1.0. One request at a time per connection
(pipelined requests wait in the buffer). Responses always carry ``Content-Length``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import NamedTuple, cast
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,8}")
_EXTRA_REASONS = {477: "Migration In Progress"}


@dataclass(slots=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    keep_alive: bool
    _connection: _Connection

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        """Query parameters; the last value wins when one is repeated."""
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.target).query).items()}

    def client_gone(self) -> bool:
        """True once the client closed or reset its side; an answer now would reach no one."""
        return self._connection.closed


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json;charset=utf-8"


# ``None`` means: close the socket without answering.
Handler = Callable[[Request], Awaitable[Response | None]]


def json_response(status: int, payload: object, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, headers if headers is not None else [])


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Head(NamedTuple):
    method: str
    target: str
    headers: dict[str, str]
    keep_alive: bool
    length: int  # -1: chunked
    expect_continue: bool


def _parse_head(raw: bytes) -> _Head:
    lines = raw.split(b"\r\n")
    parts = lines[0].decode("latin-1").split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise _BadRequest(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(505, f"unsupported protocol version {version!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name.strip() != name:
            raise _BadRequest(400, "malformed header line")
        key = name.decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    connection = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    encoding = headers.get("transfer-encoding")
    if encoding is not None:
        if encoding.lower() != "chunked":
            raise _BadRequest(501, f"unsupported transfer-encoding {encoding!r}")
        if "content-length" in headers:
            raise _BadRequest(400, "both content-length and transfer-encoding")
        length = -1
    else:
        text = headers.get("content-length", "0")
        if not text.isdigit():
            raise _BadRequest(400, "invalid content-length")
        length = int(text)
        if length > MAX_BODY:
            raise _BadRequest(413, f"body larger than {MAX_BODY} bytes")
    expect = headers.get("expect", "").lower() == "100-continue"
    return _Head(method.upper(), target, headers, keep_alive, length, expect)


def _decode_chunked(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """(body, end offset) of a complete chunked body starting at ``pos``, or None if more is needed."""
    body = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise _BadRequest(400, "malformed chunk size")
        size = int(size_text, 16)
        pos = eol + 2
        if size == 0:
            while True:  # skip trailers up to the empty line
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return bytes(body), eol + 2
                pos = eol + 2
        if len(body) + size > MAX_BODY:
            raise _BadRequest(413, f"body larger than {MAX_BODY} bytes")
        if len(buf) < pos + size + 2:
            return None
        if buf[pos + size : pos + size + 2] != b"\r\n":
            raise _BadRequest(400, "malformed chunk")
        body += buf[pos : pos + size]
        pos += size + 2


def _serialize(response: Response, keep_alive: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = _EXTRA_REASONS.get(response.status, "Unknown")
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Length: {len(response.body)}",
        f"Content-Type: {response.content_type}",
    ]
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._head: _Head | None = None
        self._head_end = 0
        self._busy = False
        self._paused = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._server.connections.discard(self)

    def eof_received(self) -> bool:
        # A client that half-closes has given up on us; treat it as gone and close.
        self.closed = True
        return False

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._busy:
            if len(self._buf) > MAX_HEAD + MAX_BODY and self._transport and not self._paused:
                self._transport.pause_reading()
                self._paused = True
            return
        self._next_request()

    def abort(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    def _next_request(self) -> None:
        while not self._busy and not self.closed:
            try:
                request = self._take_request()
            except _BadRequest as exc:
                self._send(json_response(exc.status, {"status": "error", "message": exc.message}), False)
                return
            if request is None:
                return
            self._busy = True
            task = asyncio.get_running_loop().create_task(self._run(request))
            self._server.tasks.add(task)
            task.add_done_callback(self._server.tasks.discard)

    def _take_request(self) -> Request | None:
        assert self._transport is not None
        if self._head is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    raise _BadRequest(431, "request head too large")
                return None
            if end > MAX_HEAD:
                raise _BadRequest(431, "request head too large")
            self._head = _parse_head(bytes(self._buf[:end]))
            self._head_end = end + 4
            if self._head.expect_continue and self._head.length != 0:
                self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        head = self._head
        if head.length >= 0:
            end = self._head_end + head.length
            if len(self._buf) < end:
                return None
            body = bytes(self._buf[self._head_end : end])
        else:
            decoded = _decode_chunked(self._buf, self._head_end)
            if decoded is None:
                return None
            body, end = decoded
        del self._buf[:end]
        self._head = None
        return Request(head.method, head.target, head.headers, body, head.keep_alive, self)

    async def _run(self, request: Request) -> None:
        try:
            response = await self._server.handler(request)
        except Exception:
            log.exception("simulator handler failed on %s %s", request.method, request.target)
            response = json_response(500, {"status": "error", "message": "simulator bug, see its log"})
        if self.closed:
            return
        if response is None:
            self.closed = True
            assert self._transport is not None
            self._transport.close()  # nothing written: the client reads EOF where an answer should be
            return
        self._send(response, request.keep_alive)
        if self.closed:
            return
        self._busy = False
        if self._paused and self._transport is not None:
            self._transport.resume_reading()
            self._paused = False
        self._next_request()

    def _send(self, response: Response, keep_alive: bool) -> None:
        assert self._transport is not None
        self._transport.write(_serialize(response, keep_alive))
        if not keep_alive:
            self.closed = True
            self._transport.close()


class HttpServer:
    """Serves ``handler`` on a TCP socket; ``close`` aborts every open connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()  # running handlers, also of lost connections
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port, backlog=1024, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        tasks = list(self.tasks)
        for connection in list(self.connections):
            connection.abort()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
