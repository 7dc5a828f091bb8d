"""Clients that keep sending until told to stop, on a ``LoopThread``, while the test
thread makes trouble (kills, signals) and watches.

Each of ``conns`` workers is one keep-alive ``pod_clients.Client``; a failed request
is recorded (status 0) and the next one goes on a new connection. Every result carries
when its request was sent and when it ended (``time.monotonic``), so a test can ask
what happened to the requests in flight at a given moment.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.support.loop_thread import LoopThread
from tests.support.pod_clients import Client, Req, Result


@dataclass(frozen=True)
class Timed:
    worker: int
    sent: float
    ended: float
    result: Result


class SteadyLoad:
    def __init__(
        self,
        loop: LoopThread,
        ns: str,
        host: str,
        port: int,
        build: Callable[[int, int], Req],
        *,
        conns: int = 4,
        pause: float = 0.002,  # between a worker's requests: steady, not flat out
    ) -> None:
        self.loop = loop
        self.results: list[Timed] = []
        self.in_flight = 0
        self._stop = asyncio.Event()
        self._args = (ns, host, port, build, pause)
        self._future: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(
            self._run(conns), loop.loop
        )

    async def _run(self, conns: int) -> None:
        await asyncio.gather(*(self._worker(n) for n in range(conns)))

    async def _worker(self, n: int) -> None:
        ns, host, port, build, pause = self._args
        client = Client(ns, host, port)
        i = 0
        try:
            while not self._stop.is_set():
                sent = time.monotonic()
                self.in_flight += 1
                try:
                    result = await client.result(len(self.results), build(n, i))
                finally:
                    self.in_flight -= 1
                self.results.append(Timed(n, sent, time.monotonic(), result))
                i += 1
                await asyncio.sleep(pause)
        finally:
            client.close()

    def count(self, check: Callable[[Result], bool], since: int = 0) -> int:
        return sum(check(t.result) for t in self.results[since:])

    def finish(self, timeout: float = 15.0) -> list[Timed]:
        """Stop sending; wait for the requests in flight; every result so far."""
        self.loop.loop.call_soon_threadsafe(self._stop.set)
        self._future.result(timeout)
        return self.results


def wait_until(what: str, check: Callable[[], bool], timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
