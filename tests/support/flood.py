"""Many client connections from inside a namespace, and the proxy process's resources.

``open_many`` makes every socket in one thread that entered the namespace (one setns,
not one thread per socket), then connects them all non-blocking and waits until each
connect finished. ``sort_closed`` tells the connections the far side closed (unread,
unanswered) from those it keeps open. ``rss_bytes``, ``cpu_seconds`` and ``open_fds``
read a process's numbers from /proc.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time

from tests.support.nsock import sockets_in


def open_many(
    ns: str, host: str, port: int, count: int, timeout: float = 20.0
) -> list[socket.socket]:
    """``count`` connections to ``host:port`` from ``ns``, each connect finished (the
    kernel's handshake; the proxy may not have accepted them yet)."""
    socks = sockets_in(ns, count)
    waiting: dict[int, socket.socket] = {}
    poller = select.poll()
    try:
        for s in socks:
            s.setblocking(False)
            err = s.connect_ex((host, port))
            if err not in (0, 115):  # EINPROGRESS
                raise OSError(err, f"connect: {os.strerror(err)}")
            waiting[s.fileno()] = s
            poller.register(s, select.POLLOUT)
        deadline = time.monotonic() + timeout
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(waiting)} of {count} connects did not finish")
            for fd, _ in poller.poll(min(left, 1.0) * 1000):
                s = waiting.pop(fd)
                poller.unregister(fd)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, f"connect: {os.strerror(err)}")
    except BaseException:
        close_all(socks)
        raise
    return socks


def sort_closed(
    socks: list[socket.socket], settle: float = 1.0, timeout: float = 15.0
) -> tuple[list[socket.socket], list[socket.socket]]:
    """(closed by the peer, still open): waits until no close came for ``settle`` s."""
    poller = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for s in socks:
        poller.register(s, select.POLLIN)
    closed: list[socket.socket] = []
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < settle and time.monotonic() < deadline:
        for fd, _ in poller.poll(100):
            s = by_fd.pop(fd)
            poller.unregister(fd)
            try:
                data = s.recv(1)
            except (BlockingIOError, InterruptedError):
                by_fd[fd] = s
                poller.register(s, select.POLLIN)
                continue
            except ConnectionError:
                data = b""
            if data:
                raise AssertionError(f"a flood connection was sent {data!r}")
            closed.append(s)
            quiet_since = time.monotonic()
    return closed, list(by_fd.values())


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()


def _status(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def rss_bytes(pid: int) -> int:
    return _status(pid, "VmRSS") * 1024


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
