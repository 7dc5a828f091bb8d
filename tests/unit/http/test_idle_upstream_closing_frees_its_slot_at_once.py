"""An upstream closing a pooled idle connection is heard at once, with no read pending.

The connection's protocol hears the FIN; the pool drops it right then, so its slot
counts against ``max_per_endpoint`` no longer, long before the idle sweep would come.
"""

from __future__ import annotations

import asyncio

from proxy.http import UpstreamPool
from proxy.http.codec import codec_named
from tests.support.engine_front import proxied, run
from tests.support.http_client import get, read_response
from tests.support.http_server import Upstream


def test_an_idle_connection_the_upstream_closes_leaves_the_pool_at_once(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        endpoint = ("127.0.0.1", up.port)
        pool = UpstreamPool(idle_timeout=60, max_per_endpoint=1, codec=codec_named(codec))
        async with proxied(endpoint, pool=pool, codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(get("/hello"))
            assert (await read_response(reader)).body == b"hello"
            assert (pool.idle_connections(endpoint), pool.open_connections(endpoint)) == (1, 1)
            await up.close()  # the upstream hangs up on the idle connection
            for _ in range(200):
                if not pool.open_connections(endpoint):
                    break
                await asyncio.sleep(0.01)
            counts = (pool.idle_connections(endpoint), pool.open_connections(endpoint))
            writer.close()
            await writer.wait_closed()
        assert counts == (0, 0)  # dropped within the poll, not at the 60 s sweep
        assert pool.opened == 1

    run(main())
