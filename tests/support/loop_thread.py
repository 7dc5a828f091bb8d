"""An event loop on its own thread, so blocking tests can run the one test server.

Netns tests talk through blocking sockets (``nsock``) and wait with ``time.sleep``;
the servers they call run here meanwhile. A server records a request before it
answers it, so once a client has its answer the test may read ``server.requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from tests.support.http_server import HttpServer

T = TypeVar("T")


class LoopThread:
    """An event loop on its own thread: endpoints and clients run here, tests wait."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        async def bounded() -> T:
            return await asyncio.wait_for(coro, timeout)

        return asyncio.run_coroutine_threadsafe(bounded(), self.loop).result(timeout + 5)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@contextlib.contextmanager
def serving(*servers: HttpServer) -> Iterator[LoopThread]:
    """``servers`` listening on a loop thread of their own; all closed on the way out,
    even when one failed to start."""
    loop = LoopThread()
    started: list[HttpServer] = []
    try:
        for server in servers:
            loop.run(server.start())
            started.append(server)
        yield loop
    finally:
        for server in started:
            with contextlib.suppress(OSError, TimeoutError, RuntimeError):
                loop.run(server.close(), timeout=10)
        loop.stop()
