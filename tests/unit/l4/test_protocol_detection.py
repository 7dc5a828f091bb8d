"""Protocol detection: the classification table and the timed sniff on real sockets."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable

import pytest
import uvloop

from proxy.l4.detect import SNIFF_LIMIT, Protocol, classify, sniff

H, OP, U = Protocol.HTTP1, Protocol.OPAQUE, Protocol.UNDECIDED


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", U),
        (b"G", U),
        (b"GET /", U),
        (b"GET /a?b=c HTTP/1.", U),
        (b"GET / HTTP/1.1\r", U),
        (b"GET / HTTP/1.1\r\n", H),
        (b"POST /x HTTP/1.0\r\nHost: a\r\n", H),
        (b"GET / HTTP/1.1\n", H),
        (b"M-SEARCH * HTTP/1.1\r\n", H),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", OP),  # h2 preface: not HTTP/1
        (b"get / HTTP/1.1\r\n", OP),
        (b"GET / HTTP/1.1x", OP),
        (b"GET  / HTTP/1.1\r\n", OP),
        (b"\x16\x03\x01\x02\x00", OP),  # TLS ClientHello
        (b"SSH-2.0-OpenSSH_9\r\n", OP),
        (b"*1\r\n$4\r\nPING\r\n", OP),  # redis
        (b"GET /?q=" + b"a" * 2000, U),  # a long query string: keep reading
        (b"GET /?q=" + b"a" * 2000 + b" HTTP/1.1\r\n", H),
        (b"GET /" + b"a" * (SNIFF_LIMIT - 5), H),  # the limit, still a request line's
        (b"GET /" + b"a" * (SNIFF_LIMIT - 6), U),  # one byte short of it
        (b"GET /" + b"a" * SNIFF_LIMIT + b"\x00", H),  # what lies past it is the codec's
        (b"GET /" + b"a" * 2000 + b"\x00", OP),  # not a target character
        (b"GET /" + b"a" * 2000 + b"\n", OP),  # a line with no version: HTTP/0.9
        (b"A" * SNIFF_LIMIT, OP),  # no space after 20 letters: no method
        (b"\x00" * SNIFF_LIMIT, OP),
    ],
)
def test_classify(data: bytes, expected: Protocol) -> None:
    assert classify(data) is expected


async def _sniff_pair(chunks: list[bytes], timeout: float) -> tuple[Protocol, bytes, float]:
    got: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def accepted(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await got.put((r, w))

    server = await asyncio.start_server(accepted, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, cw = await asyncio.open_connection("127.0.0.1", port)
    reader, writer = await got.get()
    for c in chunks:
        cw.write(c)
        await cw.drain()
        await asyncio.sleep(0.01)
    t0 = time.monotonic()
    protocol, data = await sniff(reader, timeout)
    elapsed = time.monotonic() - t0
    for w in (cw, writer):
        w.close()
        await w.wait_closed()
    server.close()
    await server.wait_closed()
    return protocol, data, elapsed


def test_sniff_http_in_pieces() -> None:
    protocol, data, _ = asyncio.run(_sniff_pair([b"GET /x HT", b"TP/1.1\r\nHost: a\r\n"], 1.0))
    assert protocol is H and data.startswith(b"GET /x HTTP/1.1\r\n")


def test_sniff_reads_a_long_request_line_to_its_end() -> None:
    line = b"GET /search?q=" + b"a" * 6000 + b" HTTP/1.1\r\n"
    protocol, data, _ = asyncio.run(_sniff_pair([line[:1000], line[1000:4000], line[4000:]], 1.0))
    assert protocol is H and data == line


def test_sniff_silence_is_opaque_after_the_timeout() -> None:
    protocol, data, elapsed = asyncio.run(_sniff_pair([], 0.1))
    assert (protocol, data) == (OP, b"")
    assert 0.09 <= elapsed < 0.5


def test_sniff_binary_decides_at_once() -> None:
    protocol, data, elapsed = asyncio.run(_sniff_pair([b"\x16\x03\x01"], 5.0))
    assert (protocol, data) == (OP, b"\x16\x03\x01") and elapsed < 1.0


def _late_loop(new_loop: Callable[[], asyncio.AbstractEventLoop]) -> tuple[Protocol, bytes]:
    """The client sends its request line well within the timeout, but the loop is
    blocked (a busy proxy) until long after: its timer fires before it reads the bytes."""

    async def main() -> tuple[Protocol, bytes]:
        got: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

        async def accepted(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await got.put((r, w))

        server = await asyncio.start_server(accepted, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        reader, writer = await got.get()
        try:
            request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
            sent = threading.Timer(0.02, client.sendall, (request,))
            sent.start()
            asyncio.get_running_loop().call_later(0.01, time.sleep, 0.2)  # busy 10-210 ms
            result = await sniff(reader, 0.05)
            sent.join()
            return result
        finally:
            client.close()
            writer.close()
            server.close()
            await server.wait_closed()

    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main())


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_bytes_that_came_in_time_count_even_when_the_loop_reads_them_late(loop: str) -> None:
    # uvloop runs the timer before it polls (bytes still in the kernel); asyncio polls
    # first (bytes already in the reader): sniff must see both.
    new_loop = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
    protocol, data = _late_loop(new_loop)
    assert protocol is H and data.startswith(b"GET / HTTP/1.1\r\n")
