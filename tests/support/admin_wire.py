"""The admin ports' tiny HTTP server on 127.0.0.1:0, for scripted conversations.

``AdminWire`` serves given ``Endpoints`` with ``serve_connection`` on a real socket;
``converse`` sends bytes and returns everything the server wrote until it closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from proxy.admin.httpmini import Endpoints, serve_connection


@contextlib.asynccontextmanager
async def admin_wire(endpoints: Endpoints) -> AsyncIterator[int]:
    """Serve ``endpoints`` on 127.0.0.1; yields the port."""
    tasks: set[asyncio.Task[None]] = set()

    def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(serve_connection(endpoints, reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(accepted, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        if tasks:  # connections end by themselves once their clients are gone
            await asyncio.wait(list(tasks), timeout=3)
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def converse(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data``, then read until the server closes: the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
