"""Runs ``HttpProxy`` behind a plain 127.0.0.1:0 listener, as the L4 core would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from proxy.http import HttpProxy, Limits, PassthroughDispatcher, RequestRecord, UpstreamPool
from proxy.http.model import Dispatcher
from proxy.l4.conn import Direction, Intercepted

T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    """Run one test coroutine on a fresh loop; a hang fails the test instead of CI."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@dataclass
class Front:
    port: int
    pool: UpstreamPool
    records: list[RequestRecord] = field(default_factory=list)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)


@contextlib.asynccontextmanager
async def proxied(
    target: tuple[str, int],
    *,
    limits: Limits | None = None,
    pool: UpstreamPool | None = None,
    dispatcher: Callable[[list[RequestRecord]], Dispatcher] | None = None,
    engine: type[HttpProxy] = HttpProxy,
) -> AsyncIterator[Front]:
    """A listener whose connections the proxy serves as if headed to ``target``."""
    pool = pool or UpstreamPool()
    records: list[RequestRecord] = []
    chosen = dispatcher(records) if dispatcher else PassthroughDispatcher(records.append)
    proxy = engine(chosen, pool, limits or Limits())
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        peer = writer.get_extra_info("peername")
        conn = Intercepted(Direction.OUTBOUND, (peer[0], peer[1]), target, 4)
        try:
            await proxy(conn, reader, writer, b"")
        finally:
            handlers.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    front = Front(server.sockets[0].getsockname()[1], pool, records)
    try:
        yield front
    finally:
        await stop_serving(server, handlers)
        await pool.close()


async def stop_serving(server: asyncio.AbstractServer, handlers: set[asyncio.Task[Any]]) -> None:
    """Close ``server``; let its connection handlers see their clients go, cancel the rest."""
    server.close()
    for _ in range(50):
        if not handlers:
            break
        await asyncio.sleep(0.01)
    for task in list(handlers):
        task.cancel()
    for task in list(handlers):
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await server.wait_closed()
