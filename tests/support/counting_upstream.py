"""An upstream that streams a large body and counts what its socket accepted.

Backpressure tests need to see how far a sender got while the far end stopped reading:
``sent`` is the number of body bytes the server's transport took (each slice is
written, then drained), so a proxy that reads ahead without bound lets it reach the
whole body, and one that honours flow control holds it to a few socket buffers.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

from tests.support.http_wire import pattern_chunks

SLICE_BUFFER = 64 * 1024  # small socket buffers keep the kernel's share of the bound small


@dataclass
class CountingDownload:
    size: int
    sent: int = 0
    port: int = 0
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> CountingDownload:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SLICE_BUFFER)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.size)
            for chunk in pattern_chunks(self.size):
                for start in range(0, len(chunk), SLICE_BUFFER):
                    piece = chunk[start : start + SLICE_BUFFER]
                    writer.write(piece)
                    await writer.drain()
                    self.sent += len(piece)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)
        if self.server is not None:
            await self.server.wait_closed()
