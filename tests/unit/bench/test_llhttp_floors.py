"""The llhttp floors: ``llhttp alone`` replays one exchange through httptools, and the
bare llhttp forwarder relays real requests (keep-alive, bodies, chunked, close)."""

from __future__ import annotations

import asyncio
import socket

import httptools
import pytest

from scripts.benchlib import llhttpbare, llhttpfloor
from tests.support.engine_front import run
from tests.support.http_client import get, read_response
from tests.support.http_server import Upstream, pattern_digest

REQUEST = b"GET /1k HTTP/1.1\r\nHost: 10.77.0.1:8080\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"
)


def test_one_exchange_forwards_the_parsed_heads_and_repeats_on_the_same_parsers() -> None:
    exchange = llhttpfloor.Exchange()
    for _ in range(3):
        upstream, downstream = exchange.one(REQUEST, RESPONSE)
        assert upstream == (
            b"GET /1k HTTP/1.1\r\nHost: 10.77.0.1:8080\r\n" + llhttpfloor.REQUEST_ID + b"\r\n"
        )
        assert downstream == (
            b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 5\r\n\r\nhello"  # Connection is hop-by-hop: dropped
        )


def test_a_chunked_response_is_reframed_piece_by_piece() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"
    )
    _, downstream = llhttpfloor.Exchange().one(REQUEST, chunked)
    assert downstream == (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"
    )


def test_a_response_that_is_not_http_fails_loudly() -> None:
    with pytest.raises(httptools.HttpParserError):
        llhttpfloor.Exchange().one(REQUEST, b"SSH-2.0-OpenSSH\r\n\r\n")


def test_a_cut_response_is_refused_rather_than_timed() -> None:
    with pytest.raises(ValueError, match="did not end"):
        llhttpfloor.Exchange().one(REQUEST, RESPONSE[:-2])


def test_the_floor_is_a_positive_time_per_exchange() -> None:
    assert 0 < llhttpfloor.cpu_us_per_request(REQUEST, RESPONSE, count=200) < 100_000


def _post(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: up\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _chunked_post(path: str, *pieces: bytes) -> bytes:
    framed = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces)
    head = f"POST {path} HTTP/1.1\r\nHost: up\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head.encode() + framed + b"0\r\n\r\n"


def test_bare_forwarder_relays_requests_and_responses_on_kept_alive_connections() -> None:
    async def main() -> None:
        up = await Upstream().start()
        sock = socket.create_server(("127.0.0.1", 0))
        server = await llhttpbare.serve(sock, ("127.0.0.1", up.port))
        port = sock.getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(get("/hello"))
            hello = await read_response(reader)
            writer.write(_post("/echo", b"x" * 70000))
            echoed = await read_response(reader)
            writer.write(_chunked_post("/echo", b"ab", b"cde"))
            chunked_in = await read_response(reader)
            writer.write(get("/download?n=100000&chunked=1"))
            chunked_out = await read_response(reader)
            writer.write(get("/hello", "Connection: close"))
            last = await read_response(reader)
            assert await reader.read() == b""  # the client asked to close: FIN
        finally:
            writer.close()
            server.close()
            await up.close()
        assert (hello.status, hello.body) == (200, b"hello")
        assert echoed.body.split()[0] == b"70000"
        assert chunked_in.body.split()[0] == b"5"
        assert chunked_out.header(b"transfer-encoding") == b"chunked"
        assert (chunked_out.size, chunked_out.digest) == (100000, pattern_digest(100000))
        assert last.status == 200
        assert up.connections == 1  # one upstream connection carried all five
        assert [s.target for s in up.requests] == [
            "/hello",
            "/echo",
            "/echo",
            "/download?n=100000&chunked=1",
            "/hello",
        ]
        # hop-by-hop headers stay on their hop
        assert all(s.header("connection") is None for s in up.requests)

    run(main())


def test_bare_forwarder_closes_the_client_when_the_upstream_is_gone() -> None:
    async def main() -> bytes:
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        dead = free.getsockname()[1]
        free.close()
        sock = socket.create_server(("127.0.0.1", 0))
        server = await llhttpbare.serve(sock, ("127.0.0.1", dead))
        reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        try:
            writer.write(get("/hello"))
            return await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
            server.close()

    assert run(main()) == b""
