"""The seam telemetry plugs into: one call when a request starts, one when it ends.

The dispatcher calls ``RequestObserver.start`` for every request it routes (and for
each one the parser refused) and gets that request's ``RequestWatch``: its
``headers`` go on every attempt sent upstream (trace context, for instance), and its
``done`` is called exactly once with the finished ``RequestRecord``. ``NullObserver``
is the free default: one shared watch that adds nothing and records nothing.
"""

from __future__ import annotations

from typing import Final, Protocol

from proxy.http.model import RequestHead, RequestRecord
from proxy.l4.conn import Intercepted

UpstreamHeaders = tuple[tuple[bytes, bytes], ...]


class RequestWatch(Protocol):
    """One request as telemetry follows it."""

    # Set on each attempt sent upstream (same-named request headers are replaced).
    headers: UpstreamHeaders

    def done(self, record: RequestRecord) -> None:
        """The request ended; ``record`` says how."""


class RequestObserver(Protocol):
    def start(self, conn: Intercepted, head: RequestHead) -> RequestWatch: ...


class _NullWatch:
    __slots__ = ()
    headers: UpstreamHeaders = ()

    def done(self, record: RequestRecord) -> None:
        return None


NULL_WATCH: Final = _NullWatch()


class NullObserver:
    """Observes nothing: every request gets the same empty watch."""

    def start(self, conn: Intercepted, head: RequestHead) -> RequestWatch:
        return NULL_WATCH
