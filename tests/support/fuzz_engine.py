"""Hostile bytes to the real HTTP engine, listening on 127.0.0.1, for each HTTP/1 codec.

``Rig`` runs, on a loop thread, the one test server as upstream and one engine
front per codec (``HttpProxy`` with the passthrough forwarder, as
``tests.support.engine_front`` builds it, with the handler's own exceptions caught
and kept). ``verdict`` connects, sends a mutated corpus stream, half-closes and reads
to the end. It accepts responses that begin ``HTTP/1.`` and are never a 500, ended
by a close (EOF), within ``BOUND`` seconds, with no exception out of the engine and
no ERROR logged. A reset instead of a close is reported as its own finding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from typing import Any

from hypothesis import strategies as st

from proxy.http import HttpProxy, Limits, PassthroughForwarder, RequestRecord, UpstreamPool
from proxy.http.codec import CODECS, codec_named
from proxy.l4.conn import Direction, Intercepted
from tests.support import fuzz_edits
from tests.support.engine_front import stop_serving
from tests.support.fuzz_edits import Edit
from tests.support.http1_fuzz import load_corpus, seeds
from tests.support.http1_verdict import unesc
from tests.support.http_server import HttpServer
from tests.support.loop_thread import LoopThread

BOUND = 8.0  # seconds; the input ends with EOF, so nothing may wait on the client
SPECIAL = b'\r\n \t\x00:;,0123456789aAfF\x7f\x80\x0b-"=/'
_500 = re.compile(rb"(^|\r\n)HTTP/1\.[01] 500 ")


def _requests_only() -> list[bytes]:
    """The corpus's request streams (server role): what a client may send the proxy."""
    return [unesc(c["data"]) for c in seeds(load_corpus()) if c.get("role", "server") == "server"]


POOL = _requests_only()


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(f"{record.name}: {record.getMessage()}"[:300])


class Rig:
    """The upstream and an engine front per codec, on one loop thread."""

    def __init__(self) -> None:
        self.thread = LoopThread()
        self.upstream = HttpServer("upstream", reply="identity")
        self.errors = _Errors()
        self.crashes: list[str] = []
        self.records: list[RequestRecord] = []
        self.ports: dict[str, int] = {}
        self._servers: list[tuple[asyncio.AbstractServer, set[asyncio.Task[Any]]]] = []
        self._pools: list[UpstreamPool] = []
        self.thread.run(self.upstream.start())
        for name in sorted(CODECS):
            self.ports[name] = self.thread.run(self._front(name))
        self.thread.loop.set_exception_handler(lambda _, ctx: self.crashes.append(str(ctx)))
        logging.getLogger().addHandler(self.errors)

    async def _front(self, codec: str) -> int:
        factory = codec_named(codec)
        pool = UpstreamPool(codec=factory)
        forwarder = PassthroughForwarder(self.records.append, pool=pool)
        proxy = HttpProxy(forwarder, Limits(), codec=factory)
        target = ("127.0.0.1", self.upstream.port)
        handlers: set[asyncio.Task[Any]] = set()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            peer = writer.get_extra_info("peername")
            try:
                await proxy(
                    Intercepted(Direction.OUTBOUND, peer[:2], target, 4), reader, writer, b""
                )
            except Exception as exc:  # the finding this rig exists for
                self.crashes.append(f"{type(exc).__name__}: {exc}")
            finally:
                handlers.discard(task)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self._servers.append((server, handlers))
        self._pools.append(pool)
        return int(server.sockets[0].getsockname()[1])

    async def _exchange(self, port: int, data: bytes) -> tuple[bytes, str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        ending = "close"
        try:
            writer.write(data)
            writer.write_eof()
            answer = bytearray()
            while chunk := await reader.read(1 << 16):
                answer += chunk
        except ConnectionResetError:
            ending = "reset"
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return bytes(answer), ending

    def verdict(self, codec: str, data: bytes) -> str | None:
        del self.crashes[:], self.errors.seen[:], self.records[:], self.upstream.requests[:]
        try:
            answer, ending = self.thread.run(self._exchange(self.ports[codec], data), BOUND)
        except TimeoutError:
            return f"{codec}: no close within {BOUND} s"
        if self.crashes or self.errors.seen:
            return f"{codec}: {[*self.crashes, *self.errors.seen][:2]}"
        if answer and not answer.startswith(b"HTTP/1."):
            return f"{codec}: answer does not start with a status line: {answer[:80]!r}"
        if _500.search(answer) or any(r.status == 500 for r in self.records):
            return f"{codec}: answered 500: {answer[:200]!r}"
        if ending != "close":
            return f"{codec}: {ending} instead of a close after {answer[:60]!r}"
        return None

    def close(self) -> None:
        logging.getLogger().removeHandler(self.errors)

        async def stop() -> None:
            for server, handlers in self._servers:
                await stop_serving(server, handlers)
            for pool in self._pools:
                await pool.close()
            await self.upstream.close()

        with contextlib.suppress(Exception):
            self.thread.run(stop(), 10)
        self.thread.stop()


def edited(seed: int, edits: list[Edit]) -> bytes:
    return fuzz_edits.mutate(POOL[seed % len(POOL)], edits, POOL)


def inputs() -> st.SearchStrategy[bytes]:
    return st.builds(edited, st.integers(0, len(POOL) - 1), fuzz_edits.strategy(SPECIAL, len(POOL)))


def random_input(rng: random.Random) -> bytes:
    return edited(rng.randrange(len(POOL)), fuzz_edits.random_edits(rng, SPECIAL, len(POOL)))
