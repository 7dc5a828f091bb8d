"""A burst of connections while the worker is busy waits in the kernel's accept queue
(``BACKLOG`` deep) instead of overflowing it.

``asyncio.start_server(sock=...)`` listens again with its own default backlog of 100
unless told otherwise; past it the kernel drops the handshakes' last ACKs, so clients
that believe they are connected are never accepted (or only after SYN-ACK retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.observe.metrics import TcpMetrics
from proxy.policy.overload import Overload
from tests.support.listener_front import with_listener

BURST = 400  # well past asyncio's default of 100, well inside BACKLOG


async def idle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()
    writer.close()


def test_a_burst_while_the_loop_is_busy_is_accepted_whole() -> None:
    overload = Overload()  # counts what the listener accepted

    async def body(
        port: int, _: int, __: TcpMetrics, ___: CollectorRegistry, ____: list[Any]
    ) -> None:
        clients = []
        try:
            for _ in range(BURST):  # blocking connects: the loop accepts nothing meanwhile
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            for _ in range(300):
                if overload.connections == BURST:
                    break
                await asyncio.sleep(0.01)
            assert overload.connections == BURST
        finally:
            for c in clients:
                with contextlib.suppress(OSError):
                    c.close()

    asyncio.run(with_listener(idle, body, overload=overload))
