"""The engine under the worker's overload guard, per codec.

A client that stops reading a large response fills its buffers: the guard counts what
they hold (bounded per connection), and past ``max_buffered_bytes`` new requests get
503 ``OM`` with ``Connection: close``; once the slow client reads on, the total falls
to zero and requests are served again. Requests waiting for an upstream connection
past ``max_pending_requests`` get 503 ``UO``.
"""

from __future__ import annotations

import asyncio
import socket

from proxy.core.flags import Flag
from proxy.http import UpstreamPool
from proxy.http.codec import codec_named
from proxy.policy.overload import Overload, OverloadLimits, Reason
from tests.support.counting_upstream import SLICE_BUFFER, CountingDownload
from tests.support.engine_front import proxied, run
from tests.support.http_client import get, read_head, read_response
from tests.support.http_server import HttpServer, Mode

SIZE = 32 * 1024 * 1024
PER_CONNECTION = 64 * 1024


async def until(check: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_full_buffers_past_the_total_shed_new_requests_until_they_drain(codec: str) -> None:
    overload = Overload(OverloadLimits(max_buffered_bytes=100_000))

    async def main() -> None:
        up = await CountingDownload(SIZE).start()
        pool = UpstreamPool(codec=codec_named(codec), overload=overload)
        async with proxied(
            ("127.0.0.1", up.port), codec=codec, pool=pool, overload=overload
        ) as front:
            slow_r, slow_w = await front.connect()
            slow_w.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVBUF, SLICE_BUFFER
            )
            slow_w.write(get("/big"))
            status, _, _ = await read_head(slow_r)
            await until(lambda: overload.overloaded)  # reading nothing from here on
            held = overload.buffered
            # Both wires of the exchange are paused: each holds about one buffer's worth.
            assert PER_CONNECTION < held <= 8 * PER_CONNECTION, held

            r, w = await front.connect()
            w.write(get("/other"))
            shed = await asyncio.wait_for(read_response(r), 5)
            assert await asyncio.wait_for(r.read(), 5) == b""  # and the connection closed
            w.close()

            got = 0
            while got < SIZE:  # the slow client reads everything after all
                chunk = await asyncio.wait_for(slow_r.read(1 << 20), 10)
                assert chunk, "the body ended early"
                got += len(chunk)
            await until(lambda: overload.buffered == 0)
            assert overload.overloaded is False
            slow_w.close()

            r, w = await front.connect()
            w.write(get("/again", "Connection: close"))
            again = await asyncio.wait_for(read_response(r, keep_body=False), 10)
            w.close()
            records = list(front.records)
        await up.close()
        assert status == 200 and got == SIZE
        assert shed.status == 503 and shed.header(b"connection") == b"close"
        assert shed.body.startswith(b"503 Service Unavailable (OM)"), shed.body
        assert again.status == 200
        om = [rec for rec in records if rec.flag is Flag.OVERLOAD_MANAGER]
        assert [(rec.status, rec.path) for rec in om] == [(503, "/other")]
        assert overload.rejections[Reason.BUFFERED_BYTES] == 1

    run(main())


def test_requests_waiting_past_the_pending_cap_get_503_uo(codec: str) -> None:
    overload = Overload(OverloadLimits(max_pending_requests=1))

    async def main() -> None:
        server = await HttpServer("slow", mode=Mode(delay_ms=300)).start()
        pool = UpstreamPool(max_per_endpoint=1, codec=codec_named(codec), overload=overload)
        async with proxied(
            ("127.0.0.1", server.port), codec=codec, pool=pool, overload=overload
        ) as front:

            async def one(delay: float) -> int:
                await asyncio.sleep(delay)
                r, w = await front.connect()
                w.write(get("/", "Connection: close"))
                response = await asyncio.wait_for(read_response(r), 10)
                w.close()
                return response.status

            # One holds the only connection, one waits for it, the third finds the
            # worker's pending cap full.
            statuses = await asyncio.gather(one(0), one(0.05), one(0.1))
            flags = sorted(rec.flag.value for rec in front.records)
        await server.close()
        assert sorted(statuses) == [200, 200, 503]
        assert flags == ["-", "-", "UO"]
        assert overload.rejections[Reason.PENDING_REQUESTS] == 1
        assert overload.pending == 0  # the one that waited gave its place back

    run(main())
