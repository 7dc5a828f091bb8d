"""Shared pieces of the mesh loopback tests.

``Backend`` is the one test HTTP server answering its name, whose status and delay a
test flips at will; it records every request (headers, peer). ``mesh_front`` runs
``HttpProxy`` + ``MeshForwarder`` behind a 127.0.0.1:0 listener whose
connections look intercepted towards ``front.target``, on the codec a test names
(the ``codec`` fixture: once per registered codec).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from proxy.config import MeshConfig, loads_config
from proxy.http import HttpProxy, Limits, RequestHead, RequestRecord
from proxy.http.codec import codec_named
from proxy.l4.conn import Direction, Intercepted
from proxy.mesh import Mesh, MeshDispatcher, MeshForwarder, Resolver
from tests.support.engine_front import stop_serving
from tests.support.http_client import Response, read_response
from tests.support.http_server import HttpServer

VIP = "10.96.0.20"


@dataclass
class BackendSeen:
    """A request as the mesh tests read it: path, headers by lower-cased name, peer IP."""

    method: str
    path: str  # the request target, as sent
    headers: dict[str, str]
    peer: str


class Backend:
    """One endpoint: the one test server (``tests.support.http_server``) answering its
    name as the body, with ``status`` and ``delay`` (seconds) a test flips at will."""

    def __init__(
        self,
        name: str,
        status: int = 200,
        delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.name = name
        self.server = HttpServer(name, host=host, port=port, reply="name")
        self.status, self.delay = status, delay

    @property
    def status(self) -> int:
        return self.server.mode.status

    @status.setter
    def status(self, value: int) -> None:
        self.server.mode.status = value

    @property
    def delay(self) -> float:
        return self.server.mode.delay_ms / 1000

    @delay.setter
    def delay(self, seconds: float) -> None:
        self.server.mode.delay_ms = seconds * 1000

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def connections(self) -> int:
        return self.server.connections

    @property
    def seen(self) -> list[BackendSeen]:
        return [
            BackendSeen(s.method, s.target, dict(s.headers), s.peer[0])
            for s in self.server.requests
        ]

    async def start(self) -> Backend:
        await self.server.start()
        return self

    @property
    def endpoint(self) -> dict[str, Any]:
        return {"address": self.host, "port": self.port}

    def header_values(self, name: str) -> list[str]:
        return [s.headers.get(name, "") for s in self.seen]

    async def close(self) -> None:
        await self.server.close()


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def config(services: Sequence[dict[str, Any]], **top: Any) -> MeshConfig:
    return loads_config(json.dumps({"services": list(services), **top}))


def service(
    name: str,
    endpoints: Sequence[dict[str, Any]],
    *,
    addresses: Sequence[str] = (VIP,),
    port: int = 80,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "port": port,
        "addresses": list(addresses),
        "protocol": "http",
        "endpoints": list(endpoints),
        **extra,
    }


class Clock:
    """A fake monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A ``RequestObserver`` that keeps what it was told; each request's watch is
    numbered in start order and adds ``x-test-token: <number>`` to every attempt."""

    def __init__(self) -> None:
        self.started: list[RequestHead] = []
        self.records: list[RequestRecord] = []
        self.tokens: list[int] = []  # the watch number of each finished request

    def start(self, conn: Intercepted, head: RequestHead) -> RecordedWatch:
        self.started.append(head)
        return RecordedWatch(self, len(self.started))


class RecordedWatch:
    def __init__(self, recorder: Recorder, number: int) -> None:
        self.recorder = recorder
        self.number = number
        self.headers = ((b"x-test-token", str(number).encode()),)

    def done(self, record: RequestRecord) -> None:
        self.recorder.tokens.append(self.number)
        self.recorder.records.append(record)


@dataclass
class Front:
    port: int
    mesh: Mesh
    proxy: HttpProxy
    forwarder: MeshForwarder
    recorder: Recorder
    target: tuple[str, int] = (VIP, 80)
    direction: Direction = Direction.OUTBOUND

    async def request(
        self,
        path: str = "/",
        *,
        method: str = "GET",
        host: str = "svc",
        headers: Sequence[str] = (),
        body: bytes = b"",
    ) -> Response:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *headers]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        try:
            return await read_response(reader, head_request=method == "HEAD")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    @property
    def records(self) -> list[RequestRecord]:
        return self.recorder.records

    def cluster(self, name: str) -> dict[str, Any]:
        for row in self.mesh.clusters():
            if row["name"] == name:
                return row
        raise AssertionError(f"no cluster {name!r}")

    def row(self, name: str, backend: Backend) -> dict[str, Any]:
        for row in self.cluster(name)["endpoints"]:
            if row["address"] == f"{backend.host}:{backend.port}":
                assert isinstance(row, dict)
                return row
        raise AssertionError(f"no endpoint {backend.port} in {name!r}")


@contextlib.asynccontextmanager
async def mesh_front(
    cfg: MeshConfig,
    *,
    codec: str,
    clock: Clock | None = None,
    resolver: Resolver | None = None,
    inbound: bool = False,
    seed: int = 7,
) -> AsyncIterator[Front]:
    kwargs: dict[str, Any] = {}
    if clock is not None:
        kwargs["clock"] = clock
    if resolver is not None:
        kwargs["resolver"] = resolver
    factory = codec_named(codec)  # both sides of the engine and every upstream pool
    mesh = Mesh(cfg, codec=factory, **kwargs)
    await mesh.start()
    recorder = Recorder()
    dispatcher = MeshDispatcher(mesh, observer=recorder, rng=random.Random(seed))
    limits = Limits(connect_timeout=2.0)
    forwarder = MeshForwarder(dispatcher, limits, codec=factory)
    proxy = HttpProxy(forwarder, limits, codec=factory)
    handlers: set[asyncio.Task[None]] = set()
    front: Front

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        peer = writer.get_extra_info("peername")
        family = 6 if ":" in front.target[0] else 4
        conn = Intercepted(front.direction, (peer[0], peer[1]), front.target, family)
        try:
            await proxy(conn, reader, writer, b"")
        finally:
            handlers.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    front = Front(server.sockets[0].getsockname()[1], mesh, proxy, forwarder, recorder)
    if inbound:
        front.direction = Direction.INBOUND
    try:
        yield front
    finally:
        await stop_serving(server, handlers)
        await forwarder.close()
        await mesh.close()
