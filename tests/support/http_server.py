"""Controllable HTTP/1.1 service endpoints that live in another network namespace.

Each ``Endpoint`` is an asyncio server on a socket created inside the namespace, so
the test process runs every endpoint on its own event loop and reads their counters
directly. An endpoint answers with its identity (``x-served-by`` and a JSON body
naming the request line, the headers and the peer it saw, and the body's sha256);
``mode`` (or ``x-test-*`` request headers) makes it delay, answer a status, reset
or close. ``/download?n=&chunked=`` streams a known pattern; ``/ws`` with
``Upgrade`` answers 101 and then echoes raw bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import socket
import struct
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from tests.support import nsock

BLOCK = hashlib.sha512(b"meshproxy-l7").digest() * 16384  # 1 MiB of known bytes


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
    """What the endpoint does with each request (after reading it whole)."""

    delay_ms: float = 0.0
    status: int = 200
    action: str = "answer"  # answer | reset (RST) | close (FIN, no response)
    # Share of requests that get ``status`` / ``action``; the rest are answered 200
    # (drawn from the endpoint's own seeded random source, so a run is repeatable).
    ratio: float = 1.0


@dataclass(frozen=True)
class Seen:
    """One request as the endpoint received it."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]  # names lower-cased
    peer: tuple[str, int]
    body_len: int
    body_sha256: str
    at: float  # loop clock when the request head arrived

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass
class Endpoint:
    name: str
    ns: str
    host: str
    port: int
    mode: Mode = field(default_factory=Mode)
    connections: int = 0
    requests: list[Seen] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)  # per request: status, 0 = no answer
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.name)

    async def start(self) -> None:
        sock = nsock.socket_in(self.ns, nsock.family_of(self.host))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(1024)
        sock.setblocking(False)
        self.server = await asyncio.start_server(self._serve, sock=sock, limit=1 << 20)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)

    def ids(self) -> list[str]:
        """The ``x-test-id`` of every request seen, in order."""
        return [s.header("x-test-id") or "" for s in self.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        peer = writer.get_extra_info("peername")[:2]
        try:
            while await self._one(reader, writer, peer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the proxy hung up mid-request: nothing to answer
        finally:
            self.tasks.discard(task)
            writer.close()

    async def _one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: tuple[str, int]
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
        get = dict(headers).get
        digest, size = await _read_body(reader, get("transfer-encoding"), get("content-length"))
        self.requests.append(
            Seen(method, target, headers, (str(peer[0]), int(peer[1])), size, digest, at)
        )
        delay = float(get("x-test-delay-ms") or self.mode.delay_ms)
        status = int(get("x-test-status") or self.mode.status)
        action = get("x-test-action") or self.mode.action
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
        url = urlsplit(target)
        if url.path == "/ws" and (get("upgrade") or "").lower() == "websocket":
            await self._websocket(reader, writer)
            return False
        if url.path == "/download":
            query = parse_qs(url.query)
            await self._download(writer, int(query["n"][0]), query.get("chunked") == ["1"])
        else:
            body = json.dumps(
                {
                    "served_by": self.name,
                    "request_line": lines[0],
                    "headers": [list(h) for h in headers],
                    "peer": [str(peer[0]), int(peer[1])],
                    "body_len": size,
                    "body_sha256": digest,
                }
            ).encode()
            writer.write(self._head(status, [("content-length", str(len(body)))]) + body)
            await writer.drain()
        return (get("connection") or "").lower() != "close"

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


async def _read_body(
    reader: asyncio.StreamReader, te: str | None, length: str | None
) -> tuple[str, int]:
    """Stream the request body into sha256 (never kept); returns (hex digest, size)."""
    h, size = hashlib.sha256(), 0
    if te is not None and te.lower() == "chunked":
        while True:
            chunk = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if chunk == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailers
                break
            remaining = chunk
            while remaining:
                data = await reader.read(min(remaining, 1 << 20))
                if not data:
                    raise asyncio.IncompleteReadError(b"", remaining)
                h.update(data)
                remaining -= len(data)
            size += chunk
            await reader.readexactly(2)
    elif length:
        remaining = int(length)
        while remaining:
            data = await reader.read(min(remaining, 1 << 20))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            h.update(data)
            size += len(data)
            remaining -= len(data)
    return h.hexdigest(), size
