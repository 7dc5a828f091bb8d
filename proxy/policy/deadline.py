"""The request deadline: the earliest of the route timeout and any deadline the
caller sent (``x-mesh-timeout-ms``, ``grpc-timeout``), as an absolute monotonic time.

Headers are parsed strictly and a malformed one is ignored (never trusted, never a
crash): a caller cannot extend its own deadline beyond the route timeout, only
shorten it. The remaining budget is propagated upstream in ``x-mesh-timeout-ms``, so
deadlines chain across hops and the earlier one wins (as in Finagle).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from proxy.core.names import GRPC_TIMEOUT, MESH_TIMEOUT_MS
from proxy.policy.errors import InvalidParameter

MESH_TIMEOUT_HEADER: Final = MESH_TIMEOUT_MS.decode()  # (str: the budget's source label)
GRPC_TIMEOUT_HEADER: Final = GRPC_TIMEOUT.decode()

_MESH_RE: Final = re.compile(rb"[0-9]{1,10}")  # up to ~115 days in ms; longer is nonsense
_GRPC_RE: Final = re.compile(rb"([0-9]{1,8})([HMSmun])")  # gRPC spec: at most 8 digits and a unit
_GRPC_UNIT: Final = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}

# Timers run on the event loop's clock, which libuv reads once per loop iteration and
# keeps in whole milliseconds, so one can fire a few ms early by ``time.monotonic``.
# A timeout that leaves less than this of the deadline has, in effect, spent it.
TIMER_SLACK: Final = 0.005


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("latin-1", "replace") if isinstance(value, str) else value


def parse_mesh_timeout(value: bytes | str) -> float | None:
    """``x-mesh-timeout-ms`` -> seconds, or None when malformed (0 means: no time left)."""
    raw = _as_bytes(value).strip(b" \t")
    return int(raw) / 1000.0 if _MESH_RE.fullmatch(raw) else None


def parse_grpc_timeout(value: bytes | str) -> float | None:
    """``grpc-timeout`` (e.g. ``250m``, ``3S``) -> seconds, or None when malformed."""
    m = _GRPC_RE.fullmatch(_as_bytes(value).strip(b" \t"))
    return int(m.group(1)) * _GRPC_UNIT[m.group(2)] if m else None


@dataclass(slots=True)
class Deadline:  # made per request: not frozen (see ``proxy.policy.endpoints.Attempt``)
    at: float | None  # monotonic seconds; None = no deadline at all
    source: str = "none"  # what set it: "route", a header name, or "none" (for logs)

    @classmethod
    def start(
        cls,
        now: float,
        route_timeout: float | None,
        headers: Iterable[tuple[bytes | str, bytes | str]] = (),
    ) -> Deadline:
        """The deadline of a request arriving at ``now``; ``route_timeout`` 0 or None = none."""
        if route_timeout is not None and not route_timeout >= 0:
            raise InvalidParameter(f"timeout: must be >= 0, got {route_timeout!r}")
        best: tuple[float, str] | None = None
        if route_timeout:
            best = (route_timeout, "route")
        for name, value in headers:
            key = _as_bytes(name).lower()
            if key == MESH_TIMEOUT_HEADER.encode():
                budget, source = parse_mesh_timeout(value), MESH_TIMEOUT_HEADER
            elif key == GRPC_TIMEOUT_HEADER.encode():
                budget, source = parse_grpc_timeout(value), GRPC_TIMEOUT_HEADER
            else:
                continue
            if budget is not None and (best is None or budget < best[0]):
                best = (budget, source)
        return cls(None) if best is None else cls(now + best[0], best[1])

    def remaining(self, now: float) -> float | None:
        """Seconds left (never negative), or None without a deadline."""
        return None if self.at is None else max(0.0, self.at - now)

    def expired(self, now: float) -> bool:
        return self.at is not None and now >= self.at

    def spent_by_timeout(self, now: float) -> bool:
        """Whether an attempt that timed out at ``now`` ran into this deadline: it is
        past, or closer than a timer's ``TIMER_SLACK`` (too close for another try)."""
        return self.at is not None and now + TIMER_SLACK >= self.at

    def attempt_timeout(self, now: float, per_try_timeout: float = 0.0) -> float | None:
        """How long the next attempt may take: min(per-try timeout (0 = none), remaining)."""
        if self.at is None:
            return per_try_timeout if per_try_timeout > 0 else None
        remaining = max(0.0, self.at - now)  # ``remaining``, inline: once per attempt
        return min(per_try_timeout, remaining) if per_try_timeout > 0 else remaining

    def header_value(self, now: float) -> str | None:
        """``x-mesh-timeout-ms`` to send upstream: whole ms left, at least 1; None when
        there is no deadline or it has passed (then the request must fail, not go on)."""
        at = self.at
        if at is None or now >= at:
            return None
        return str(max(1, math.floor((at - now) * 1000.0)))
