"""The unvalidated event builders write exactly what h11's public constructors write."""

from __future__ import annotations

import h11
import pytest

from proxy.http.codec import h11fast

HEADS = [
    [(b"Host", b"svc:8080")],
    [(b"Host", b"a"), (b"X-Request-Id", b"id-1"), (b"Content-Length", b"5")],
    [(b"host", b"a"), (b"Transfer-Encoding", b"chunked"), (b"ACCEPT", b"*/*, text/html")],
    [(b"Host", b"a"), (b"Cookie", b"a=1"), (b"cookie", b"b=2"), (b"Empty", b"")],
]


def _items(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes, bytes]]:
    return [(name, name.lower(), value) for name, value in headers]


def test_this_h11_has_the_shape_the_fast_builders_rely_on() -> None:
    assert h11fast.FAST  # if this fails after an h11 upgrade, the proxy is only slower


@pytest.mark.parametrize("headers", HEADS)
@pytest.mark.parametrize("method,target", [(b"GET", b"/"), (b"POST", b"/a/b?c=d&e=%20")])
def test_request_bytes_match_the_public_constructor(
    headers: list[tuple[bytes, bytes]], method: bytes, target: bytes
) -> None:
    fast = h11fast.request(method, target, headers)
    public = h11.Request(method=method, target=target, headers=headers)
    assert fast == public
    assert fast.headers.raw_items() == public.headers.raw_items()
    assert h11.Connection(h11.CLIENT).send(fast) == h11.Connection(h11.CLIENT).send(public)


@pytest.mark.parametrize("headers", [h[1:] for h in HEADS])
@pytest.mark.parametrize("status,reason", [(200, b"OK"), (404, b""), (503, b"Service Unavailable")])
def test_response_bytes_match_the_public_constructor(
    headers: list[tuple[bytes, bytes]], status: int, reason: bytes
) -> None:
    def sent(event: h11.Response) -> bytes:
        server = h11.Connection(h11.SERVER)
        server.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert type(server.next_event()) is h11.Request
        return server.send(event)

    fast = h11fast.response(status, reason, _items(headers))
    public = h11.Response(status_code=status, reason=reason, headers=headers)
    assert fast == public
    assert sent(fast) == sent(public)


def test_informational_matches_the_public_constructor() -> None:
    headers = [(b"Link", b"</style.css>; rel=preload")]
    fast = h11fast.informational(103, b"Early Hints", _items(headers))
    assert fast == h11.InformationalResponse(
        status_code=103, reason=b"Early Hints", headers=headers
    )


def test_without_the_fast_shape_the_public_constructors_still_check() -> None:
    # What ``request`` and ``response`` are bound to when ``FAST`` is False.
    assert h11fast._request(b"GET", b"/", [(b"Host", b"a")]) == h11.Request(
        method=b"GET", target=b"/", headers=[(b"Host", b"a")]
    )
    with pytest.raises(h11.LocalProtocolError):
        h11fast._request(b"GET", b"/", [(b"Host", b"a"), (b"X", b"bad\r\nInjected: 1")])
    with pytest.raises(h11.LocalProtocolError):
        h11fast._final(200, b"OK", [(b"Bad Name", b"bad name", b"v")])
    assert h11fast.request is (h11fast._fast_request if h11fast.FAST else h11fast._request)


@pytest.mark.parametrize("fast", [True, False])
def test_items_of_a_parsed_response_relay_its_names_as_sent(
    monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    monkeypatch.setattr(h11fast, "FAST", fast)
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=b"GET", target=b"/", headers=[(b"Host", b"a")]))
    client.send(h11.EndOfMessage())
    client.receive_data(b"HTTP/1.1 200 OK\r\nX-Mixed: 1\r\ncontent-length: 0\r\nETag: e\r\n\r\n")
    parsed = client.next_event()
    assert type(parsed) is h11.Response
    items = h11fast.items(parsed.headers)
    assert items == [
        (b"X-Mixed", b"x-mixed", b"1"),
        (b"content-length", b"content-length", b"0"),
        (b"ETag", b"etag", b"e"),
    ]
    relayed = h11fast.response(200, b"OK", items)
    assert relayed.headers.raw_items() == parsed.headers.raw_items()


@pytest.mark.parametrize("chunk", [b"", b"x", b"a" * 70000])
def test_data_bytes_match_the_public_constructor(chunk: bytes) -> None:
    fast = h11fast.data(chunk)
    public = h11.Data(data=chunk)
    assert fast == public
    assert (fast.chunk_start, fast.chunk_end) == (False, False)
