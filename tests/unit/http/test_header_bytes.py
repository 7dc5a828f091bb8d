"""Header handling seen from the upstream's side of the wire: exact bytes."""

from __future__ import annotations

import uuid

import pytest

from proxy.http.headers import RequestFacts, rewrite_request, rewrite_response
from tests.support.engine_front import proxied, run
from tests.support.http_client import read_response
from tests.support.http_server import Upstream


def _request(*lines: str, body: bytes = b"") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_hop_by_hop_headers_never_reach_the_upstream_and_casing_is_kept(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(
                _request(
                    "POST /echo HTTP/1.1",
                    "hOsT: Upstream.Test",
                    "X-MiXeD-CaSe: Value With Spaces",
                    "Connection: keep-alive, X-Drop-Me",
                    "X-Drop-Me: secret",
                    "Keep-Alive: timeout=5",
                    "Proxy-Connection: keep-alive",
                    "TE: gzip",
                    "Upgrade: h2c",
                    "Transfer-Encoding: chunked",
                    "x-Request-ID: keep-this-id",
                    "",
                    "5",
                    "hello",
                    "0",
                )
            )
            resp = await read_response(reader)
            assert resp.status == 200
            writer.close()
            await writer.wait_closed()
        await up.close()
        head = up.requests[0].raw_head
        lowered = head.lower()
        for gone in (
            b"connection:",
            b"x-drop-me",
            b"keep-alive",
            b"proxy-connection",
            b"\r\nte:",
            b"upgrade",
        ):
            assert gone not in lowered, (gone, head)
        assert b"\r\nhOsT: Upstream.Test\r\n" in head
        assert b"\r\nX-MiXeD-CaSe: Value With Spaces\r\n" in head
        assert b"\r\nx-Request-ID: keep-this-id\r\n" in head
        assert lowered.count(b"transfer-encoding") == 1  # re-framed by h11, not copied
        assert resp.body.startswith(b"5 ")  # the chunked body arrived intact

    run(main())


def test_x_request_id_is_generated_when_absent_and_reported(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(_request("GET /echo HTTP/1.1", "Host: a"))
            resp = await read_response(reader)
            writer.close()
            await writer.wait_closed()
        await up.close()
        generated = up.requests[0].header(b"x-request-id")
        assert generated is not None
        assert uuid.UUID(generated.decode()).version == 4
        assert resp.header(b"x-seen-id") == generated
        assert front.records[0].request_id == generated.decode()

    run(main())


def test_te_trailers_survives_and_response_hop_by_hop_is_removed(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(_request("GET /close HTTP/1.1", "Host: a", "TE: trailers, deflate"))
            resp = await read_response(reader)
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert b"\r\nTE: trailers\r\n" in up.requests[0].raw_head
        assert resp.header(b"connection") is None

    run(main())


@pytest.mark.parametrize(
    ("raw", "expected", "facts"),
    [
        (
            [(b"Host", b"h"), (b"Connection", b"close, X-A"), (b"X-A", b"1"), (b"X-B", b"2")],
            [(b"Host", b"h"), (b"X-B", b"2")],
            {"host": b"h", "upgrade": b""},
        ),
        (
            [(b"Host", b"h"), (b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")],
            [(b"Host", b"h"), (b"Upgrade", b"websocket"), (b"Connection", b"upgrade")],
            {"upgrade": b"websocket"},
        ),
        (
            [(b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")],
            [(b"Transfer-Encoding", b"chunked")],
            {"chunked": True, "content_length": None},
        ),
        (
            [(b"Expect", b"100-continue"), (b"Content-Length", b"10")],
            [(b"Content-Length", b"10")],
            {"content_length": 10},
        ),
    ],
)
def test_rewrite_request_cases(
    raw: list[tuple[bytes, bytes]], expected: list[tuple[bytes, bytes]], facts: dict[str, object]
) -> None:
    found = RequestFacts()
    assert rewrite_request(_items(raw), found) == expected
    for name, value in facts.items():
        assert getattr(found, name) == value


def _items(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes, bytes]]:
    return [(name, name.lower(), value) for name, value in raw]


def test_rewrite_response_keeps_upgrade_only_when_switching() -> None:
    raw = _items([(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"), (b"X", b"1")])
    assert rewrite_response(raw, upgrade=False) == (_items([(b"X", b"1")]), False)
    assert rewrite_response(raw, upgrade=True)[0] == _items(
        [(b"X", b"1"), (b"Upgrade", b"websocket"), (b"Connection", b"upgrade")]
    )
    chunked = _items([(b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"5")])
    assert rewrite_response(chunked, upgrade=False) == ([], True)


def test_empty_request_id_is_replaced_not_duplicated() -> None:
    facts = RequestFacts()
    out = rewrite_request(_items([(b"X-Request-Id", b""), (b"Host", b"h")]), facts)
    assert out == [(b"Host", b"h")]
    assert facts.request_id == b""


def test_connection_tokens_still_drop_the_headers_they_name() -> None:
    raw = _items([(b"Connection", b"keep-alive"), (b"Keep-Alive", b"timeout=5"), (b"X-A", b"1")])
    assert rewrite_response(raw, upgrade=False) == (_items([(b"X-A", b"1")]), False)
    named = _items(
        [(b"Connection", b"keep-alive, X-Private"), (b"x-private", b"s"), (b"X-A", b"1")]
    )
    assert rewrite_response(named, upgrade=False) == (_items([(b"X-A", b"1")]), False)
