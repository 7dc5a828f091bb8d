"""The simplest forwarder: every request goes where the client was already going.

It is what the engine does with nothing else plugged in (and what the engine tests
use); the mesh plugs in its own ``Forwarder`` the same way. Only the keep-alive race
is retried here: a reused connection that the upstream closed while idle fails
before any response byte, so the request goes once more on a fresh connection to
the same endpoint.
"""

from __future__ import annotations

from collections.abc import Callable

from proxy.core.flags import Flag
from proxy.http.errors import UpstreamError
from proxy.http.exchange import Exchange
from proxy.http.model import LocalReply, RequestHead, RequestRecord, Target
from proxy.http.pool import UpstreamPool
from proxy.l4.conn import Intercepted


async def attempt_once(exchange: Exchange, target: Target) -> int:
    """``exchange.attempt``, once more on a fresh connection after a stale reuse."""
    try:
        return await exchange.attempt(target)
    except UpstreamError as exc:
        if not (exc.stale and exchange.can_retry):
            raise
        return await exchange.attempt(target, fresh=True)


class Passthrough:
    """One request to the original destination (a ``Forwarding``)."""

    __slots__ = ("flag", "forwarder", "reply", "service", "target", "version")

    def __init__(self, forwarder: PassthroughForwarder, target: Target) -> None:
        self.forwarder = forwarder
        self.target = target
        self.reply: LocalReply | None = None
        host, port = target.endpoint
        self.service = f"{host}:{port}"
        self.version = ""
        self.flag = Flag.NONE

    async def run(self, exchange: Exchange) -> None:
        await attempt_once(exchange, self.target)  # (a coroutine is an Awaitable)

    def done(self, record: RequestRecord) -> None:
        self.forwarder.refused(record)


class PassthroughForwarder:
    """Forwards to ``conn.original_dst``; hands each finished record to ``on_done``."""

    def __init__(
        self,
        on_done: Callable[[RequestRecord], None] | None = None,
        *,
        timeout: float | None = None,
        pool: UpstreamPool | None = None,
    ) -> None:
        self._on_done = on_done
        self._timeout = timeout
        self.pool = pool or UpstreamPool()

    def start(self, conn: Intercepted, head: RequestHead) -> Passthrough:
        return Passthrough(self, Target(conn.original_dst, self.pool, self._timeout))

    def refused(self, record: RequestRecord) -> None:
        if self._on_done is not None:
            self._on_done(record)
