"""Opening the upstream connection, optionally from a chosen source address.

The socket is created and bound by hand (the inbound path binds 127.0.0.6 / ::6,
which the interceptor exempts from capture, before connecting) and handed to asyncio
once connected: as streams for the L4 relay (``dial``), as a bare socket for the HTTP
pool, which wraps it in its own protocol (``passthrough_opener``). Every failure
becomes a ``DialError`` carrying a short reason for the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable

from proxy.core.errors import DialError, DialTimeout, connect_reason

STREAM_LIMIT = 256 * 1024
# 127.0.0.6 is local on any Linux (127.0.0.0/8 is routed to lo), so uid 1337 binds it
# with no capability; ::6 is not, so the init step adds it to lo.
PASSTHROUGH_SOURCE4 = "127.0.0.6"
PASSTHROUGH_SOURCE6 = "::6"
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# The HTTP pool's opener contract (proxy.http.pool.Opener): a connected socket, which
# the pool wraps in its own protocol; failures are OSError, TimeoutError or DialError,
# which the pool turns into its own errors.
Opener = Callable[[str, int], Awaitable[socket.socket]]


async def connect(
    host: str, port: int, family: int, timeout: float, source: str | None = None
) -> socket.socket:
    """A non-blocking socket connected to ``host:port`` (from ``source`` if given)."""
    loop = asyncio.get_running_loop()
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    sock = socket.socket(af, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source is not None:
            # Port 0 lets the kernel pick; IP_BIND_ADDRESS_NO_PORT defers that to connect()
            # so many inbound connections from one source address do not exhaust ports.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT
            sock.bind((source, 0))
        async with asyncio.timeout(timeout):  # no extra task, unlike wait_for in 3.11
            await loop.sock_connect(sock, (host, port))
        return sock
    except TimeoutError as e:
        sock.close()
        raise DialTimeout(f"connect to {host}:{port} timed out", "timeout") from e
    except OSError as e:
        sock.close()
        raise _failed(host, port, e) from e
    except BaseException:
        sock.close()
        raise


def _failed(host: str, port: int, e: OSError) -> DialError:
    return DialError(f"connect to {host}:{port}: {e.strerror or e}", connect_reason(e))


async def dial(
    host: str, port: int, family: int, timeout: float, source: str | None = None
) -> Streams:
    """``connect``, as streams (the L4 relay's side of a connection)."""
    sock = await connect(host, port, family, timeout, source)
    try:
        return await asyncio.open_connection(sock=sock, limit=STREAM_LIMIT)
    except BaseException as e:
        sock.close()
        if isinstance(e, OSError):
            raise _failed(host, port, e) from e
        raise


def passthrough_opener(connect_timeout: float) -> Opener:
    """``connect`` from the passthrough source of the host's family, for the HTTP pool
    (which wraps a ``DialError`` in its own ``UpstreamConnectError``)."""

    async def open_from_passthrough(host: str, port: int) -> socket.socket:
        family = 6 if ":" in host else 4
        source = PASSTHROUGH_SOURCE6 if family == 6 else PASSTHROUGH_SOURCE4
        return await connect(host, port, family, connect_timeout, source)

    return open_from_passthrough
