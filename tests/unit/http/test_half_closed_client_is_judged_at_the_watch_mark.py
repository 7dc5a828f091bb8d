"""A client that half-closes after its request: served if the answer is quick, DC if not.

The wire hears the client's FIN the moment it comes, but a FIN alone does not mean the
client left (``nc``-style clients shut their write side and read on). It counts only
once the response has been awaited ``watch_client_after`` seconds: a quicker answer
goes out, a slower one is abandoned at that mark (Envoy's DC), not at the upstream
timeout.
"""

from __future__ import annotations

import asyncio

from proxy.core.flags import Flag
from proxy.http import Limits
from tests.support.engine_front import proxied, run
from tests.support.http_client import get, read_response
from tests.support.http_server import Upstream


def test_an_answer_before_the_mark_reaches_a_half_closed_client(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        limits = Limits(watch_client_after=1.0)
        async with proxied(("127.0.0.1", up.port), limits=limits, codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/slow?s=0.2"))
            writer.write_eof()
            response = await read_response(reader)
            assert await asyncio.wait_for(reader.read(), 2) == b""  # then the proxy closes
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert (response.status, response.body) == (200, b"slow")
        assert [(r.status, r.flag) for r in front.records] == [(200, Flag.NONE)]

    run(main())


def test_a_half_closed_client_is_given_up_at_the_mark_not_at_the_timeout(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        limits = Limits(watch_client_after=0.2, upstream_timeout=30)
        endpoint = ("127.0.0.1", up.port)
        async with proxied(endpoint, limits=limits, codec=codec) as front:
            reader, writer = await front.connect()
            loop = asyncio.get_running_loop()
            start = loop.time()
            writer.write(get("/slow?s=5"))
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 3) == b""  # no answer, closed
            took = loop.time() - start
            for _ in range(100):
                if front.records:
                    break
                await asyncio.sleep(0.01)
            assert front.pool.open_connections(endpoint) == 0  # the upstream was abandoned
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert 0.15 <= took < 2.0
        assert [(r.status, r.flag) for r in front.records] == [(0, Flag.DOWNSTREAM_DISCONNECT)]

    run(main())
