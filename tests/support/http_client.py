"""A raw HTTP/1.x test client: send exact bytes, read one response by hand."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass


@dataclass
class Response:
    status: int
    raw_head: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    size: int
    digest: str

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


async def read_head(reader: asyncio.StreamReader) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = [(n, v.strip()) for n, _, v in (line.partition(b":") for line in lines[1:])]
    return status, raw, headers


async def read_response(
    reader: asyncio.StreamReader, *, head_request: bool = False, keep_body: bool = True
) -> Response:
    """One final response (1xx skipped); bodies by Content-Length, chunked or close."""
    while True:
        status, raw, headers = await read_head(reader)
        if status >= 200 or status == 101:
            break
    resp = Response(status, raw, headers, b"", 0, "")
    digest = hashlib.sha256()
    parts: list[bytes] = []

    def take(data: bytes) -> None:
        digest.update(data)
        resp.size += len(data)
        if keep_body:
            parts.append(data)

    te = resp.header(b"transfer-encoding")
    length = resp.header(b"content-length")
    if head_request or status in (101, 204, 304):
        pass
    elif te is not None and te.lower() == b"chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                break
            take(await reader.readexactly(size))
            await reader.readexactly(2)
    elif length is not None:
        remaining = int(length)
        while remaining:
            data = await reader.read(min(remaining, 1 << 20))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            take(data)
            remaining -= len(data)
    else:
        while data := await reader.read(1 << 20):
            take(data)
    resp.body = b"".join(parts)
    resp.digest = digest.hexdigest()
    return resp


def get(path: str, *extra: str, version: str = "1.1") -> bytes:
    lines = [f"GET {path} HTTP/{version}", "Host: upstream.test", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
