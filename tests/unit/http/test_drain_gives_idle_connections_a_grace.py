"""A drain (SIGTERM, POST /drain) on HTTP/1 keep-alive connections, through the engine.

A connection idle between requests is not cut at once: its client may have sent its
next request already, trusting a response relayed just before the drain. Within the
grace that request is answered, with ``Connection: close``; a connection that stays
silent is closed when the grace is over.
"""

from __future__ import annotations

import asyncio

from proxy.http import server
from tests.support.engine_front import proxied, run
from tests.support.http_client import get, read_response
from tests.support.http_server import Upstream


def test_a_request_sent_on_an_idle_connection_after_the_drain_is_answered_with_close(
    codec: str,
) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/hello"))
            first = await read_response(reader)
            assert first.status == 200 and first.header(b"connection") is None
            await asyncio.sleep(0.05)  # idle now, waiting for its next request
            assert front.engine is not None
            front.engine.drain()
            writer.write(get("/hello"))  # sent before it could know of the drain
            second = await read_response(reader)
            assert (second.status, second.body) == (200, b"hello")
            assert second.header(b"connection") == b"close"
            assert await reader.read() == b""  # then the proxy closes
            writer.close()
        await up.close()
        assert len(up.requests) == 2

    run(main())


def test_an_idle_connection_that_stays_silent_closes_when_the_grace_is_over(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/hello"))
            assert (await read_response(reader)).status == 200
            await asyncio.sleep(0.05)
            assert front.engine is not None
            loop = asyncio.get_running_loop()
            drained = loop.time()
            front.engine.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""
            waited = loop.time() - drained
            # Not at once, and not at the idle timeout (minutes): at the grace.
            assert server._DRAIN_IDLE_GRACE * 0.8 <= waited < server._DRAIN_IDLE_GRACE + 1.0
            writer.close()
        await up.close()

    run(main())
