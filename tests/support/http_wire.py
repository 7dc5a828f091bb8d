"""What the one test server reads and writes on the wire, parsed by hand on purpose.

A request is recorded as ``Seen`` (exact head bytes, lower-cased headers, peer, body
size and sha256); ``read_body`` streams a body through sha256 so a gigabyte upload
costs no memory, and keeps the bytes only when asked (the ``collect`` reply). The
download pattern is shared with the tests, which check what arrived against it.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import overload

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
    body: bytes = b""  # kept only by the ``collect`` reply

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


def parse_head(raw: bytes, peer: tuple[str, int], at: float) -> Seen:
    """``raw`` is the head up to and including the blank line."""
    lines = raw[:-4].decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = tuple(
        (k.strip().lower(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])
    )
    return Seen(method, target, raw, headers, peer, at)


async def read_body(
    reader: asyncio.StreamReader, seen: Seen, keep: bytearray | None = None
) -> tuple[str, int]:
    """Stream the request body into sha256 (and into ``keep`` when given); returns
    (hex digest, size)."""
    h, size = hashlib.sha256(), 0
    te, length = seen.header("transfer-encoding"), seen.header("content-length")

    async def take(remaining: int) -> None:
        nonlocal size
        while remaining:
            data = await reader.read(min(remaining, 1 << 20))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            h.update(data)
            if keep is not None:
                keep.extend(data)
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


async def send(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    *,
    close: bool = False,
    extra: list[tuple[bytes, bytes | None]] | None = None,
) -> None:
    """One whole response with a Content-Length, written at once."""
    head = b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n" % (status, len(body))
    for name, value in extra or []:
        head += name + b": " + (value or b"") + b"\r\n"
    if close:
        head += b"Connection: close\r\n"
    writer.write(head + b"\r\n" + body)
    await writer.drain()
