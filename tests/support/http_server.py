"""The one HTTP/1.1 test server: every upstream, endpoint, app and collector the tests
talk to.

It parses by hand on purpose (a bug in a parser library must not hide one in the
proxy; see ``http_wire``), records every request as ``Seen`` (exact head bytes,
headers, peer, body size and sha256, arrival time) and counts connections. It listens
on loopback in the test's own namespace, or, given ``ns``, on a socket made inside
another namespace (blocking tests run it with ``loop_thread.serving``). ``mode`` (or
``x-test-delay-ms`` / ``x-test-status`` / ``x-test-action`` request headers) makes it
delay, answer a status, reset or close; ``reply`` picks what a request gets back:

- ``identity``: ``x-served-by`` and a JSON body naming what it saw; ``/download?n=
  &chunked=1`` streams the pattern; ``/ws`` with ``Upgrade: websocket`` → 101, then
  echoes with an ``echo:`` prefix (the namespace endpoints).
- ``name``: its name as the body (the mesh loopback backends).
- ``port``: ``port=<listening port>`` (the load test's endpoints).
- ``sized``: ``sizes[status]`` filler bytes, so metric tests know every byte count.
- ``collect``: keeps each request body in ``Seen.body`` and answers 202 (the Zipkin
  collector the sidecars post spans to).
- ``paths``: the path picks a behaviour (the engine tests; see ``http_paths``).
  ``X-Drop-If-Reused`` on a connection that served before is dropped unanswered.

``python -m tests.support.http_server [--reply STYLE] [--delay-ms MS] HOST PORT...``
serves from a child process (inside a namespace) until its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import struct
import sys
from dataclasses import dataclass, field
from typing import Literal, get_args
from urllib.parse import parse_qs, urlsplit

from tests.support import nsock
from tests.support.http_paths import answer_by_path
from tests.support.http_wire import (
    PATTERN,
    Seen,
    parse_head,
    pattern_body,
    pattern_chunks,
    pattern_digest,
    read_body,
    send,
)

# The server's public face: tests import these from here, whichever module holds them.
__all__ = [
    "PATTERN",
    "HttpServer",
    "Mode",
    "Reply",
    "Seen",
    "Upstream",
    "pattern_body",
    "pattern_chunks",
    "pattern_digest",
]

Reply = Literal["identity", "name", "port", "sized", "collect", "paths"]


@dataclass
class Mode:
    """What the server does with each request (after reading it whole)."""

    delay_ms: float = 0.0
    status: int = 200
    action: str = "answer"  # answer | reset (RST) | close (FIN, no response)
    # Share of requests that get ``status`` / ``action``; the rest are answered 200
    # (drawn from the server's own seeded random source, so a run is repeatable).
    ratio: float = 1.0
    # When > 0, only requests whose ``x-mesh-attempt`` is at most this get ``status`` /
    # ``action``; the sidecar's later retries are answered 200 (an endpoint that fails
    # each request once, whichever endpoint the retry lands on).
    up_to_attempt: int = 0


@dataclass
class HttpServer:
    name: str = "upstream"
    ns: str | None = None  # None: the test's own namespace
    host: str = "127.0.0.1"
    port: int = 0
    mode: Mode = field(default_factory=Mode)
    reply: Reply = "identity"
    sizes: dict[int, int] = field(default_factory=dict)  # the ``sized`` reply: status → bytes
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
        seen = parse_head(raw, peer, asyncio.get_running_loop().time())
        if self.reply == "paths":
            self.requests.append(seen)  # before the body: some paths never read it
            if served and seen.header("x-drop-if-reused"):
                return False  # as if the idle connection was closed just before the request
            return await answer_by_path(seen, reader, writer)
        kept = bytearray() if self.reply == "collect" else None
        seen.body_sha256, seen.body_len = await read_body(reader, seen, kept)
        seen.body = bytes(kept or b"")
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
        attempt = int(seen.header("x-mesh-attempt") or "1")
        if self.mode.up_to_attempt and attempt > self.mode.up_to_attempt:
            status, action = 200, "answer"
        if self.reply == "collect" and status == 200:
            status = 202  # accepted, as a Zipkin collector answers a POST of spans
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
        try:
            url = urlsplit(seen.target)
        except ValueError:  # a target the proxy may relay and urllib refuses (a stray "[")
            url = urlsplit("/")
        if self.reply == "name":
            await send(writer, status, self.name.encode())
        elif self.reply == "port":
            await send(writer, status, f"port={self.port}".encode())
        elif self.reply == "sized":
            await send(writer, status, b"s" * self.sizes.get(status, 0))
        elif self.reply == "collect":
            await send(writer, status, b"")
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


async def _serve_until_stdin_closes(
    reply: Reply, delay_ms: float, host: str, ports: list[int]
) -> None:
    servers = [
        await HttpServer(f"port-{p}", host=host, port=p, reply=reply, mode=Mode(delay_ms)).start()
        for p in ports
    ]
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for server in servers:
        with contextlib.suppress(OSError):
            await server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="serve the test HTTP server on PORTs")
    parser.add_argument("--reply", default="port", choices=get_args(Reply))
    parser.add_argument("--delay-ms", type=float, default=0.0, help="before every answer")
    parser.add_argument("host")
    parser.add_argument("ports", nargs="+", type=int)
    args = parser.parse_args(argv)
    asyncio.run(_serve_until_stdin_closes(args.reply, args.delay_ms, args.host, args.ports))


if __name__ == "__main__":
    main()
