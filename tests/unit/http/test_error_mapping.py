"""Error mapping: what the client sees, which flag is recorded, and that the proxy
keeps serving the next connection afterwards."""

from __future__ import annotations

import asyncio
import socket

from proxy.core.flags import Flag
from proxy.http import (
    Limits,
    LocalReply,
    PassthroughForwarder,
    RequestHead,
    RequestRecord,
    Target,
    UpstreamPool,
)
from proxy.l4.conn import Intercepted
from tests.support.engine_front import Front, Plan, Planned, proxied, run
from tests.support.http_client import get, read_response
from tests.support.http_server import Upstream


async def _exchange(front: Front, data: bytes) -> tuple[int, bytes, bytes]:
    """Send ``data``, read one response, return (status, body, whatever follows)."""
    reader, writer = await front.connect()
    writer.write(data)
    resp = await read_response(reader)
    rest = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    return resp.status, resp.body, rest


async def _still_serves(front: Front) -> None:
    reader, writer = await front.connect()
    writer.write(get("/hello"))
    assert (await read_response(reader)).body == b"hello"
    writer.close()
    await writer.wait_closed()


def test_oversized_head_gets_431_and_the_proxy_serves_the_next_connection(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        limits = Limits(max_request_head_bytes=4096)
        async with proxied(("127.0.0.1", up.port), limits=limits, codec=codec) as front:
            status, body, rest = await _exchange(front, get("/hello", "X-Big: " + "a" * 3000 * 3))
            assert (status, rest) == (431, b"")
            assert b"431" in body and b"too large" in body
            # one that fits in a single read but is still over the limit
            status, _, _ = await _exchange(front, get("/hello", "X-Big: " + "b" * 4100))
            assert status == 431
            await _still_serves(front)
        await up.close()
        assert len(up.requests) == 1  # only the good one reached the upstream

    run(main())


def test_malformed_request_gets_400_and_connection_closed(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            status, body, rest = await _exchange(front, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
            assert (status, rest) == (400, b"")
            assert b"DPE" in body
            await _still_serves(front)
        await up.close()
        assert front.records[0].status == 400
        assert front.records[0].flag is Flag.DOWNSTREAM_PROTOCOL_ERROR

    run(main())


def test_unsupported_transfer_coding_gets_501(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            status, body, rest = await _exchange(
                front, b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"
            )
            assert (status, rest) == (501, b"")
            assert b"DPE" in body
            await _still_serves(front)
        await up.close()
        assert len(up.requests) == 1

    run(main())


def test_expect_100_with_a_refused_upstream_gets_503_without_the_body(codec: str) -> None:
    async def main() -> None:
        async with proxied(("127.0.0.1", _free_port()), codec=codec) as front:
            status, body, rest = await _exchange(
                front,
                b"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\nExpect: 100-continue\r\n\r\n",
            )
        assert (status, rest) == (503, b"")  # no 100 Continue came first, then closed
        assert b"UF" in body

    run(main())


def test_body_over_the_limit_gets_413_for_both_framings(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        limits = Limits(max_request_body_bytes=1000)
        async with proxied(("127.0.0.1", up.port), limits=limits, codec=codec) as front:
            status, _, rest = await _exchange(
                front, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n"
            )
            assert (status, rest) == (413, b"")
            chunk = b"x" * 600
            status, _, _ = await _exchange(
                front,
                b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                + (b"258\r\n" + chunk + b"\r\n") * 2
                + b"0\r\n\r\n",
            )
            assert status == 413
            await _still_serves(front)
        await up.close()

    run(main())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting there is refused


def test_refused_upstream_gets_503_uf_and_keeps_the_client_connection(codec: str) -> None:
    async def main() -> None:
        async with proxied(("127.0.0.1", _free_port()), codec=codec) as front:
            reader, writer = await front.connect()
            for _ in range(2):
                writer.write(get("/hello"))
                resp = await read_response(reader)
                assert resp.status == 503
                assert b"UF" in resp.body
            writer.close()
            await writer.wait_closed()
        assert [r.flag for r in front.records] == [Flag.UPSTREAM_CONNECT_FAILURE] * 2

    run(main())


def test_upstream_dying_mid_response_closes_the_client_and_records_ur(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/cut"))
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            rest = await asyncio.wait_for(reader.read(), 5)  # no hang: EOF arrives
            assert len(rest) < 100000
            writer.close()
            await writer.wait_closed()
            await _still_serves(front)
        await up.close()
        record = front.records[0]
        assert (record.status, record.flag) == (200, Flag.UPSTREAM_RESET)

    run(main())


def test_slow_upstream_gets_504_ut(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        limits = Limits(upstream_timeout=0.2)
        async with proxied(("127.0.0.1", up.port), limits=limits, codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/slow?s=3"))
            resp = await asyncio.wait_for(read_response(reader), 2)
            assert resp.status == 504
            assert b"UT" in resp.body
            writer.write(get("/hello"))  # the client connection survives the timeout
            assert (await read_response(reader)).body == b"hello"
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert front.records[0].flag is Flag.UPSTREAM_TIMEOUT
        assert front.records[0].status == 504

    run(main())


def _no_route(records: list[RequestRecord], pool: UpstreamPool) -> Planned:
    """/missing gets a local 404 NR; the rest goes where the client was going."""

    def plan(conn: Intercepted, req: RequestHead) -> Plan:
        if req.path.startswith("/missing"):
            return Plan(reply=LocalReply(404, Flag.NO_ROUTE))
        return Plan(Target(conn.original_dst, pool))

    return Planned(records, plan)


def test_local_reply_names_its_flag_and_keeps_the_connection(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), forwarder=_no_route, codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/missing"))
            resp = await read_response(reader)
            assert resp.status == 404
            assert b"NR" in resp.body
            writer.write(get("/hello"))
            assert (await read_response(reader)).body == b"hello"
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert [(r.status, r.flag, r.service) for r in front.records] == [
            (404, Flag.NO_ROUTE, ""),
            (200, Flag.NONE, "svc"),
        ]

    run(main())


def test_client_leaving_mid_upload_is_recorded_dc(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            _, writer = await front.connect()
            writer.write(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc")
            await asyncio.sleep(0.05)
            writer.close()
            await writer.wait_closed()
            for _ in range(100):
                if front.records:
                    break
                await asyncio.sleep(0.01)
            await _still_serves(front)
        await up.close()
        assert front.records[0].flag is Flag.DOWNSTREAM_DISCONNECT
        assert front.records[0].bytes_received == 3

    run(main())


def test_client_hanging_up_on_a_slow_response_is_recorded_dc_and_abandoned(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        limits = Limits(watch_client_after=0.05)
        async with proxied(("127.0.0.1", up.port), limits=limits, codec=codec) as front:
            _, writer = await front.connect()
            writer.write(get("/slow?s=5"))
            await asyncio.sleep(0.2)
            writer.close()
            await writer.wait_closed()
            for _ in range(100):
                if front.records:
                    break
                await asyncio.sleep(0.01)
            assert front.records, "the proxy kept waiting for a client that left"
            assert front.pool.open_connections(("127.0.0.1", up.port)) == 0  # abandoned
        await up.close()
        record = front.records[0]
        assert (record.status, record.flag) == (0, Flag.DOWNSTREAM_DISCONNECT)

    run(main())


def test_pipelined_request_arriving_during_a_slow_response_is_kept(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        limits = Limits(watch_client_after=0.01)
        async with proxied(("127.0.0.1", up.port), limits=limits, codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/slow?s=0.2"))
            await asyncio.sleep(0.1)  # the watcher is reading by now
            writer.write(get("/hello"))
            first = await read_response(reader)
            second = await read_response(reader)
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert (first.body, second.body) == (b"slow", b"hello")

    run(main())


def test_route_timeout_overrides_the_default_and_zero_disables_it(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        limits = Limits(upstream_timeout=0.1)
        endpoint = ("127.0.0.1", up.port)
        for route_timeout, expected in ((0.0, 200), (None, 504)):

            def make(
                records: list[RequestRecord], pool: UpstreamPool, t: float | None = route_timeout
            ) -> PassthroughForwarder:
                return PassthroughForwarder(records.append, timeout=t, pool=pool)

            async with proxied(endpoint, limits=limits, forwarder=make, codec=codec) as front:
                reader, writer = await front.connect()
                writer.write(get("/slow?s=0.3"))
                assert (await read_response(reader)).status == expected
                writer.close()
                await writer.wait_closed()
        await up.close()

    run(main())
