"""Every codec keeps the seam's rules (``proxy.http.codec.base``), as scripted conversations.

Parametrized over ``CODECS``: a codec added there is held to the same rules.
"""

from __future__ import annotations

import pytest

from proxy.http.codec import (
    CLOSED,
    CODECS,
    END,
    NEED_DATA,
    PAUSED,
    Codec,
    End,
    Event,
    ProtocolError,
    Request,
    Response,
    Role,
    codec_named,
)

NAMES = sorted(CODECS)


def events(codec: Codec) -> list[Event]:
    out: list[Event] = []
    while True:
        event = codec.next_event()
        out.append(event)
        if event is NEED_DATA or event is PAUSED or event is CLOSED or type(event) is End:
            return out


def server(name: str, data: bytes = b"", max_head: int = 64 * 1024) -> Codec:
    codec = CODECS[name](Role.SERVER, max_head=max_head)
    if data:
        codec.feed(data)
    return codec


def respond(codec: Codec, status: int = 200, body: bytes = b"ok") -> bytes:
    out: list[bytes] = []
    items = [(b"Content-Length", b"content-length", str(len(body)).encode())]
    codec.send_response(status, b"OK", items, out)
    codec.send_data(body, out)
    codec.send_end(END, out)
    return b"".join(out)


@pytest.mark.parametrize("name", NAMES)
def test_a_request_is_a_head_then_bytes_then_the_end(name: str) -> None:
    codec = server(
        name, b"POST /a?b HTTP/1.1\r\nHost: x\r\nX-Case: V\r\nContent-Length: 3\r\n\r\nabc"
    )
    head, chunk, end = events(codec)
    assert type(head) is Request
    assert (head.method, head.target, head.version) == (b"POST", b"/a?b", b"1.1")
    assert head.items == [
        (b"Host", b"host", b"x"),
        (b"X-Case", b"x-case", b"V"),
        (b"Content-Length", b"content-length", b"3"),
    ]
    assert chunk == b"abc" and type(chunk) in (bytes, bytearray)  # never a memoryview
    assert end is END


@pytest.mark.parametrize("name", NAMES)
def test_chunked_trailers_arrive_with_the_end(name: str) -> None:
    codec = server(
        name,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nX-Sum: 9\r\n\r\n",
    )
    _, chunk, end = events(codec)
    assert chunk == b"abc"
    assert type(end) is End and end.trailers == [(b"X-Sum", b"9")]


@pytest.mark.parametrize("name", NAMES)
def test_keep_alive_goes_on_only_when_both_sides_finished(name: str) -> None:
    codec = server(name, b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert [type(e) for e in events(codec)] == [Request, End]
    assert codec.next_event() is PAUSED  # the pipelined request waits its turn
    assert codec.next_message() is False  # our response is not out yet
    assert b"200" in respond(codec)
    assert codec.next_message() is True
    head = codec.next_event()
    assert type(head) is Request and head.target == b"/2"


@pytest.mark.parametrize("name", NAMES)
def test_http_1_0_is_not_kept_alive(name: str) -> None:
    codec = server(name, b"GET / HTTP/1.0\r\n\r\n")
    head = codec.next_event()
    assert type(head) is Request and head.version == b"1.0"
    assert codec.peer_version == b"1.0"
    assert codec.next_event() is END
    respond(codec)
    assert codec.next_message() is False


@pytest.mark.parametrize("name", NAMES)
def test_a_clean_close_between_messages_is_closed(name: str) -> None:
    codec = server(name)
    codec.feed(b"")
    assert codec.next_event() is CLOSED


@pytest.mark.parametrize("name", NAMES)
def test_a_close_mid_message_is_a_truncated_protocol_error(name: str) -> None:
    codec = server(name, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    assert type(codec.next_event()) is Request
    assert codec.next_event() == b"abc"
    codec.feed(b"")
    with pytest.raises(ProtocolError) as caught:
        codec.next_event()
    assert caught.value.truncated


@pytest.mark.parametrize(
    "data,status",
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
    ],
)
@pytest.mark.parametrize("name", NAMES)
def test_bad_requests_raise_the_status_to_answer(name: str, data: bytes, status: int) -> None:
    codec = server(name, data)
    with pytest.raises(ProtocolError) as caught:
        events(codec)
    assert caught.value.status == status and not caught.value.truncated


@pytest.mark.parametrize("name", NAMES)
def test_a_head_over_the_limit_is_431(name: str) -> None:
    codec = server(name, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000, max_head=1024)
    with pytest.raises(ProtocolError) as caught:
        codec.next_event()
    assert caught.value.status == 431


@pytest.mark.parametrize("name", NAMES)
def test_expect_100_continue_is_answered_once(name: str) -> None:
    codec = server(
        name, b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    )
    assert type(codec.next_event()) is Request
    assert codec.waiting_for_continue
    assert codec.send_continue().startswith(b"HTTP/1.1 100 ")
    assert not codec.waiting_for_continue
    assert codec.send_continue() == b""


@pytest.mark.parametrize("name", NAMES)
def test_after_a_101_the_connection_is_a_tunnel_with_its_trailing_bytes(name: str) -> None:
    codec = server(
        name,
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nHELLO",
    )
    assert type(codec.next_event()) is Request
    assert not codec.switched
    out: list[bytes] = []
    items = [(b"Upgrade", b"upgrade", b"websocket"), (b"Connection", b"connection", b"upgrade")]
    codec.send_response(101, b"Switching Protocols", items, out)
    assert b"".join(out).startswith(b"HTTP/1.1 101 ")
    assert codec.switched
    assert codec.trailing() == b"HELLO"


@pytest.mark.parametrize("name", NAMES)
def test_sending_what_the_state_does_not_allow_is_a_protocol_error(name: str) -> None:
    codec = server(name)
    with pytest.raises(ProtocolError) as caught:
        codec.send_data(b"body before any head", [])
    assert caught.value.status == 500


@pytest.mark.parametrize("name", NAMES)
def test_the_client_role_reads_1xx_then_the_final_response(name: str) -> None:
    codec = CODECS[name](Role.CLIENT)
    out: list[bytes] = []
    codec.send_request(b"GET", b"/", [(b"Host", b"x")], out, END)  # head and end at once
    assert b"".join(out) == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    codec.feed(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
    codec.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    early = codec.next_event()
    assert type(early) is Response and early.status == 103
    final = codec.next_event()
    assert type(final) is Response and (final.status, final.reason) == (200, b"OK")
    assert codec.next_event() == b"hi"
    assert codec.next_event() is END
    assert codec.next_message()


@pytest.mark.parametrize("name", NAMES)
def test_a_client_codec_with_bytes_past_the_response_goes_no_further(name: str) -> None:
    codec = CODECS[name](Role.CLIENT)
    out: list[bytes] = []
    codec.send_request(b"GET", b"/", [(b"Host", b"x")], out)
    codec.send_end(END, out)
    codec.feed(b"HTTP/1.1 204 No Content\r\n\r\nEXTRA")
    assert [type(e) for e in events(codec)][:2] == [Response, End]
    assert not codec.next_message()


def test_codecs_are_picked_by_name() -> None:
    assert codec_named("h11") is CODECS["h11"]
    assert codec_named("auto") in CODECS.values()
    with pytest.raises(ValueError, match="unknown HTTP codec 'spdy'"):
        codec_named("spdy")
