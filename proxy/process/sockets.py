"""Listening sockets, bound before privileges are dropped and before the loop starts.

Capture listeners are dual-stack (one AF_INET6 socket with IPV6_V6ONLY off takes
IPv4 peers as ::ffff:a.b.c.d) and set SO_REUSEPORT so ``--workers N`` processes
each bind their own socket on the same port and the kernel spreads connections.
"""

from __future__ import annotations

import contextlib
import errno
import socket

from proxy.core.errors import ProxyError

BACKLOG = 4096
RESERVED_PORTS_SYSCTL = "net.ipv4.ip_local_reserved_ports"


class ListenError(ProxyError):
    """A port could not be bound (in use, or the address does not exist here)."""


def _listen(family: int, host: str, port: int, reuseport: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_listener(port: int, host: str | None = None, reuseport: bool = True) -> socket.socket:
    """Bind ``host:port`` (default: every address, both families when IPv6 exists)."""
    try:
        if host is None:
            try:
                return _listen(socket.AF_INET6, "::", port, reuseport)
            except OSError:
                # IPv6 disabled in this namespace: IPv4 only is still a working proxy.
                return _listen(socket.AF_INET, "0.0.0.0", port, reuseport)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return _listen(family, host, port, reuseport)
    except OSError as e:
        why = f"cannot listen on {host or '*'}:{port}: {e.strerror or e}"
        if e.errno == errno.EADDRINUSE:
            why += in_use_hint(port)
        raise ListenError(why) from e


def in_use_hint(port: int) -> str:
    """What to do when a sidecar port is taken: usually no listener holds it but an
    outgoing connection that the kernel gave it as its ephemeral local port."""
    return (
        f". If nothing else listens on {port}, an outgoing connection was given it as "
        f"its local port: reserve the sidecar's ports in the sysctl {RESERVED_PORTS_SYSCTL} "
        f"(include {port}; `mesh-interceptor install` in the init container does it, "
        "`mesh-interceptor verify` checks it)"
    )


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()
