"""Sockets that live in another network namespace, used from the test process itself.

A socket belongs to the namespace of the thread that created it, so a short-lived
thread enters the namespace (setns), creates the socket and exits; bind, connect
and listen then act in that namespace from any thread. Tests stay plain Python:
no helper processes, no output parsing.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import socket
import threading
from collections.abc import Callable, Iterator

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def sockets_in(ns: str, count: int, family: int = socket.AF_INET) -> list[socket.socket]:
    """``count`` unconnected TCP sockets of namespace ``ns`` (made in one short-lived
    thread that entered it)."""
    made: list[socket.socket] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {ns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            for _ in range(count):
                made.append(socket.socket(family, socket.SOCK_STREAM))
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=create)
    t.start()
    t.join()
    if errors:
        for sock in made:
            sock.close()
        raise errors[0]
    return made


def socket_in(ns: str, family: int = socket.AF_INET) -> socket.socket:
    return sockets_in(ns, 1, family)[0]


def family_of(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def connect(ns: str, host: str, port: int, timeout: float = 5.0) -> socket.socket:
    s = socket_in(ns, family_of(host))
    try:
        s.settimeout(timeout)
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


def recv_all(s: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        data = s.recv(1 << 20)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def pattern(seed: int, size: int) -> bytes:
    """Deterministic bytes that differ per seed (a cheap stream of hashes)."""
    block = hashlib.sha512(str(seed).encode()).digest() * 2048  # 128 KiB
    out = (block * (size // len(block) + 1))[:size]
    return bytes(out)


Handler = Callable[[socket.socket, tuple[str, int]], None]


class Server:
    """A threaded TCP server in a namespace; each connection runs ``handler``.

    For raw TCP only (echo, digests, banners, whoami): whatever answers HTTP is the one
    test server, ``tests.support.http_server``."""

    def __init__(self, ns: str, host: str, port: int, handler: Handler) -> None:
        self.sock = socket_in(ns, family_of(host))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family_of(host) == socket.AF_INET6 and host == "::":
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.sock.bind((host, port))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.peers: list[tuple[str, int]] = []
        self.local: list[tuple[str, int]] = []
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer[:2])
            self.local.append(conn.getsockname()[:2])
            t = threading.Thread(target=self._run, args=(conn, peer[:2]), daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        conn.settimeout(30)
        try:
            self.handler(conn, peer)
        except OSError as e:
            self.errors.append(e)
        finally:
            conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._accepter.join(5)
        for t in self._threads:
            t.join(5)


@contextlib.contextmanager
def serving(ns: str, host: str, port: int, handler: Handler) -> Iterator[Server]:
    server = Server(ns, host, port, handler)
    try:
        yield server
    finally:
        server.close()


def echo(conn: socket.socket, _: tuple[str, int]) -> None:
    """Echo until the client's FIN, then FIN back."""
    while True:
        data = conn.recv(1 << 18)
        if not data:
            break
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)


def digest_then_reply(size: int, seed: int) -> Handler:
    """Read to EOF (the client's FIN must arrive), answer sha256 of it + ``size`` bytes."""

    def handle(conn: socket.socket, _: tuple[str, int]) -> None:
        h = hashlib.sha256()
        while True:
            data = conn.recv(1 << 20)
            if not data:
                break
            h.update(data)
        conn.sendall(h.digest())
        payload = pattern(seed, size)
        view = memoryview(payload)
        for i in range(0, size, 1 << 20):
            conn.sendall(view[i : i + (1 << 20)])
        conn.shutdown(socket.SHUT_WR)

    return handle


def banner(text: bytes) -> Handler:
    """A server-speaks-first protocol: greet, then echo one line."""

    def handle(conn: socket.socket, _: tuple[str, int]) -> None:
        conn.sendall(text)
        data = conn.recv(1024)
        conn.sendall(b"got " + data)
        conn.shutdown(socket.SHUT_WR)

    return handle


def whoami(conn: socket.socket, peer: tuple[str, int]) -> None:
    """Tell the client which address it reached and from where."""
    local = conn.getsockname()
    conn.sendall(f"{local[0]} {local[1]} {peer[0]}\n".encode())
    conn.shutdown(socket.SHUT_WR)
    recv_all(conn)


def http_get(ns: str, host: str, port: int, path: str, method: str = "GET") -> tuple[int, bytes]:
    s = connect(ns, host, port)
    try:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
        raw = recv_all(s)
    finally:
        s.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body
