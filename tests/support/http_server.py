"""The one HTTP/1.1 test server: every upstream, endpoint and app the tests talk to.

It parses by hand on purpose (a bug in a parser library must not hide one in the
proxy), records every request as ``Seen`` (exact head bytes, headers, peer, body
size and sha256, arrival time) and counts connections. It listens on loopback in the
test's own namespace, or, given ``ns``, on a socket made inside another namespace.
``mode`` (or ``x-test-delay-ms`` / ``x-test-status`` / ``x-test-action`` request
headers) makes it delay, answer a status, reset or close; ``reply`` picks what a
request gets back:

- ``identity``: ``x-served-by`` and a JSON body naming what it saw; ``/download?n=
  &chunked=1`` streams the pattern; ``/ws`` with ``Upgrade: websocket`` → 101, then
  echoes with an ``echo:`` prefix (the namespace endpoints).
- ``name``: its name as the body (the mesh loopback backends).
- ``port``: ``port=<listening port>`` (the load test's endpoints).
- ``paths``: the path picks a behaviour (the engine tests): ``/hello``, ``/echo``
  (size and hash of the body), ``/download?n=&chunked=``, ``/slow?s=``, ``/cut``
  (dies mid-body), ``/close``, ``/silent-close`` (closes without saying so),
  ``/extra`` (bytes after the body), ``/ws`` (101, then echoes upper-cased),
  ``/early`` (answers before reading the body), ``/reset`` (reads the request, hangs
  up). ``X-Drop-If-Reused`` on a connection that served before is dropped unanswered.

``python -m tests.support.http_server [--reply STYLE] HOST PORT...`` serves from a
child process (inside a namespace) until its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import socket
import struct
import sys
from dataclasses import dataclass, field
from typing import Literal, overload
from urllib.parse import parse_qs, urlsplit

from tests.support import nsock

Reply = Literal["identity", "name", "port", "paths"]
PATTERN = bytes(range(256)) * 256  # 64 KiB, the unit of generated bodies
BLOCK = PATTERN * 16  # 1 MiB: large downloads go out in slices of it


def pattern_body(n: int) -> bytes:
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


def pattern_chunks(n: int) -> list[memoryview]:
    """``n`` bytes of the download pattern, as slices of one shared block."""
    view = memoryview(BLOCK)
    return [view[: min(len(BLOCK), n - i)] for i in range(0, n, len(BLOCK))]


def pattern_digest(n: int) -> str:
    h = hashlib.sha256()
    for chunk in pattern_chunks(n):
        h.update(chunk)
    return h.hexdigest()


@dataclass
class Mode:
    """What the server does with each request (after reading it whole)."""

    delay_ms: float = 0.0
    status: int = 200
    action: str = "answer"  # answer | reset (RST) | close (FIN, no response)
    # Share of requests that get ``status`` / ``action``; the rest are answered 200
    # (drawn from the server's own seeded random source, so a run is repeatable).
    ratio: float = 1.0


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    target: str
    raw_head: bytes
    headers: tuple[tuple[str, str], ...]  # names lower-cased
    peer: tuple[str, int]
    at: float  # loop clock when the request head arrived
    body_len: int = 0
    body_sha256: str = ""

    @overload
    def header(self, name: str) -> str | None: ...
    @overload
    def header(self, name: bytes) -> bytes | None: ...
    def header(self, name: str | bytes) -> str | bytes | None:
        """The first value of ``name`` (any case), as str or bytes like the name."""
        key = name.decode("latin-1").lower() if isinstance(name, bytes) else name.lower()
        for have, value in self.headers:
            if have == key:
                return value.encode("latin-1") if isinstance(name, bytes) else value
        return None


@dataclass
class HttpServer:
    name: str = "upstream"
    ns: str | None = None  # None: the test's own namespace
    host: str = "127.0.0.1"
    port: int = 0
    mode: Mode = field(default_factory=Mode)
    reply: Reply = "identity"
    connections: int = 0
    requests: list[Seen] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)  # per request: status, 0 = no answer
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.name)

    async def start(self) -> HttpServer:
        if self.ns is None:
            self.server = await asyncio.start_server(
                self._serve, self.host, self.port, limit=1 << 20
            )
        else:
            sock = nsock.socket_in(self.ns, nsock.family_of(self.host))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(1024)
            sock.setblocking(False)
            self.server = await asyncio.start_server(self._serve, sock=sock, limit=1 << 20)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)
        if self.server is not None and self.ns is None:
            await self.server.wait_closed()

    def ids(self) -> list[str]:
        """The ``x-test-id`` of every request seen, in order."""
        return [s.header("x-test-id") or "" for s in self.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        peer = writer.get_extra_info("peername")[:2]
        served = 0
        try:
            while await self._one(reader, writer, (str(peer[0]), int(peer[1])), served):
                served += 1
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the proxy hung up mid-request: nothing to answer
        finally:
            self.tasks.discard(task)
            writer.close()

    async def _one(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: tuple[str, int],
        served: int,
    ) -> bool:
        """Serve one request; False when the connection must end."""
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        at = asyncio.get_running_loop().time()
        lines = raw[:-4].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = tuple(
            (k.strip().lower(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])
        )
        seen = Seen(method, target, raw, headers, peer, at)
        if self.reply == "paths":
            self.requests.append(seen)  # before the body: some paths never read it
            if served and seen.header("x-drop-if-reused"):
                return False  # as if the idle connection was closed just before the request
            return await _paths(seen, reader, writer)
        seen.body_sha256, seen.body_len = await read_body(reader, seen)
        self.requests.append(seen)
        return await self._answer(seen, reader, writer)

    async def _answer(
        self, seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        delay = float(seen.header("x-test-delay-ms") or self.mode.delay_ms)
        status = int(seen.header("x-test-status") or self.mode.status)
        action = seen.header("x-test-action") or self.mode.action
        if self.mode.ratio < 1.0 and self.rng.random() >= self.mode.ratio:
            status, action = 200, "answer"
        self.answered.append(status if action == "answer" else 0)
        if delay:
            await asyncio.sleep(delay / 1000)
        if action == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if action == "close":
            writer.close()
            return False
        url = urlsplit(seen.target)
        if self.reply == "name":
            await _send(writer, status, self.name.encode())
        elif self.reply == "port":
            await _send(writer, status, f"port={self.port}".encode())
        elif url.path == "/ws" and (seen.header("upgrade") or "").lower() == "websocket":
            await self._websocket(reader, writer)
            return False
        elif url.path == "/download":
            query = parse_qs(url.query)
            await self._download(writer, int(query["n"][0]), query.get("chunked") == ["1"])
        else:
            body = json.dumps(
                {
                    "served_by": self.name,
                    "request_line": seen.raw_head.split(b"\r\n", 1)[0].decode("latin-1"),
                    "headers": [list(h) for h in seen.headers],
                    "peer": list(seen.peer),
                    "body_len": seen.body_len,
                    "body_sha256": seen.body_sha256,
                }
            ).encode()
            writer.write(self._head(status, [("content-length", str(len(body)))]) + body)
            await writer.drain()
        return (seen.header("connection") or "").lower() != "close"

    def _head(self, status: int, extra: list[tuple[str, str]]) -> bytes:
        lines = [f"HTTP/1.1 {status} X", f"x-served-by: {self.name}"]
        lines += [f"{k}: {v}" for k, v in extra]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def _download(self, writer: asyncio.StreamWriter, n: int, chunked: bool) -> None:
        framing = ("transfer-encoding", "chunked") if chunked else ("content-length", str(n))
        writer.write(self._head(200, [framing]))
        for chunk in pattern_chunks(n):
            if chunked:
                writer.write(b"%x\r\n" % len(chunk))
            writer.write(chunk)
            if chunked:
                writer.write(b"\r\n")
            await writer.drain()
        if chunked:
            writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _websocket(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        extra = [("connection", "Upgrade"), ("upgrade", "websocket")]
        writer.write(self._head(101, extra).replace(b" 101 X", b" 101 Switching Protocols"))
        await writer.drain()
        while data := await reader.read(1 << 16):
            writer.write(b"echo:" + data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()


def Upstream() -> HttpServer:
    """A loopback server for the engine tests: the path picks the behaviour."""
    return HttpServer("upstream", reply="paths")


async def _paths(seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """The ``paths`` reply: one behaviour per path; False when the connection must end."""
    url = urlsplit(seen.target)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    path = url.path
    if path == "/early":
        await _send(writer, 403, b"no thanks", close=True)
        return False
    if path == "/ws":
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"
        )
        while data := await reader.read(65536):
            writer.write(data.upper())
            await writer.drain()
        return False
    digest, size = await read_body(reader, seen)
    seen.body_sha256, seen.body_len = digest, size
    if path == "/reset":
        return False  # read the whole request, then hang up without an answer
    if path == "/echo":
        text = f"{size} {digest}".encode()
        await _send(writer, 200, text, extra=[(b"X-Seen-Id", seen.header(b"x-request-id"))])
    elif path == "/download":
        n = int(query.get("n", "0"))
        if query.get("chunked"):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for start in range(0, n, len(PATTERN)):
                piece = PATTERN[: min(len(PATTERN), n - start)]
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
            if seen.method == "HEAD":
                n = 0
            for start in range(0, n, len(PATTERN)):
                writer.write(PATTERN[: min(len(PATTERN), n - start)])
                await writer.drain()
    elif path == "/slow":
        await asyncio.sleep(float(query.get("s", "1")))
        await _send(writer, 200, b"slow")
    elif path == "/cut":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        return False
    elif path == "/close":
        await _send(writer, 200, b"bye", close=True)
        return False
    elif path == "/extra":
        writer.write(b"HTTP/1.1 200 X\r\nContent-Length: 2\r\n\r\nokJUNK")  # 4 bytes too many
    elif path == "/silent-close":
        await _send(writer, 200, b"bye")  # keep-alive promised, then closed anyway
        return False
    else:
        await _send(writer, 200, b"hello")
    await writer.drain()
    return True


async def _send(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    *,
    close: bool = False,
    extra: list[tuple[bytes, bytes | None]] | None = None,
) -> None:
    head = b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n" % (status, len(body))
    for name, value in extra or []:
        head += name + b": " + (value or b"") + b"\r\n"
    if close:
        head += b"Connection: close\r\n"
    writer.write(head + b"\r\n" + body)
    await writer.drain()


async def read_body(reader: asyncio.StreamReader, seen: Seen) -> tuple[str, int]:
    """Stream the request body into sha256 (never kept); returns (hex digest, size)."""
    h, size = hashlib.sha256(), 0
    te, length = seen.header("transfer-encoding"), seen.header("content-length")

    async def take(remaining: int) -> None:
        nonlocal size
        while remaining:
            data = await reader.read(min(remaining, 1 << 20))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            h.update(data)
            size += len(data)
            remaining -= len(data)

    if te is not None and te.lower() == "chunked":
        while True:
            chunk = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if chunk == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailers
                break
            await take(chunk)
            await reader.readexactly(2)
    elif length:
        await take(int(length))
    return h.hexdigest(), size


async def _serve_until_stdin_closes(reply: Reply, host: str, ports: list[int]) -> None:
    servers = [await HttpServer(f"port-{p}", host=host, port=p, reply=reply).start() for p in ports]
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for server in servers:
        with contextlib.suppress(OSError):
            await server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="serve the test HTTP server on PORTs")
    parser.add_argument("--reply", default="port", choices=["identity", "name", "port", "paths"])
    parser.add_argument("host")
    parser.add_argument("ports", nargs="+", type=int)
    args = parser.parse_args(argv)
    asyncio.run(_serve_until_stdin_closes(args.reply, args.host, args.ports))


if __name__ == "__main__":
    main()
