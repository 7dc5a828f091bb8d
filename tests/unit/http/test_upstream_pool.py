"""Upstream pool and timeouts: reuse, expiry, the keep-alive race, overflow, uvloop."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from proxy.core.flags import Flag
from proxy.http import Limits, UpstreamPool
from proxy.http.codec import codec_named
from tests.support.engine_front import proxied, run
from tests.support.http_client import get, read_head, read_response
from tests.support.http_server import Upstream


def test_stale_pooled_connection_is_retried_once_on_a_fresh_one(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/hello"))
            assert (await read_response(reader)).status == 200
            writer.write(get("/hello", "X-Drop-If-Reused: 1"))
            resp = await read_response(reader)
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert (resp.status, resp.body) == (200, b"hello")
        assert up.connections == 2
        assert front.records[1].attempts == 2
        assert front.records[1].flag is Flag.NONE

    run(main())


def test_upstream_closing_an_idle_connection_is_noticed(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/silent-close"))
            assert (await read_response(reader)).body == b"bye"
            await asyncio.sleep(0.05)
            writer.write(get("/hello"))
            assert (await read_response(reader)).body == b"hello"
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert up.connections == 2
        assert [r.status for r in front.records] == [200, 200]

    run(main())


def test_connection_with_bytes_beyond_the_response_is_not_reused(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/extra"))
            assert (await read_response(reader)).body == b"ok"
            writer.write(get("/hello"))
            assert (await read_response(reader)).body == b"hello"
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert up.connections == 2

    run(main())


def test_idle_upstream_connections_expire(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        pool = UpstreamPool(idle_timeout=0.1, codec=codec_named(codec))
        endpoint = ("127.0.0.1", up.port)
        async with proxied(endpoint, pool=pool, codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/hello"))
            await read_response(reader)
            assert pool.idle_connections(endpoint) == 1
            await asyncio.sleep(0.3)
            assert pool.idle_connections(endpoint) == 0  # swept without any traffic
            assert pool.open_connections(endpoint) == 0
            writer.write(get("/hello"))
            assert (await read_response(reader)).status == 200
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert up.connections == 2

    run(main())


def test_idle_client_connection_is_closed_after_the_idle_timeout(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        limits = Limits(downstream_idle_timeout=0.1)
        async with proxied(("127.0.0.1", up.port), limits=limits, codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/hello"))
            await read_response(reader)
            assert await asyncio.wait_for(reader.read(), 2) == b""
            writer.close()
            await writer.wait_closed()
        await up.close()

    run(main())


def test_full_pool_with_no_queue_overflows_503_uo(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        pool = UpstreamPool(max_per_endpoint=1, max_pending=0, codec=codec_named(codec))
        async with proxied(("127.0.0.1", up.port), pool=pool, codec=codec) as front:

            async def one(path: str) -> int:
                reader, writer = await front.connect()
                writer.write(get(path))
                status = (await read_response(reader)).status
                writer.close()
                await writer.wait_closed()
                return status

            slow = asyncio.ensure_future(one("/slow?s=0.3"))
            await asyncio.sleep(0.1)
            assert await one("/hello") == 503
            assert await slow == 200
        await up.close()
        assert Flag.UPSTREAM_OVERFLOW in {r.flag for r in front.records}

    run(main())


def test_head_response_keeps_content_length_and_has_no_body(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(b"HEAD /download?n=1234 HTTP/1.1\r\nHost: a\r\n\r\n")
            status, raw, _ = await read_head(reader)
            writer.write(get("/hello"))  # a body after the HEAD would corrupt this one
            follow = await read_response(reader)
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert status == 200
        assert b"Content-Length: 1234\r\n" in raw
        assert follow.body == b"hello"

    run(main())


def test_the_engine_runs_on_uvloop(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            for _ in range(50):
                writer.write(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
                assert (await read_response(reader)).body.startswith(b"3 ")
            writer.write(get("/ws", "Upgrade: echo", "Connection: upgrade"))
            status, _, _ = await read_head(reader)
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"PING"
            writer.close()
            await writer.wait_closed()
            reader, writer = await front.connect()
            writer.write(get("/hello"))
            assert (await read_response(reader)).body == b"hello"
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert status == 101
        assert up.connections == 2  # the upgraded one was not pooled again

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_request_head_bytes", 0), ("upstream_timeout", -1), ("max_request_body_bytes", -5)],
)
def test_bad_limits_name_the_field(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"Limits.{field}: .*{value}"):
        Limits(**{field: value})
