"""A deliberately tiny HTTP/1.1 server for the admin and telemetry endpoints.

One request per connection (``Connection: close``), request head capped at 16 KiB
(a longer one is answered 431), body read by Content-Length only, up to the endpoints'
``max_body`` (a larger one is answered 413 before any of it is read, and a client that
sent ``Expect: 100-continue`` never has to send it); enough for probes, scrapers and
curl, and small enough to audit. Handlers are plain functions from a request to Reply.
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
MAX_BODY = 1024 * 1024  # the default: telemetry takes no bodies, the admin port sets its own
HEAD_TIMEOUT = 10.0  # seconds for the whole head to arrive
BODY_IDLE_TIMEOUT = 10.0  # seconds a body may stall; a stalled upload is cut, not waited on
BODY_CHUNK = 256 * 1024
LINGER = 1.0  # seconds a refused request's unread bytes are read and dropped, see below
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
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
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: str
    body: bytes


Handler = Callable[[Request], Awaitable[Reply] | Reply]


@dataclass
class Endpoints:
    """Routes by exact path; a path known under other methods answers 405 with ``Allow``.

    ``HEAD`` is served wherever ``GET`` is (the same reply without its body).
    ``max_body`` bounds a request body; ``too_large_hint`` is appended to the 413.
    """

    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    max_body: int = MAX_BODY
    too_large_hint: str = ""

    def add(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def allowed(self, path: str) -> list[str]:
        methods = {m for m, p in self.routes if p == path}
        if "GET" in methods:
            methods.add("HEAD")
        return sorted(methods)

    def refusal(self, method: str, path: str) -> Reply | None:
        """The 404 or 405 for a request no handler takes, decided from the head alone."""
        allowed = self.allowed(path)
        if not allowed:
            return Reply(404, f"no endpoint {path}\n".encode())
        if method in allowed:
            return None
        text = f"{method} not allowed on {path} (allowed: {', '.join(allowed)})\n"
        return Reply(405, text.encode(), headers=(("Allow", ", ".join(allowed)),))

    async def dispatch(self, request: Request) -> Reply:
        refused = self.refusal(request.method, request.path)
        if refused is not None:
            return refused
        method = "GET" if request.method == "HEAD" else request.method
        result = self.routes[(method, request.path)](request)
        if isinstance(result, Reply):
            return result
        return await result


@dataclass(frozen=True)
class Head:
    method: str
    path: str
    query: str
    length: int
    expect_continue: bool


def _parse_head(head: bytes) -> Head:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise AdminRequestError(f"bad request line {lines[0]!r}")
    method, target, _ = parts
    path, _, query = target.partition("?")
    length, expect = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            text = value.strip()
            # ASCII digits only: the head is decoded as latin-1, where "²" is a digit
            # to ``isdigit`` and not to ``int``. Past 18 digits it is over any limit
            # (and ``int`` refuses strings past 4,300 digits).
            if not (text.isascii() and text.isdigit()):
                raise AdminRequestError(f"bad content-length {text[:40]!r}")
            length = int(text) if len(text) <= 18 else 10**18
        elif name == "transfer-encoding":
            raise AdminRequestError("send the body with a Content-Length, not chunked", 411)
        elif name == "expect":
            expect = value.strip().lower() == "100-continue"
    return Head(method, path, query, length, expect)


def _too_large(length: int, endpoints: Endpoints) -> AdminRequestError:
    limit = endpoints.max_body
    return AdminRequestError(
        f"request body of {length} bytes is over this port's limit of {limit} bytes "
        f"({_mib(limit)}){endpoints.too_large_hint}",
        413,
    )


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


async def _read_body(reader: asyncio.StreamReader, length: int) -> bytes:
    """``length`` bytes, each read given ``BODY_IDLE_TIMEOUT``: a slow upload is fine, a
    stalled one is cut (other connections never wait on it: each has its own task)."""
    body = bytearray()
    while len(body) < length:
        chunk = await asyncio.wait_for(
            reader.read(min(BODY_CHUNK, length - len(body))), BODY_IDLE_TIMEOUT
        )
        if not chunk:
            raise asyncio.IncompleteReadError(bytes(body), length)
        body += chunk
    return bytes(body)


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
    method = ""
    try:
        head = _parse_head(await _read_head(reader))
        method = head.method
        early = endpoints.refusal(head.method, head.path)
        if early is not None:
            reply, refused = early, True
        else:
            if head.length > endpoints.max_body:
                raise _too_large(head.length, endpoints)
            if head.expect_continue and head.length:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await _read_body(reader, head.length) if head.length else b""
            reply = await endpoints.dispatch(Request(head.method, head.path, head.query, body))
    except (asyncio.IncompleteReadError, TimeoutError, OSError):
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    except AdminRequestError as e:
        reply, refused = Reply(e.status, f"{e}\n".encode()), True
    reason = _REASONS.get(reply.status, "Unknown")
    extra = "".join(f"{name}: {value}\r\n" for name, value in reply.headers)
    writer.write(
        f"HTTP/1.1 {reply.status} {reason}\r\nContent-Type: {reply.content_type}\r\n"
        f"Content-Length: {len(reply.body)}\r\n{extra}Connection: close\r\n\r\n".encode()
        + (b"" if method == "HEAD" else reply.body)
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
