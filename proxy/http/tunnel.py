"""Raw byte relay for a connection that switched protocols (101 Upgrade, CONNECT).

Each direction copies until end-of-file and then half-closes the other side, so a
peer that shuts down its sending side still receives the rest. An error in either
direction aborts both connections so the other copy cannot hang.
"""

from __future__ import annotations

import asyncio


async def _copy(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    read_size: int,
    other: asyncio.StreamWriter,
) -> int:
    total = 0
    try:
        while data := await reader.read(read_size):
            writer.write(data)
            total += len(data)
            await writer.drain()
        if writer.can_write_eof() and not writer.transport.is_closing():
            writer.write_eof()
    except OSError:
        # One side reset: there is nobody left to relay for in either direction.
        writer.transport.abort()
        other.transport.abort()
    return total


async def relay(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    read_size: int,
) -> tuple[int, int]:
    """Copy both ways until both sides finished; returns (bytes to upstream, to client)."""
    upward = asyncio.get_running_loop().create_task(
        _copy(client[0], upstream[1], read_size, client[1])
    )
    try:
        downward = await _copy(upstream[0], client[1], read_size, upstream[1])
        return await upward, downward
    finally:
        if not upward.done():
            upward.cancel()
