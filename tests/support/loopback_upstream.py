"""A scripted HTTP/1.1 upstream for proxy tests, parsing by hand on purpose.

It records the exact bytes of every request head it receives (to check casing and
hop-by-hop removal) and counts connections (to check pooling). The path picks the
behaviour: ``/hello``, ``/echo`` (hash of the body), ``/download?n=&chunked=``,
``/slow?s=``, ``/cut`` (dies mid-body), ``/close`` (Connection: close),
``/silent-close`` (closes without saying so), ``/extra`` (bytes after the body),
``/ws`` (101 then echo), ``/early`` (answers without reading the body), ``/reset``
(reads the request, then hangs up). A request
with ``X-Drop-If-Reused`` on a connection that served before is dropped unanswered
(the keep-alive race).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

PATTERN = bytes(range(256)) * 256  # 64 KiB, the unit of generated bodies


def pattern_body(n: int) -> bytes:
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


@dataclass
class Seen:
    method: bytes
    target: bytes
    raw_head: bytes
    headers: list[tuple[bytes, bytes]]

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Upstream:
    server: asyncio.Server | None = None
    port: int = 0
    connections: int = 0
    requests: list[Seen] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> Upstream:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.connections += 1
        served = 0
        try:
            while await self._one(reader, writer, served):
                served += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the proxy closed the connection; that is what some tests do
        finally:
            self.tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, served: int
    ) -> bool:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = raw[:-4].split(b"\r\n")
        method, target, _ = lines[0].split(b" ", 2)
        headers = [
            (name, value.strip()) for name, _, value in (line.partition(b":") for line in lines[1:])
        ]
        seen = Seen(method, target, raw, headers)
        self.requests.append(seen)
        url = urlsplit(target.decode())
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path
        if served and seen.header(b"x-drop-if-reused"):
            return False  # as if the idle connection was closed just before the request
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
        digest, size = await _read_body(reader, seen)
        if path == "/reset":
            return False  # read the whole request, then hang up without an answer
        if path == "/echo":
            text = f"{size} {digest}".encode()
            await _send(
                writer, 200, text, extra=[(b"X-Seen-Id", seen.header(b"x-request-id") or b"")]
            )
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
                if seen.method == b"HEAD":
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
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    head = b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n" % (status, len(body))
    for name, value in extra or []:
        head += name + b": " + value + b"\r\n"
    if close:
        head += b"Connection: close\r\n"
    writer.write(head + b"\r\n" + body)
    await writer.drain()


async def _read_body(reader: asyncio.StreamReader, seen: Seen) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    if (seen.header(b"transfer-encoding") or b"").lower() == b"chunked":
        while True:
            line = await reader.readuntil(b"\r\n")
            length = int(line.split(b";")[0], 16)
            if length == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailers
                break
            data = await reader.readexactly(length)
            digest.update(data)
            size += length
            await reader.readexactly(2)
    else:
        remaining = int(seen.header(b"content-length") or b"0")
        while remaining:
            data = await reader.read(min(remaining, 65536))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            digest.update(data)
            size += len(data)
            remaining -= len(data)
    return digest.hexdigest(), size
