"""The pool's opener dials a socket (from a chosen source); the pool speaks HTTP on it.

The mesh's inbound pool dials from 127.0.0.6 so the app's traffic is not captured
again; the upstream must see that source, and the exchange must work as on a
connection the pool opened itself.
"""

from __future__ import annotations

from proxy.http import UpstreamPool
from proxy.http.codec import codec_named
from proxy.l4.dial import PASSTHROUGH_SOURCE4, passthrough_opener
from tests.support.engine_front import proxied, run
from tests.support.http_client import read_response
from tests.support.http_server import Upstream


def test_requests_go_out_on_the_opener_socket_from_its_source(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        endpoint = ("127.0.0.1", up.port)
        pool = UpstreamPool(opener=passthrough_opener(1.0), codec=codec_named(codec))
        async with proxied(endpoint, pool=pool, codec=codec) as front:
            reader, writer = await front.connect()
            bodies = []
            for _ in range(3):
                writer.write(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
                bodies.append((await read_response(reader)).body.split(b" ")[0])
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert bodies == [b"2", b"2", b"2"]
        assert {seen.peer[0] for seen in up.requests} == {PASSTHROUGH_SOURCE4}
        assert pool.opened == 1  # kept alive on the socket the opener dialled

    run(main())
