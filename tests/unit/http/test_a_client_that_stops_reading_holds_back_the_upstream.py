"""Flow control end to end: a client that stops reading stops the upstream too.

The proxy writes to the client's transport until it pauses us, then stops reading the
upstream (its wire pauses once a bounded amount waits unconsumed), so the upstream's
writes block. Without that, the proxy would read the whole body into memory. When
the client reads again, everything arrives, in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket

from tests.support.counting_upstream import SLICE_BUFFER, CountingDownload
from tests.support.engine_front import proxied, run
from tests.support.http_client import get, read_head
from tests.support.http_wire import pattern_digest

SIZE = 64 * 1024 * 1024


def test_the_upstream_stalls_while_the_client_reads_nothing(codec: str) -> None:
    async def main() -> None:
        up = await CountingDownload(SIZE).start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLICE_BUFFER)
            writer.write(get("/big"))
            status, _, _ = await read_head(reader)
            await asyncio.sleep(0.5)  # reading nothing
            stalled_at = up.sent
            await asyncio.sleep(0.3)
            still_at = up.sent
            digest, got = hashlib.sha256(), 0
            while got < SIZE:
                chunk = await asyncio.wait_for(reader.read(1 << 20), 10)
                assert chunk, "the body ended early"
                digest.update(chunk)
                got += len(chunk)
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert status == 200
        assert stalled_at < SIZE // 4, f"the proxy read {stalled_at} bytes ahead of its client"
        assert still_at - stalled_at <= 1 << 20  # held back (kernel buffers settle), not slowed
        assert (got, digest.hexdigest()) == (SIZE, pattern_digest(SIZE))

    run(main())
