"""The overload guard of one worker (Envoy's overload manager and listener limits): caps
on client connections, requests waiting for an upstream slot, and bytes held in buffers.

Each cap is a counter with a limit, changed synchronously by the I/O shells: a refusal
is counted by reason and told to ``on_reject`` (the metric), the shell then closes the
connection or answers 503. Buffered bytes are counted only while a connection's buffer
is full (its reading or writing paused), which is when they can pile up; past
``max_buffered_bytes`` new requests are refused until the total falls below
``RECOVER_AT`` of it, so the guard does not flap. No I/O, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from proxy.policy.errors import AccountingError, InvalidParameter

# Descriptors a worker keeps besides its connections: listeners, admin and telemetry
# clients, the event loop's own, log pipes, inotify, DNS sockets.
FD_RESERVE = 64
# A proxied client connection can hold an upstream connection too.
FDS_PER_CONNECTION = 2
RECOVER_AT = 0.9  # the buffered total must fall this far below the cap to accept again


class Reason(enum.StrEnum):
    """Why something was refused: the ``reason`` label of the rejections counter."""

    DOWNSTREAM_CONNECTIONS = "downstream_connections"
    PENDING_REQUESTS = "pending_requests"
    BUFFERED_BYTES = "buffered_bytes"


@dataclass(frozen=True, slots=True)
class OverloadLimits:
    """Per worker. Defaults: see docs/overload.md (why each value)."""

    max_downstream_connections: int = 8192
    max_pending_requests: int = 4096
    per_connection_buffer_bytes: int = 64 * 1024
    max_buffered_bytes: int = 256 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in (
            "max_downstream_connections",
            "max_pending_requests",
            "per_connection_buffer_bytes",
            "max_buffered_bytes",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidParameter(f"overload.{name}: must be an int >= 1, got {value!r}")


def fd_connection_cap(nofile: int) -> int:
    """How many client connections a worker with ``nofile`` descriptors can carry
    without running out of them (each may need an upstream one as well)."""
    return max(1, (nofile - FD_RESERVE) // FDS_PER_CONNECTION)


class Overload:
    """One worker's overload state; every admit must be matched by its release."""

    def __init__(
        self,
        limits: OverloadLimits | None = None,
        *,
        nofile: int | None = None,
        on_reject: Callable[[Reason], None] | None = None,
    ) -> None:
        self.limits = limits or OverloadLimits()
        self.fd_cap = None if nofile is None else fd_connection_cap(nofile)
        self.on_reject = on_reject
        self.connections = 0  # client connections open
        self.pending = 0  # requests waiting for an upstream connection
        self.buffered = 0  # bytes held by connections whose buffer is full
        # Read per request (one attribute): new requests are refused while True.
        self.overloaded = False
        self.rejections = dict.fromkeys(Reason, 0)
        self.connection_limit = self._connection_limit()

    def apply(self, limits: OverloadLimits) -> None:
        """A new config: the caps hold from the next admission on (nothing is cut)."""
        self.limits = limits
        self.connection_limit = self._connection_limit()
        self._judge()

    def _connection_limit(self) -> int:
        limit = self.limits.max_downstream_connections
        return limit if self.fd_cap is None else min(limit, self.fd_cap)

    def reject(self, reason: Reason) -> None:
        self.rejections[reason] += 1
        if self.on_reject is not None:
            self.on_reject(reason)

    # -- client connections -------------------------------------------------------------

    def admit_connection(self) -> bool:
        """Take a connection slot; False (counted) at the limit: close it unserved."""
        if self.connections >= self.connection_limit:
            self.reject(Reason.DOWNSTREAM_CONNECTIONS)
            return False
        self.connections += 1
        return True

    def connection_closed(self) -> None:
        if self.connections == 0:
            raise AccountingError("connection_closed(): no connection admitted")
        self.connections -= 1

    # -- requests waiting for an upstream slot ------------------------------------------

    def admit_pending(self) -> bool:
        """Let one more request wait for an upstream connection; False (counted): 503."""
        if self.pending >= self.limits.max_pending_requests:
            self.reject(Reason.PENDING_REQUESTS)
            return False
        self.pending += 1
        return True

    def pending_done(self) -> None:
        if self.pending == 0:
            raise AccountingError("pending_done(): no request waiting")
        self.pending -= 1

    # -- buffered bytes -----------------------------------------------------------------

    def hold(self, size: int) -> None:
        """A connection's buffer filled up holding ``size`` bytes."""
        self.buffered += size
        self._judge()

    def release(self, size: int) -> None:
        """Bytes counted by ``hold`` drained (or their connection is gone)."""
        if size > self.buffered:
            raise AccountingError(f"release({size}): only {self.buffered} held")
        self.buffered -= size
        self._judge()

    def _judge(self) -> None:
        cap = self.limits.max_buffered_bytes
        if self.buffered > cap:
            self.overloaded = True
        elif self.buffered <= cap * RECOVER_AT:
            self.overloaded = False

    def refuse_request(self) -> None:
        """A request refused because of the buffered total (the shell answers 503)."""
        self.reject(Reason.BUFFERED_BYTES)
