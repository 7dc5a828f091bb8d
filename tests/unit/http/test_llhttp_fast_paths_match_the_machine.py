"""The llhttp codec's fast paths give exactly what h11's machine gives, step by step.

The codec sets both states directly for the usual keep-alive exchange and sends the
usual heads in one pass; ``llhttp_send.FAST = False`` sends every event through
``h1state.Machine`` and ``h1write``'s step-by-step rules instead. Both ways must
agree on every corpus verdict and, in scripted conversations, on every byte written,
every error status and the machine's states after each call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from proxy.http.codec import END, End, ProtocolError, Role, llhttp_send
from proxy.http.codec.h1state import Machine
from proxy.http.codec.llhttp import LlhttpCodec
from tests.support import source_build
from tests.support.corpus_gen import expected
from tests.support.http1_fuzz import load_corpus
from tests.support.http1_verdict import verdict

CASES = load_corpus()
Op = Callable[[LlhttpCodec, list[bytes]], Any]


@contextmanager
def fast(on: bool) -> Iterator[None]:
    saved = llhttp_send.FAST
    llhttp_send.FAST = on
    try:
        yield
    finally:
        llhttp_send.FAST = saved


@pytest.mark.parametrize("how", ["whole", "random"])
@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_the_corpus_verdicts_are_the_same_both_ways(case: dict[str, Any], how: str) -> None:
    with fast(False):
        slow = verdict(LlhttpCodec, case, how)
    with fast(True):
        quick = verdict(LlhttpCodec, case, how)
    assert quick == slow == expected(case, how)


def _state(codec: LlhttpCodec) -> tuple[Any, ...]:
    m = codec._m
    return (m.client, m.server, m.keep_alive, m.upgrade, m.connect, codec.switched)


def _run(role: Role, ops: list[Op], on: bool) -> list[Any]:
    """Each op's result (bytes written, event, or error status) and the states after it."""
    codec = LlhttpCodec(role)
    steps: list[Any] = []
    with fast(on):
        for op in ops:
            out: list[bytes] = []
            try:
                result = op(codec, out)
            except ProtocolError as exc:
                result = ("error", exc.status)
            if isinstance(result, End):
                result = ("end", result.trailers)
            elif hasattr(result, "items"):
                result = (type(result).__name__, result.items)
            steps.append((result, b"".join(out), _state(codec)))
    return steps


def feed(data: bytes) -> Op:
    return lambda codec, out: codec.feed(data)


def event(codec: LlhttpCodec, out: list[bytes]) -> Any:
    return codec.next_event()


def request(method: bytes, headers: list[tuple[bytes, bytes]], end: bool = True) -> Op:
    return lambda codec, out: codec.send_request(method, b"/", headers, out, END if end else None)


def response(status: int, items: list[tuple[bytes, bytes, bytes]]) -> Op:
    return lambda codec, out: codec.send_response(status, b"OK", items, out)


def data(chunk: bytes) -> Op:
    return lambda codec, out: codec.send_data(chunk, out)


def end(trailers: list[tuple[bytes, bytes]] | None = None) -> Op:
    return lambda codec, out: codec.send_end(End(trailers) if trailers else END, out)


def again(codec: LlhttpCodec, out: list[bytes]) -> bool:
    return codec.next_message()


HOST = (b"Host", b"x")
CL2 = (b"Content-Length", b"content-length", b"2")
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"

SERVER: dict[str, list[Op]] = {
    "keep-alive twice": [
        feed(GET * 2),
        event,
        event,
        response(200, [CL2]),
        data(b"ok"),
        end(),
        again,
        event,
        event,
        response(200, [CL2, (b"Host", b"host", b"h")]),
        data(b"ok"),
        end(),
        again,
        event,
    ],
    "POST with a body, answered before it ends": [
        feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab"),
        event,
        event,
        response(200, [CL2]),
        data(b"ok"),
        end(),
        event,
        feed(b"cd"),
        event,
        event,
        again,
    ],
    "HTTP/1.0": [
        feed(b"GET / HTTP/1.0\r\n\r\n"),
        event,
        event,
        response(200, [CL2]),
        data(b"ok"),
        end(),
        again,
    ],
    "client closes": [
        feed(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        event,
        event,
        response(200, [CL2]),
        data(b"ok"),
        end(),
        again,
    ],
    "HEAD, 204, 304": [
        feed(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"),
        event,
        event,
        response(200, [CL2]),
        data(b"ok"),
        end(),
        again,
        feed(GET),
        event,
        event,
        response(204, [CL2]),
        end(),
        again,
        feed(GET),
        event,
        event,
        response(304, [CL2]),
        data(b""),
        end(),
        again,
    ],
    "unknown length, chunked, trailers": [
        feed(GET),
        event,
        event,
        response(200, []),
        data(b"abc"),
        end([(b"X-T", b"1")]),
        again,
    ],
    "too much, too little": [
        feed(GET),
        event,
        event,
        response(200, [CL2]),
        data(b"abc"),
        data(b"a"),
        end(),
        data(b"b"),
        end(),
    ],
    "response sent too early or twice": [
        response(200, [CL2]),
        feed(GET),
        event,
        response(200, [CL2]),
        response(200, [CL2]),
        data(b"ok"),
        end(),
        end(),
        again,
    ],
    "upgrade, accepted": [
        feed(GET[:-2] + b"Connection: upgrade\r\nUpgrade: websocket\r\n\r\nhello"),
        event,
        event,
        event,
        response(101, [(b"Upgrade", b"upgrade", b"websocket")]),
        event,
    ],
    "upgrade, refused": [
        feed(GET[:-2] + b"Connection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
        event,
        event,
        response(200, [CL2]),
        data(b"ok"),
        end(),
        again,
    ],
    "CONNECT": [
        feed(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"),
        event,
        event,
        response(200, [CL2]),
        event,
    ],
    "expect 100-continue": [
        feed(b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"),
        event,
        lambda codec, out: out.append(codec.send_continue()),
        feed(b"z"),
        event,
        event,
        response(200, [CL2]),
        data(b"ok"),
        end(),
        again,
    ],
    "peer closes mid-body and between messages": [
        feed(GET),
        event,
        event,
        response(200, [CL2]),
        data(b"ok"),
        end(),
        again,
        feed(b""),
        event,
    ],
}

CLIENT: dict[str, list[Op]] = {
    "usual, twice": [
        *(request(b"GET", [HOST]), feed(OK), event, event, event, again),
        *(request(b"GET", [HOST]), feed(OK), event, event, event, again),
    ],
    "keep-alive twice": [
        request(b"GET", [HOST]),
        feed(OK * 2),
        event,
        event,
        event,
        again,
        request(b"GET", [HOST]),
        event,
        event,
        event,
        again,
    ],
    "a request body": [
        request(b"POST", [HOST, (b"Content-Length", b"3")], end=False),
        data(b"abc"),
        end(),
        feed(OK),
        event,
        event,
        event,
        again,
    ],
    "a chunked request with trailers": [
        request(b"POST", [HOST, (b"Transfer-Encoding", b"chunked")], end=False),
        data(b"abc"),
        end([(b"X-T", b"1")]),
        feed(OK),
        event,
        event,
        event,
        again,
    ],
    "we ask to close": [
        request(b"GET", [HOST, (b"Connection", b"close")]),
        feed(OK),
        event,
        event,
        event,
        again,
    ],
    "the upstream closes": [
        request(b"GET", [HOST]),
        feed(OK[:-2] + b"Connection: close\r\n"),
        feed(b"\r\nok"),
        event,
        event,
        event,
        again,
    ],
    "HTTP/1.0 upstream, read to the end": [
        request(b"GET", [HOST]),
        feed(b"HTTP/1.0 200 OK\r\n\r\nabc"),
        event,
        event,
        feed(b""),
        event,
        again,
    ],
    "HEAD": [request(b"HEAD", [HOST]), feed(OK[:-2]), event, event, again],
    "bytes past the response": [
        request(b"GET", [HOST]),
        feed(OK + b"junk"),
        event,
        event,
        event,
        again,
    ],
    "informational, then final": [
        request(b"GET", [HOST]),
        feed(b"HTTP/1.1 103 E\r\n\r\n"),
        event,
        feed(OK),
        event,
        event,
        event,
        again,
    ],
    "upgrade": [
        request(b"GET", [HOST, (b"Connection", b"upgrade"), (b"Upgrade", b"ws")]),
        feed(b"HTTP/1.1 101 S\r\nUpgrade: ws\r\nConnection: upgrade\r\n\r\nhi"),
        event,
        event,
    ],
    "upgrade refused": [
        request(b"GET", [HOST, (b"Upgrade", b"ws")]),
        feed(OK),
        event,
        event,
        event,
        again,
    ],
    "CONNECT": [request(b"CONNECT", [HOST]), feed(b"HTTP/1.1 200 OK\r\n\r\n"), event, event],
    "two Content-Lengths": [
        request(b"POST", [HOST, (b"Content-Length", b"1"), (b"Content-Length", b"1")], False),
        data(b"a"),
        end(),
    ],
    "a request while one is open": [
        request(b"GET", [HOST]),
        request(b"GET", [HOST]),
        data(b"x"),
        end(),
    ],
    "the upstream closes early": [
        request(b"GET", [HOST]),
        feed(OK[:-1]),
        event,
        event,
        feed(b""),
        event,
        event,
    ],
}


@pytest.mark.parametrize("ops", SERVER.values(), ids=list(SERVER))
def test_serving_is_the_same_both_ways(ops: list[Op]) -> None:
    assert _run(Role.SERVER, ops, True) == _run(Role.SERVER, ops, False)


@pytest.mark.parametrize("ops", CLIENT.values(), ids=list(CLIENT))
def test_forwarding_is_the_same_both_ways(ops: list[Op]) -> None:
    assert _run(Role.CLIENT, ops, True) == _run(Role.CLIENT, ops, False)


def test_the_usual_exchange_never_walks_the_machine(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if not source_build.runs_here(request):
        return  # it ran on the source build, where the machine's methods can be patched

    def walked(*args: object) -> None:
        raise AssertionError("the machine was walked")

    usual_server = SERVER["keep-alive twice"]
    usual_client = CLIENT["usual, twice"]
    # The slow path does walk it: the patch bites.
    with pytest.raises(AssertionError), monkeypatch.context() as patched:
        patched.setattr(Machine, "settle", walked)
        _run(Role.SERVER, usual_server, False)
    for name in ("client_event", "server_event", "settle", "next_cycle"):
        monkeypatch.setattr(Machine, name, walked)
    served = _run(Role.SERVER, usual_server, True)
    forwarded = _run(Role.CLIENT, usual_client, True)
    assert served[3][1] == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
    assert forwarded[0][1] == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert [step[0] for step in forwarded if isinstance(step[0], bool)] == [True, True]
