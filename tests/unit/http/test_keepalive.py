"""Keep-alive on both sides, pooling, Connection: close, HTTP/1.0 (real sockets)."""

from __future__ import annotations

import asyncio
import hashlib

from proxy.core.flags import Flag
from proxy.http import UpstreamPool
from proxy.http.codec import codec_named
from tests.support.engine_front import proxied, run
from tests.support.http_client import get, read_response
from tests.support.http_server import Upstream


def test_thousand_requests_on_one_client_connection_reuse_one_upstream_connection(
    codec: str,
) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            for i in range(1000):
                writer.write(get(f"/hello?i={i}"))
                resp = await read_response(reader)
                assert (resp.status, resp.body) == (200, b"hello")
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert len(up.requests) == 1000
        assert up.connections == 1  # seen from the server side
        assert {r.flag for r in front.records} == {Flag.NONE}
        assert len(front.records) == 1000

    run(main())


def test_sequential_client_connections_share_pooled_upstream_connections(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            for _ in range(20):
                reader, writer = await front.connect()
                writer.write(get("/hello"))
                assert (await read_response(reader)).status == 200
                writer.close()
                await writer.wait_closed()
        await up.close()
        assert len(up.requests) == 20
        assert up.connections <= 2

    run(main())


def test_client_connection_close_is_honoured_and_upstream_stays_pooled(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            for _ in range(3):
                reader, writer = await front.connect()
                writer.write(get("/hello", "Connection: close"))
                resp = await read_response(reader)
                assert resp.status == 200
                assert resp.header(b"connection") == b"close"
                assert await reader.read() == b""  # the proxy closed the client side
                writer.close()
                await writer.wait_closed()
            assert front.pool.idle_connections(("127.0.0.1", up.port)) == 1
        await up.close()
        assert up.connections == 1
        assert all(r.header(b"connection") is None for r in up.requests)

    run(main())


def test_upstream_connection_close_is_not_reused_and_client_keeps_alive(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            for path in ("/close", "/close", "/hello"):
                writer.write(get(path))
                resp = await read_response(reader)
                assert resp.status == 200
                assert resp.header(b"connection") is None  # hop-by-hop, not passed on
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert up.connections == 3  # each Connection: close forced a new one

    run(main())


def test_http10_client_gets_close_delimited_body_and_connection_closed(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(b"GET /download?n=5000&chunked=1 HTTP/1.0\r\n\r\n")
            resp = await read_response(reader)
            assert resp.status == 200
            assert resp.header(b"transfer-encoding") is None  # no chunked to HTTP/1.0
            assert resp.raw_head.startswith(b"HTTP/1.1 200")
            assert resp.size == 5000
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
        await up.close()
        seen = up.requests[0]
        assert seen.header(b"host") == f"127.0.0.1:{up.port}".encode()  # added for HTTP/1.1
        assert seen.raw_head.startswith(b"GET /download?n=5000&chunked=1 HTTP/1.1\r\n")

    run(main())


def test_pool_caps_connections_per_endpoint_and_queues_the_rest(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        pool = UpstreamPool(max_per_endpoint=2, codec=codec_named(codec))
        async with proxied(("127.0.0.1", up.port), pool=pool, codec=codec) as front:

            async def one() -> int:
                reader, writer = await front.connect()
                writer.write(get("/slow?s=0.05"))
                status = (await read_response(reader)).status
                writer.close()
                await writer.wait_closed()
                return status

            statuses = await asyncio.gather(*(one() for _ in range(8)))
        await up.close()
        assert statuses == [200] * 8
        assert up.connections == 2

    run(main())


def test_pipelined_requests_are_answered_in_order(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/download?n=3") + get("/hello") + get("/download?n=7&chunked=1"))
            bodies = [(await read_response(reader)).body for _ in range(3)]
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert bodies == [bytes(range(3)), b"hello", bytes(range(7))]
        assert [r.target for r in up.requests] == [
            "/download?n=3",
            "/hello",
            "/download?n=7&chunked=1",
        ]

    run(main())


def test_a_held_response_goes_out_before_the_next_pipelined_answer_and_the_close(
    codec: str,
) -> None:
    """The relayed response waits in the outbox for the loop's pass to end; the 400 for
    a bad pipelined request behind it is written at once and the connection closed:
    the client must still see them in order, both complete."""

    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/hello") + b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
            first = await read_response(reader)
            second = await read_response(reader)
            rest = await reader.read()
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert (first.status, first.body) == (200, b"hello")
        assert second.status == 400 and b"DPE" in second.body
        assert rest == b""  # then the connection closed

    run(main())


def test_concurrent_clients_with_mixed_requests_all_get_their_own_answers(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:

            async def client(n: int) -> list[bytes]:
                reader, writer = await front.connect()
                got = []
                for i in range(20):
                    size = (n * 7919 + i * 104729) % 200_000
                    if i % 3 == 0:
                        writer.write(get(f"/download?n={size}&chunked={i % 2}"))
                        resp = await read_response(reader)
                        assert resp.body == bytes(range(256)) * (size // 256) + bytes(
                            range(size % 256)
                        )
                    else:
                        body = b"%d-%d;" % (n, i) * 100
                        writer.write(
                            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s"
                            % (len(body), body)
                        )
                        resp = await read_response(reader)
                        digest = hashlib.sha256(body).hexdigest()
                        assert resp.body == f"{len(body)} {digest}".encode()
                    got.append(resp.body[:20])
                writer.close()
                await writer.wait_closed()
                return got

            results = await asyncio.gather(*(client(n) for n in range(30)))
        await up.close()
        assert all(len(r) == 20 for r in results)
        assert len(up.requests) == 600
        assert up.connections <= 30
        assert {r.flag for r in front.records} == {Flag.NONE}

    run(main())
