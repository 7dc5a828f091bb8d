"""HTTP/1.1 clients that live in the pod namespace (so the interceptor captures them).

A ``Client`` is one keep-alive connection, reopened only when the proxy said
``Connection: close`` or the connection failed (a failed request is reported with
status 0, never retried here: retrying would hide what the proxy did). ``load`` runs
N requests over several such connections and returns every result in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from tests.support import nsock
from tests.support.http_client import Response, read_response


@dataclass(frozen=True)
class Req:
    method: str = "GET"
    target: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True)
class Result:
    index: int
    status: int  # 0: the connection failed before a response
    served_by: str  # the endpoint's x-served-by, "" for local replies
    elapsed: float
    response: Response | None
    error: str = ""  # why there was no response (exception type and text)


async def open_conn(
    ns: str, host: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = nsock.socket_in(ns, nsock.family_of(host))
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock, limit=1 << 20)


def head(req: Req, host: str, framing: tuple[str, str] | None) -> bytes:
    lines = [f"{req.method} {req.target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in req.headers]
    if framing is not None:
        lines.append(f"{framing[0]}: {framing[1]}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Client:
    def __init__(self, ns: str, host: str, port: int, authority: str = "") -> None:
        self.ns, self.host, self.port = ns, host, port
        self.authority = authority or f"{host}:{port}"
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.opened = 0

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.conn is None:
            self.conn = await open_conn(self.ns, self.host, self.port)
            self.opened += 1
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn[1].close()
            self.conn = None

    async def send(
        self,
        req: Req,
        *,
        chunks: Iterable[bytes | memoryview] | None = None,
        chunked: bool = False,
        keep_body: bool = True,
    ) -> Response:
        """One request; ``chunks`` streams a large body (Content-Length = their sum
        unless ``chunked``). Raises on a broken connection."""
        reader, writer = await self._connection()
        parts: Iterable[bytes | memoryview] = [req.body] if chunks is None else chunks
        if chunked:
            writer.write(head(req, self.authority, ("Transfer-Encoding", "chunked")))
            for part in parts:
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        else:
            body = list(parts)
            size = sum(len(p) for p in body)
            framing = ("Content-Length", str(size)) if size or req.method != "GET" else None
            writer.write(head(req, self.authority, framing))
            for part in body:
                writer.write(part)
                await writer.drain()
        await writer.drain()
        resp = await read_response(reader, keep_body=keep_body)
        if (resp.header(b"connection") or b"").lower() == b"close":
            self.close()
        return resp

    async def result(self, index: int, req: Req) -> Result:
        start = time.monotonic()
        try:
            resp = await self.send(req)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            self.close()
            return Result(index, 0, "", time.monotonic() - start, None, f"{type(e).__name__}: {e}")
        served = (resp.header(b"x-served-by") or b"").decode()
        return Result(index, resp.status, served, time.monotonic() - start, resp)


async def once(ns: str, host: str, port: int, req: Req) -> Result:
    client = Client(ns, host, port)
    try:
        return await client.result(0, req)
    finally:
        client.close()


async def load(
    ns: str,
    host: str,
    port: int,
    n: int,
    conns: int,
    build: Callable[[int], Req],
    *,
    max_broken: int = 3,
) -> list[Result]:
    """``n`` requests (``build(i)``) spread over ``conns`` keep-alive connections.

    After ``max_broken`` requests got no response at all the rest are not sent (the
    result list comes back short), so a proxy that drops connections fails the test
    quickly instead of timing it out.
    """
    results: list[Result | None] = [None] * n
    queue = iter(range(n))
    broken = 0

    async def worker() -> None:
        nonlocal broken
        client = Client(ns, host, port)
        try:
            for i in queue:
                if broken >= max_broken:
                    return
                results[i] = result = await client.result(i, build(i))
                broken += result.status == 0
        finally:
            client.close()

    await asyncio.gather(*(worker() for _ in range(conns)))
    return [r for r in results if r is not None]


def share(results: Sequence[Result], name: str) -> float:
    return sum(r.served_by == name for r in results) / max(1, len(results))


def failures(results: Sequence[Result], expected: int = 200) -> list[tuple[int, int, str]]:
    """(index, status, error or body start) of every result whose status is not ``expected``."""
    out = []
    for r in results:
        if r.status != expected:
            why = r.error or (r.response.body[:80].decode("latin-1") if r.response else "")
            out.append((r.index, r.status, why))
    return out
