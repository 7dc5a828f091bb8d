"""A deliberately tiny HTTP/1.1 server for the admin and telemetry endpoints.

One request per connection (``Connection: close``), request head capped at 16 KiB,
body read by Content-Length only; enough for probes, scrapers and curl, and small
enough to audit. Handlers are plain functions from (method, path, body) to Reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from proxy.core.errors import ProxyError

log = logging.getLogger("proxy.admin.httpmini")

MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    503: "Service Unavailable",
}


class AdminRequestError(ProxyError):
    """A request the admin server will not serve; ``status`` is what it answers."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: str
    body: bytes


Handler = Callable[[Request], Awaitable[Reply] | Reply]


@dataclass
class Endpoints:
    """Routes by exact path; a path known under another method answers 405."""

    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)

    def add(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    async def dispatch(self, request: Request) -> Reply:
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            if any(p == request.path for _, p in self.routes):
                return Reply(405, f"{request.method} not allowed on {request.path}\n".encode())
            return Reply(404, f"no endpoint {request.path}\n".encode())
        result = handler(request)
        if isinstance(result, Reply):
            return result
        return await result


def _parse_head(head: bytes) -> tuple[str, str, str, int]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise AdminRequestError(f"bad request line {lines[0]!r}")
    method, target, _ = parts
    path, _, query = target.partition("?")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            text = value.strip()
            if not text.isdigit():
                raise AdminRequestError(f"bad content-length {text!r}")
            length = int(text)
    if length > MAX_BODY:
        raise AdminRequestError(f"bad content-length {length}")
    return method, path, query, length


async def serve_connection(
    endpoints: Endpoints, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        method, path, query, length = _parse_head(head[:-4])
        body = await reader.readexactly(length) if length else b""
        reply = await endpoints.dispatch(Request(method, path, query, body))
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
        writer.close()
        return
    except AdminRequestError as e:
        reply = Reply(e.status, f"{e}\n".encode())
    reason = _REASONS.get(reply.status, "Unknown")
    writer.write(
        f"HTTP/1.1 {reply.status} {reason}\r\nContent-Type: {reply.content_type}\r\n"
        f"Content-Length: {len(reply.body)}\r\nConnection: close\r\n\r\n".encode()
        + reply.body
    )
    with contextlib.suppress(OSError):
        await writer.drain()
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
