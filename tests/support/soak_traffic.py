"""The soak's steady traffic from the pod namespace, and the counters it keeps.

Three kinds of load run side by side on one event loop, each on an absolute schedule
(a late step is not made up for with a burst): HTTP requests over a few keep-alive
connections, HTTP requests each on a new connection, and opaque TCP streams whose
echo must hash to what was sent. ``Counters`` is what the soak reads per period;
every failure is kept with its reason, none is retried here (a retry would hide it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tests.support import pod_clients
from tests.support.nsock import pattern


@dataclass
class Counters:
    requests: int = 0  # HTTP requests answered 200 by an endpoint (keep-alive and new)
    new_conns: int = 0  # of those, on a connection opened for them
    streams: int = 0  # TCP streams echoed in full with the right digest
    stream_bytes: int = 0  # bytes sent and echoed back through those streams
    lost_bytes: int = 0  # bytes sent on a stream and not echoed back (or wrong)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds, HTTP only

    def take(self) -> Counters:
        """This period's counts; the counters start again from zero."""
        taken = Counters(
            self.requests,
            self.new_conns,
            self.streams,
            self.stream_bytes,
            self.lost_bytes,
            self.errors,
            self.latencies,
        )
        self.__init__()  # type: ignore[misc]
        return taken


@dataclass(frozen=True)
class Rates:
    keepalive_conns: int = 4
    keepalive_rps: float = 80.0  # over all keep-alive connections
    new_conn_rps: float = 10.0
    streams_per_s: float = 2.0
    stream_size: int = 64 * 1024


async def _steady(rate: float, until: float, step: Callable[[int], Awaitable[None]]) -> None:
    """``step(n)`` at ``rate`` per second until ``until``; steps may overlap."""
    start, n = time.monotonic(), 0
    pending: set[asyncio.Task[None]] = set()
    while True:
        at = start + n / rate
        if at >= until:
            break
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        task = asyncio.ensure_future(step(n))
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
    if pending:
        await asyncio.wait(pending, timeout=15)


class Traffic:
    def __init__(self, ns: str, vip: tuple[str, int], echo: tuple[str, int], rates: Rates) -> None:
        self.ns, self.vip, self.echo, self.rates = ns, vip, echo, rates
        self.counters = Counters()

    def _judge(self, result: pod_clients.Result, new: bool) -> None:
        body = result.response.body if result.response is not None else b""
        if result.status == 200 and body.startswith(b"port="):
            self.counters.requests += 1
            self.counters.new_conns += new
            self.counters.latencies.append(result.elapsed)
        else:
            why = result.error or body[:80].decode("latin-1")
            self.counters.errors.append(f"http{' new' if new else ''}: {result.status} {why}")

    async def keepalive(self, until: float) -> None:
        per_conn = self.rates.keepalive_rps / self.rates.keepalive_conns

        async def one_conn() -> None:
            client = pod_clients.Client(self.ns, *self.vip)
            lock = asyncio.Lock()  # one request at a time on a connection

            async def step(n: int) -> None:
                async with lock:
                    self._judge(await client.result(n, pod_clients.Req(target=f"/k{n}")), False)

            try:
                await _steady(per_conn, until, step)
            finally:
                client.close()

        await asyncio.gather(*(one_conn() for _ in range(self.rates.keepalive_conns)))

    async def new_conns(self, until: float) -> None:
        async def step(n: int) -> None:
            req = pod_clients.Req(target=f"/n{n}")
            self._judge(await pod_clients.once(self.ns, *self.vip, req), True)

        await _steady(self.rates.new_conn_rps, until, step)

    async def streams(self, until: float) -> None:
        size = self.rates.stream_size

        async def step(n: int) -> None:
            data = pattern(n, size)
            got = hashlib.sha256()
            received = 0
            try:
                reader, writer = await pod_clients.open_conn(self.ns, *self.echo)
                try:
                    writer.write(data)
                    await writer.drain()
                    writer.write_eof()
                    while chunk := await asyncio.wait_for(reader.read(1 << 16), 10):
                        got.update(chunk)
                        received += len(chunk)
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
            except (OSError, TimeoutError) as e:
                self.counters.errors.append(f"tcp: {type(e).__name__}: {e}")
            if received == size and got.digest() == hashlib.sha256(data).digest():
                self.counters.streams += 1
                self.counters.stream_bytes += size
            else:
                # Short: the missing bytes are lost; full length but the wrong hash: all.
                self.counters.lost_bytes += size - received if received < size else size
                self.counters.errors.append(f"tcp: {received} of {size} bytes echoed, digest")

        await _steady(self.rates.streams_per_s, until, step)

    async def run(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(self.keepalive(until), self.new_conns(until), self.streams(until))
