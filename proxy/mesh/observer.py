"""The seam telemetry plugs into: one call when a request starts, one when it ends.

The dispatcher calls ``start`` for every request it routes, adds
``upstream_headers`` to every attempt (trace context, for instance) and calls
``done`` exactly once with the finished ``RequestRecord`` (local replies and
requests the parser refused included). ``NullObserver`` is the free default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from proxy.http.model import RequestHead, RequestRecord
from proxy.l4.conn import Intercepted


class RequestObserver(Protocol):
    def start(self, conn: Intercepted, head: RequestHead) -> object:
        """A token for this request (opaque to the dispatcher)."""
        ...

    def upstream_headers(self, token: object) -> Sequence[tuple[bytes, bytes]]:
        """Headers set on each attempt sent upstream (same-named ones are replaced)."""
        ...

    def done(self, token: object, record: RequestRecord) -> None:
        """The request ended; ``record`` says how."""
        ...


class NullObserver:
    """Observes nothing; the dispatcher skips it entirely (``is_null``)."""

    is_null = True

    def start(self, conn: Intercepted, head: RequestHead) -> object:
        return None

    def upstream_headers(self, token: object) -> Sequence[tuple[bytes, bytes]]:
        return ()

    def done(self, token: object, record: RequestRecord) -> None:
        return None
