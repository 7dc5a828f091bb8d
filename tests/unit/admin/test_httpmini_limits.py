"""The admin ports' tiny HTTP/1.1 server over a real socket on 127.0.0.1:0.

Scripted conversations: bytes in, the status line and the connection's end out.
"""

from __future__ import annotations

import asyncio

from proxy.admin.httpmini import MAX_HEAD, Endpoints, Reply, serve_connection


def _endpoints() -> Endpoints:
    endpoints = Endpoints()
    endpoints.add("GET", "/ready", lambda request: Reply(200, b"ok\n"))
    endpoints.add("PUT", "/echo", lambda request: Reply(200, request.body))
    return endpoints


async def _converse(data: bytes) -> bytes:
    """Send ``data``, then read until the server closes; the whole answer."""

    served = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await serve_connection(_endpoints(), reader, writer)
            await writer.wait_closed()
        finally:
            served.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(served.wait(), 5)
        return answer
    finally:
        server.close()
        await server.wait_closed()


def converse(data: bytes) -> bytes:
    return asyncio.run(_converse(data))


def test_a_request_is_answered_and_the_connection_closed() -> None:
    answer = converse(b"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close\r\n" in answer
    assert answer.endswith(b"\r\n\r\nhello")


def test_a_malformed_content_length_is_400_naming_it() -> None:
    answer = converse(b"PUT /echo HTTP/1.1\r\nContent-Length: five\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert answer.endswith(b"bad content-length 'five'\n")


def test_a_bad_request_line_is_400() -> None:
    answer = converse(b"GET /ready\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"bad request line" in answer


def _head_of(size: int) -> bytes:
    """A GET /ready head of exactly ``size`` bytes, CRLF CRLF included."""
    start, end = b"GET /ready HTTP/1.1\r\nX-Pad: ", b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


def test_a_head_at_the_cap_is_served() -> None:
    assert len(_head_of(MAX_HEAD)) == MAX_HEAD
    assert converse(_head_of(MAX_HEAD)).startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_head_over_the_cap_gets_431_and_the_connection_closes() -> None:
    answer = converse(_head_of(MAX_HEAD + 1))  # read() returned: the server closed
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"Connection: close\r\n" in answer
    assert answer.endswith(f"request head over {MAX_HEAD} bytes\n".encode())


def test_a_head_past_the_readers_own_limit_gets_431_too() -> None:
    answer = converse(_head_of(256 * 1024))  # beyond StreamReader's 64 KiB default
    assert answer.startswith(b"HTTP/1.1 431 ")
