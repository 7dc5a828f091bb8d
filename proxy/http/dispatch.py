"""The simplest dispatcher: every request goes where the client was already going.

It is what the sidecar does with no configuration (and what the tests use); real
routing lives in ``proxy.routing`` and plugs in through the same ``Dispatcher`` protocol.
"""

from __future__ import annotations

from collections.abc import Callable

from proxy.http.model import Forward, RequestHead, RequestRecord
from proxy.l4.conn import Intercepted


class PassthroughDispatcher:
    """Forwards to ``conn.original_dst``; hands each finished record to ``on_done``."""

    def __init__(
        self,
        on_done: Callable[[RequestRecord], None] | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        self._on_done = on_done
        self._timeout = timeout

    def route(self, conn: Intercepted, req: RequestHead) -> Forward:
        host, port = conn.original_dst
        return Forward(endpoint=(host, port), service=f"{host}:{port}", timeout=self._timeout)

    def done(self, record: RequestRecord) -> None:
        if self._on_done is not None:
            self._on_done(record)
