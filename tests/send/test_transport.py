"""The lean HTTP/1.1 transport against a raw asyncio server that answers scripted bytes."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from importer.hubspot.transport import StreamTransport

Handler = Callable[[bytes], bytes | None]


async def _serve(answer: Handler, tls: ssl.SSLContext | None = None) -> tuple[asyncio.Server, int, list[bytes]]:
    seen: list[bytes] = []

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            request = head + await reader.readexactly(length)
            seen.append(request)
            reply = answer(request)
            if reply is None:  # drop the connection without a byte
                break
            writer.write(reply)
            await writer.drain()
            if b"Connection: close" in reply:
                break
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=tls)
    return server, server.sockets[0].getsockname()[1], seen


def _run(
    answer: Handler,
    body: Callable[[httpx.AsyncClient, str], Awaitable[None]],
    scheme: str = "http",
    server_tls: ssl.SSLContext | None = None,
    client_tls: ssl.SSLContext | None = None,
) -> list[bytes]:
    async def main() -> list[bytes]:
        server, port, seen = await _serve(answer, server_tls)
        async with server, httpx.AsyncClient(transport=StreamTransport(client_tls), timeout=2.0) as client:
            await body(client, f"{scheme}://127.0.0.1:{port}")
        return seen

    return asyncio.run(main())


def test_content_length_answers_reuse_one_connection() -> None:
    reply = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok": true}'[:-1]

    async def body(client: httpx.AsyncClient, url: str) -> None:
        for i in range(3):
            r = await client.post(f"{url}/events?x={i}", content=b'{"a":1}', headers={"Authorization": "Bearer t"})
            assert r.status_code == 200 and r.content == b'{"ok": true'
            assert r.headers["content-type"] == "application/json"

    seen = _run(lambda _req: reply, body)
    assert len(seen) == 3
    assert seen[0].startswith(b"POST /events?x=0 HTTP/1.1\r\n")
    assert b"Content-Length: 7\r\n" in seen[0] and seen[0].endswith(b'{"a":1}')
    assert b"Accept-Encoding: identity" in seen[0] and b"Authorization: Bearer t" in seen[0]


def test_chunked_answers_are_joined() -> None:
    reply = b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"

    async def body(client: httpx.AsyncClient, url: str) -> None:
        r = await client.post(url, content=b"{}")
        assert (r.status_code, r.text) == (400, "hello world")
        r = await client.post(url, content=b"{}")  # the connection stays usable after a chunked body
        assert r.text == "hello world"

    assert len(_run(lambda _req: reply, body)) == 2


def test_connection_close_and_eof_delimited_bodies() -> None:
    reply = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n<html>busy</html>"

    async def body(client: httpx.AsyncClient, url: str) -> None:
        for _ in range(2):
            r = await client.post(url, content=b"{}")
            assert (r.status_code, r.text) == (503, "<html>busy</html>")

    assert len(_run(lambda _req: reply, body)) == 2


def test_a_dropped_connection_is_a_remote_protocol_error() -> None:
    async def body(client: httpx.AsyncClient, url: str) -> None:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(url, content=b"{}")

    _run(lambda _req: None, body)


def test_no_answer_in_time_is_a_read_timeout() -> None:
    async def body(client: httpx.AsyncClient, url: str) -> None:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(url, content=b"{}", timeout=httpx.Timeout(0.2))

    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(1)
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, httpx.AsyncClient(transport=StreamTransport()) as client:
            await body(client, f"http://127.0.0.1:{port}")

    asyncio.run(main())


def test_a_refused_connection_is_a_connect_error() -> None:
    async def main() -> None:
        async with httpx.AsyncClient(transport=StreamTransport()) as client:
            with pytest.raises(httpx.ConnectError):
                await client.post("http://127.0.0.1:9/", content=b"{}")

    asyncio.run(main())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"

    async def body(client: httpx.AsyncClient, url: str) -> None:
        r = await client.post(url, content=b"{}")
        assert (r.status_code, r.text) == (200, "{}")

    seen = _run(lambda _req: reply, body, "https", server_tls, client_tls)
    assert len(seen) == 1


@pytest.mark.parametrize(("proxy", "lean"), [(None, True), ("http://proxy.internal:3128", False)])
def test_the_sender_leaves_proxied_setups_to_httpx(
    monkeypatch: pytest.MonkeyPatch, proxy: str | None, lean: bool
) -> None:
    from importer.hubspot.auth import Credentials
    from importer.hubspot.pacing import DailyQuota, RateLimiter
    from importer.hubspot.sender import Sender

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    if proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy)

    async def main() -> bool:
        sender = Sender("http://127.0.0.1:1", Credentials("t"), RateLimiter(None), DailyQuota(), concurrency=2)
        try:
            return isinstance(sender._all_clients[0]._transport, StreamTransport)
        finally:
            await sender.aclose()

    assert asyncio.run(main()) is lean
