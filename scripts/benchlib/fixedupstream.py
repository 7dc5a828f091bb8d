"""The upstream of the in-process benchmarks: one fixed response per request head.

It does no parsing beyond counting ``\r\n\r\n`` (the benchmark requests carry no
body), so its own cost stays out of what is measured and equal between runs.
"""

from __future__ import annotations

import asyncio

HELLO = b"HTTP/1.1 200 X\r\nContent-Length: 5\r\n\r\nhello"


class FixedResponse(asyncio.Protocol):
    """Answers every request head it sees with ``response``."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.pending += data
        heads = self.pending.count(b"\r\n\r\n")
        if heads:
            self.pending = self.pending[self.pending.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(self.response * heads)


async def serve(response: bytes) -> tuple[asyncio.Server, int]:
    """A FixedResponse server on 127.0.0.1:0, and its port."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FixedResponse(response), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]
