"""The HTTP layer on the wire: keep-alive, chunked bodies, 100-continue, malformed requests."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx

from importer.simulator import Simulator

from .helpers import PLAYED, auth, event


class Wire:
    """A raw client socket; responses are read through one buffer, so pipelining works."""

    def __init__(self, sim: Simulator) -> None:
        host, port = sim.url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.reader = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        status_line = self.reader.readline()
        assert status_line, "connection closed before a response"
        headers: dict[str, str] = {}
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        return int(status_line.split()[1]), headers, self.reader.read(length)

    def at_eof(self) -> bool:
        return self.reader.read(1) == b""

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.close()
        self.sock.close()


def request(body: bytes, *extra: bytes, version: bytes = b"HTTP/1.1", length: int | None = None) -> bytes:
    head = [
        b"POST " + PLAYED.encode() + b" " + version,
        b"Host: 127.0.0.1",
        b"Authorization: Bearer demo-token",
        b"Content-Type: application/json",
        b"Content-Length: %d" % (len(body) if length is None else length),
        *extra,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def test_keep_alive_serves_many_requests_on_one_socket(simulator: Simulator) -> None:
    body = json.dumps(event()).encode()
    with Wire(simulator) as wire:
        for _ in range(3):
            wire.send(request(body))
            status, headers, _ = wire.response()
            assert status == 200 and "connection" not in headers
        # Two pipelined requests in one write are answered in order.
        wire.send(request(body) + request(b"{}"))
        assert wire.response()[0] == 200
        assert wire.response()[0] == 400
    assert simulator.client.stats()["accepted_events"] == 4


def test_connection_close_and_http_10(simulator: Simulator) -> None:
    body = json.dumps(event()).encode()
    for req in (request(body, b"Connection: close"), request(body, version=b"HTTP/1.0")):
        with Wire(simulator) as wire:
            wire.send(req)
            status, headers, _ = wire.response()
            assert status == 200 and headers["connection"] == "close"
            assert wire.at_eof()


def test_chunked_request_body(simulator: Simulator) -> None:
    payload = json.dumps(event()).encode()

    def chunks() -> Iterator[bytes]:
        yield payload[:10]
        yield payload[10:]

    headers = {**auth(simulator.token), "Content-Type": "application/json"}
    response = httpx.post(simulator.url + PLAYED, content=chunks(), headers=headers)
    assert response.status_code == 200
    assert simulator.client.events()[0]["event"] == event()


def test_expect_100_continue(simulator: Simulator) -> None:
    body = json.dumps(event()).encode()
    with Wire(simulator) as wire:
        wire.send(request(b"", b"Expect: 100-continue", length=len(body)))
        assert wire.response()[0] == 100
        wire.send(body)
        assert wire.response()[0] == 200


def test_malformed_requests_get_an_answer_and_a_close(simulator: Simulator) -> None:
    for raw in (
        b"NONSENSE\r\n\r\n",
        b"POST / HTTP/2.0\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ):
        with Wire(simulator) as wire:
            wire.send(raw)
            status, headers, _ = wire.response()
            assert status in (400, 505) and headers["connection"] == "close"
            assert wire.at_eof()


def test_oversized_body_is_413(simulator: Simulator) -> None:
    with Wire(simulator) as wire:
        wire.send(request(b"", length=99_999_999))
        assert wire.response()[0] == 413
