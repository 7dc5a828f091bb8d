"""A deliberately tiny HTTP/1.1 server for the admin and telemetry endpoints.

One request per connection (``Connection: close``), request head capped at 16 KiB
(a longer one is answered 431), body read by Content-Length only; enough for probes,
scrapers and curl, and small enough to audit. Handlers are plain functions from
(method, path, body) to Reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from proxy.core.errors import ProxyError

log = logging.getLogger("proxy.admin.httpmini")

MAX_HEAD = 16 * 1024  # request line and headers, with their final CRLF CRLF
MAX_BODY = 1024 * 1024
HEAD_TIMEOUT = 10.0  # seconds for the whole head to arrive
LINGER = 1.0  # seconds a refused request's unread bytes are read and dropped, see below
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
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


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """The request head without its final CRLF CRLF; over ``MAX_HEAD`` it is refused.

    The reader's own limit (64 KiB unless the server set one) stops a head that never
    ends; a head that ends between the two limits is measured here.
    """
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
    except asyncio.LimitOverrunError as e:
        raise AdminRequestError(f"request head over {MAX_HEAD} bytes", 431) from e
    if len(head) > MAX_HEAD:
        raise AdminRequestError(f"request head over {MAX_HEAD} bytes", 431)
    return head[:-4]


async def _discard(reader: asyncio.StreamReader) -> None:
    while await reader.read(64 * 1024):
        pass


async def serve_connection(
    endpoints: Endpoints, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    refused = False
    try:
        method, path, query, length = _parse_head(await _read_head(reader))
        body = await reader.readexactly(length) if length else b""
        reply = await endpoints.dispatch(Request(method, path, query, body))
    except (asyncio.IncompleteReadError, TimeoutError, OSError):
        writer.close()
        return
    except AdminRequestError as e:
        reply, refused = Reply(e.status, f"{e}\n".encode()), True
    reason = _REASONS.get(reply.status, "Unknown")
    writer.write(
        f"HTTP/1.1 {reply.status} {reason}\r\nContent-Type: {reply.content_type}\r\n"
        f"Content-Length: {len(reply.body)}\r\nConnection: close\r\n\r\n".encode()
        + reply.body
    )
    with contextlib.suppress(OSError):
        await writer.drain()
    if refused and writer.can_write_eof():
        # Closing with unread input makes the kernel send a reset, which can destroy
        # the answer before the client reads it: end our side, drop what is still
        # coming for a moment, then close.
        with contextlib.suppress(OSError, TimeoutError):
            writer.write_eof()
            await asyncio.wait_for(_discard(reader), LINGER)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
