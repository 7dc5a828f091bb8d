"""Opening the upstream connection, optionally from a chosen source address.

The socket is created and bound by hand (the inbound path binds 127.0.0.6 / ::6
before connecting) and handed to asyncio once connected. Every failure becomes an
UpstreamConnectError carrying a short reason for the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket

from proxy.core.errors import UpstreamConnectError, UpstreamConnectTimeout

STREAM_LIMIT = 256 * 1024


def _reason(e: OSError) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "unreachable"
    if e.errno == errno.ETIMEDOUT:
        return "timeout"
    return errno.errorcode.get(e.errno or 0, "error").lower()


async def dial(
    host: str, port: int, family: int, timeout: float, source: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
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
        return await asyncio.open_connection(sock=sock, limit=STREAM_LIMIT)
    except TimeoutError as e:
        sock.close()
        raise UpstreamConnectTimeout(f"connect to {host}:{port} timed out", "timeout") from e
    except OSError as e:
        sock.close()
        raise UpstreamConnectError(
            f"connect to {host}:{port}: {e.strerror or e}", _reason(e)
        ) from e
    except BaseException:
        sock.close()
        raise
