"""The L4 listener pipeline in-process on 127.0.0.1, with the original destination
passed in.

No namespaces: SO_ORIGINAL_DST is replaced by a function (STYLE rule 5), metrics go
to a fresh registry, and the upstream is a local asyncio server the test writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.l4.conn import Direction
from proxy.l4.inbound import InboundRouter
from proxy.l4.listener import InterceptListener, Timeouts
from proxy.l4.origdst import Address
from proxy.l4.outbound import OutboundRouter
from proxy.observe.metrics import TcpMetrics
from proxy.policy.overload import Overload
from proxy.process.sockets import bind_listener
from proxy.process.tasks import TaskKeeper


async def with_listener(
    upstream: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    body: Callable[
        [int, int, TcpMetrics, CollectorRegistry, list[dict[str, Any]]], Awaitable[None]
    ],
    direction: Direction = Direction.OUTBOUND,
    http_handler: Any = None,
    overload: Overload | None = None,
) -> None:
    """Serve ``upstream`` on 127.0.0.1:0 and a listener whose every connection's original
    destination is that upstream; ``body(port, up_port, metrics, registry, log)`` drives
    it; ``overload`` caps its connections. The listener's tasks are drained before this
    returns."""
    up = await asyncio.start_server(upstream, "127.0.0.1", 0)
    up_port = up.sockets[0].getsockname()[1]
    registry = CollectorRegistry()
    metrics = TcpMetrics(registry)
    log: list[dict[str, Any]] = []
    sock = bind_listener(0, "127.0.0.1", reuseport=False)
    port = sock.getsockname()[1]

    def fake_dst(_: Any) -> Address:
        return Address("127.0.0.1", up_port, 4)

    router = OutboundRouter("w") if direction is Direction.OUTBOUND else InboundRouter("w")
    keeper = TaskKeeper()
    listener = InterceptListener(
        direction,
        router,
        frozenset({port}),
        frozenset(),
        Timeouts(0.05, 1.0, 5.0),
        metrics,
        keeper,
        log.append,
        http_handler,
        fake_dst,
        overload,
    )
    server = await listener.start(sock)
    try:
        await body(port, up_port, metrics, registry, log)
    finally:
        server.close()
        up.close()
        await keeper.drain(2)


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        s.value
        for m in registry.collect()
        for s in m.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )
