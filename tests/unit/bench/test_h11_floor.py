"""The h11 floor replays a proxied exchange through both state machines, every cycle."""

from __future__ import annotations

import h11
import pytest

from scripts.benchlib import h11floor

REQUEST = b"GET /1k HTTP/1.1\r\nHost: 10.77.0.1:8080\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"
)


def test_exchanges_repeat_on_the_same_connections() -> None:
    down, up = h11.Connection(h11.SERVER), h11.Connection(h11.CLIENT)
    for _ in range(3):
        h11floor.one_exchange(down, up, REQUEST, RESPONSE)
        assert (down.our_state, down.their_state) == (h11.IDLE, h11.IDLE)
        assert (up.our_state, up.their_state) == (h11.IDLE, h11.IDLE)


def test_a_chunked_response_is_relayed_chunk_by_chunk() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"
    )
    down, up = h11.Connection(h11.SERVER), h11.Connection(h11.CLIENT)
    h11floor.one_exchange(down, up, REQUEST, chunked)
    assert down.our_state is h11.IDLE


def test_a_response_that_is_not_http_fails_loudly() -> None:
    down, up = h11.Connection(h11.SERVER), h11.Connection(h11.CLIENT)
    with pytest.raises(h11.RemoteProtocolError):
        h11floor.one_exchange(down, up, REQUEST, b"SSH-2.0-OpenSSH\r\n\r\n")


def test_the_floor_is_a_positive_time_per_exchange() -> None:
    assert 0 < h11floor.cpu_us_per_request(REQUEST, RESPONSE, count=200) < 100_000
