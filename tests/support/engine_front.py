"""Runs ``HttpProxy`` behind a plain 127.0.0.1:0 listener, as the L4 core would.

The codec is a required argument: every test through the engine takes the ``codec``
fixture (tests/conftest.py), so it runs once per codec in the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from proxy.core.flags import Flag
from proxy.http import (
    Exchange,
    Forwarder,
    HttpProxy,
    Limits,
    LocalReply,
    PassthroughForwarder,
    RequestHead,
    RequestRecord,
    Target,
    UpstreamError,
    UpstreamPool,
)
from proxy.http.codec import codec_named
from proxy.http.passthrough import attempt_once
from proxy.l4.conn import Direction, Intercepted
from proxy.policy.overload import Overload

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
    engine: HttpProxy | None = None  # the engine serving the listener (e.g. to drain it)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)


@contextlib.asynccontextmanager
async def proxied(
    target: tuple[str, int],
    *,
    codec: str,
    limits: Limits | None = None,
    pool: UpstreamPool | None = None,
    forwarder: Callable[[list[RequestRecord], UpstreamPool], Forwarder] | None = None,
    overload: Overload | None = None,
) -> AsyncIterator[Front]:
    """A listener whose connections the proxy serves as if headed to ``target``, with
    the codec named ``codec`` on both sides; ``forwarder`` makes the engine's forwarder
    from the records list and the pool (default: ``PassthroughForwarder``, to ``target``);
    ``overload``: the worker's guard the engine reports to (the pool takes its own)."""
    factory = codec_named(codec)
    pool = pool or UpstreamPool(codec=factory)
    if pool.codec is not factory:
        raise ValueError(f"the pool given speaks another codec than {codec!r}")
    records: list[RequestRecord] = []
    if forwarder is not None:
        chosen = forwarder(records, pool)
    else:
        chosen = PassthroughForwarder(records.append, pool=pool)
    proxy = HttpProxy(chosen, limits or Limits(), codec=factory, overload=overload)
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
    front = Front(server.sockets[0].getsockname()[1], pool, records, proxy)
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


class Plan:
    """A test ``Forwarding``: answer ``reply`` locally, or try ``targets`` in order.

    Each target gets the keep-alive race retry (``attempt_once``); a failure before the
    response committed moves on to the next target while the body can be replayed,
    as a retry policy would. ``on_done`` receives the finished record.
    """

    def __init__(
        self,
        *targets: Target,
        reply: LocalReply | None = None,
        service: str = "svc",
        version: str = "",
        on_done: Callable[[RequestRecord], None] | None = None,
    ) -> None:
        self.targets = targets
        self.reply = reply
        self.service = service
        self.version = version
        self.on_done = on_done
        self.flag = Flag.NONE

    async def run(self, exchange: Exchange) -> None:
        for index, target in enumerate(self.targets):
            try:
                await attempt_once(exchange, target)
                return
            except UpstreamError:
                if index + 1 == len(self.targets) or not exchange.can_retry:
                    raise

    def done(self, record: RequestRecord) -> None:
        if self.on_done is not None:
            self.on_done(record)


class Planned:
    """A test ``Forwarder`` whose ``plan(conn, head)`` makes each request's ``Plan``."""

    def __init__(
        self, records: list[RequestRecord], plan: Callable[[Intercepted, RequestHead], Plan]
    ) -> None:
        self.records = records
        self.plan = plan

    def start(self, conn: Intercepted, head: RequestHead) -> Plan:
        plan = self.plan(conn, head)
        if plan.on_done is None:
            plan.on_done = self.records.append
        return plan

    def refused(self, record: RequestRecord) -> None:
        self.records.append(record)
