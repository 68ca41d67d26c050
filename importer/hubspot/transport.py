"""A lean HTTP/1.1 keep-alive transport for httpx, on asyncio streams.

The sender makes many small JSON requests to one host. httpx's default
transport (httpcore on anyio) spends several times the CPU of the request
itself on each of them, which caps a 2-core machine well below the rate
concurrency allows. This transport keeps the httpx API (clients, timeouts,
``MockTransport`` in tests) and does only what these exchanges need:
keep-alive connections to the API host, TLS, Content-Length and chunked
bodies, and httpx's exception types. The sender uses it unless a proxy is
configured in the environment (then httpx's own transport handles it).
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections import defaultdict

import httpx

_Key = tuple[str, str, int]
_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_MAX_HEAD = 64 * 1024


def proxies_configured() -> bool:
    return bool(urllib.request.getproxies())


class StreamTransport(httpx.AsyncBaseTransport):
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context or ssl.create_default_context()
        self._idle: dict[_Key, list[_Conn]] = defaultdict(list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        scheme = url.scheme
        port = url.port or (443 if scheme == "https" else 80)
        key: _Key = (scheme, url.host, port)
        body = await request.aread()
        head = self._head(request, body)
        reused = bool(self._idle[key])
        conn = self._idle[key].pop() if reused else await self._connect(key, timeouts.get("connect"))
        try:
            return await self._exchange(request, conn, head + body, key, timeouts)
        except httpx.RemoteProtocolError:
            if not reused or request.method != "GET":
                raise
            # A kept-alive connection the server had closed: once more on a fresh one.
            conn = await self._connect(key, timeouts.get("connect"))
            return await self._exchange(request, conn, head + body, key, timeouts)

    async def _connect(self, key: _Key, timeout: float | None) -> _Conn:
        scheme, host, port = key
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=self._ssl if scheme == "https" else None), timeout
            )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port} ({exc.strerror or exc})") from None

    @staticmethod
    def _head(request: httpx.Request, body: bytes) -> bytes:
        target = request.url.raw_path.decode("ascii")
        lines = [f"{request.method} {target} HTTP/1.1", f"Host: {request.url.netloc.decode('ascii')}"]
        for name, value in request.headers.raw:
            lower = name.lower()
            if lower in (b"host", b"content-length", b"transfer-encoding", b"accept-encoding"):
                continue
            lines.append(f"{name.decode('latin-1')}: {value.decode('latin-1')}")
        lines.append("Accept-Encoding: identity")  # bodies are small JSON; no decoding step
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _exchange(
        self, request: httpx.Request, conn: _Conn, data: bytes, key: _Key, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        reader, writer = conn
        keep = False
        try:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), timeouts.get("write"))
            status, headers, content, keep = await asyncio.wait_for(self._read(reader), timeouts.get("read"))
        except TimeoutError:
            raise httpx.ReadTimeout("the server did not answer in time", request=request) from None
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            raise httpx.RemoteProtocolError(f"the connection broke ({type(exc).__name__})", request=request) from None
        finally:
            if keep:
                self._idle[key].append(conn)
            else:
                writer.close()
        return httpx.Response(status, headers=headers, content=content, request=request)

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        status_line = await reader.readuntil(b"\r\n")
        if not status_line:
            raise asyncio.IncompleteReadError(b"", None)
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError("not an HTTP/1.x answer")
        status = int(parts[1])
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        chunked = False
        keep = parts[0] == b"HTTP/1.1"
        size = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            size += len(line)
            if size > _MAX_HEAD:
                raise ValueError("header block too large")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            value = value.strip()
            lower = name.strip().lower()
            headers.append((name.strip(), value))
            if lower == b"content-length":
                length = int(value)
            elif lower == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif lower == b"connection":
                keep = value.lower() != b"close" if keep else value.lower() == b"keep-alive"
        if chunked:
            body = bytearray()
            while True:
                size_line = await reader.readuntil(b"\r\n")
                chunk = int(size_line.split(b";", 1)[0], 16)
                if chunk == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                        pass
                    break
                body += await reader.readexactly(chunk)
                await reader.readexactly(2)
            content = bytes(body)
            headers = [(n, v) for n, v in headers if n.lower() != b"transfer-encoding"]
        elif length is not None:
            content = await reader.readexactly(length) if length else b""
        elif status in (204, 304) or 100 <= status < 200:
            content = b""
        else:
            content = await reader.read()
            keep = False
        return status, headers, content, keep

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for _, writer in conns:
                writer.close()
        self._idle.clear()
