"""The values the HTTP engine exchanges with the rest of the proxy, and its plug-in.

The engine is handed a ``Forwarder`` (composition, never a subclass). Per request it
asks ``Forwarder.start`` for a ``Forwarding``: the forwarder's own object for that
request, which either answers locally (``reply``) or runs the attempts itself through
``Exchange.attempt(Target)``. Its state stays its own; the engine only hands the
finished ``RequestRecord`` back to it, once. Routing, retries and telemetry live
above; nothing here calls up into them except through these two protocols.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from proxy.core.flags import Flag
from proxy.l4.conn import Intercepted  # at run time: the compiled record names its type

if TYPE_CHECKING:
    from proxy.http.exchange import Exchange
    from proxy.http.pool import UpstreamPool

Endpoint = tuple[str, int]
# The per-request records below are not frozen dataclasses, though nothing mutates
# them after construction: a frozen __init__ sets each field through
# object.__setattr__, and with a RequestRecord, a RequestHead and two Forwards per
# request that was measurable in the L7 CPU per request (scripts/bench).


@dataclass(slots=True)
class RequestHead:
    """What routing may look at. Header names in ``headers`` keep the client's casing."""

    method: str
    path: str  # the request target as sent (origin-form for a sidecar)
    authority: str  # Host header, "" when an HTTP/1.0 client sent none
    http_version: str  # "1.0" or "1.1"
    request_id: str
    headers: tuple[tuple[bytes, bytes], ...]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any casing), or None."""
        wanted = name.lower().encode("latin-1")
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None


class Target:
    """Where one attempt goes: ``endpoint`` through ``pool``; ``set_headers`` replace
    same-named request headers; a final status in ``hold`` is held back for the caller
    (``Exchange.attempt``). Plain slots: one per attempt."""

    __slots__ = ("endpoint", "hold", "pool", "set_headers", "timeout")

    def __init__(
        self,
        endpoint: Endpoint,
        pool: UpstreamPool,
        timeout: float | None = None,
        set_headers: tuple[tuple[bytes, bytes], ...] = (),
        hold: frozenset[int] = frozenset(),
    ) -> None:
        self.endpoint = endpoint
        self.pool = pool
        # Seconds from the request fully sent to the response head; None: the Limits
        # default; 0: none (Envoy's "timeout: 0s").
        self.timeout = timeout
        self.set_headers = set_headers
        self.hold = hold


@dataclass(slots=True)
class LocalReply:
    """Answer the client directly; an empty ``body`` becomes a text naming the flag."""

    status: int
    flag: Flag
    body: bytes = b""


@dataclass(slots=True)
class RequestRecord:
    """One finished request, for metrics, access logs and traces."""

    conn: Intercepted
    request_id: str
    method: str
    path: str
    authority: str
    http_version: str
    status: int  # 0 when no response reached the client
    flag: Flag
    service: str
    version: str
    endpoint: Endpoint | None
    bytes_received: int  # request body bytes read from the client
    bytes_sent: int  # response body bytes written to the client
    start: float  # event-loop clock, seconds
    duration: float  # seconds, request head in -> response done
    upstream_latency: float | None  # seconds until the response head, None if never
    attempts: int
    upgraded: bool


class Forwarding(Protocol):
    """One request as the forwarder runs it (its own object, opaque to the engine)."""

    # Answer locally instead of forwarding: set before ``run`` (then ``run`` is never
    # called), or by a ``run`` that returns without an attempt (say, after a delay).
    reply: LocalReply | None
    service: str  # for the record: where the request went, by name
    version: str  # and which version answered (known once an attempt chose)
    flag: Flag  # for the record of a request that otherwise succeeded (e.g. DI)

    def run(self, exchange: Exchange) -> Awaitable[None]:
        """Carry out the attempts; raise the engine's typed error when giving up."""

    def done(self, record: RequestRecord) -> None:
        """The request is over (called exactly once, whatever happened)."""


class Forwarder(Protocol):
    """Decides where each request goes; the engine is handed one."""

    def start(self, conn: Intercepted, head: RequestHead) -> Forwarding: ...

    def refused(self, record: RequestRecord) -> None:
        """A request the codec refused before it could be routed (400, 431, ...)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes and timeouts (seconds) of the HTTP engine; defaults follow Envoy/Istio."""

    max_request_head_bytes: int = 60 * 1024  # Envoy max_request_headers_kb
    max_request_body_bytes: int | None = None
    retry_buffer_bytes: int = 64 * 1024
    connect_timeout: float = 10.0  # Istio connectTimeout
    upstream_timeout: float = 15.0  # Envoy route timeout
    stream_idle_timeout: float = 300.0  # Envoy stream_idle_timeout
    # From a request head's first byte to its last (Envoy request_headers_timeout, which
    # Envoy leaves off; a sidecar cannot: a trickled head resets every idle timer).
    request_headers_timeout: float = 10.0
    downstream_idle_timeout: float = 3600.0  # Envoy HCM idle_timeout
    # A response slower than this gets the client connection watched, so a client that
    # hangs up is noticed (DC) and the upstream request abandoned; quicker ones skip it.
    watch_client_after: float = 1.0
    read_size: int = 64 * 1024

    def __post_init__(self) -> None:
        for name in ("max_request_head_bytes", "retry_buffer_bytes", "read_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Limits.{name}: must be a positive integer, got {value!r}")
        body = self.max_request_body_bytes
        if body is not None and (not isinstance(body, int) or body < 0):
            raise ValueError(f"Limits.max_request_body_bytes: must be >= 0 or None, got {body!r}")
        for name in (
            "connect_timeout",
            "upstream_timeout",
            "stream_idle_timeout",
            "request_headers_timeout",
            "downstream_idle_timeout",
            "watch_client_after",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"Limits.{name}: must be a positive number, got {value!r}")
