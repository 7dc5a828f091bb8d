"""The root of the proxy's error hierarchy, and the errors of the L4 core and the process.

Every error the proxy raises on purpose derives from ``ProxyError``; an error specific
to one stage lives in that stage (``proxy.config.errors.ConfigError``,
``proxy.admin.httpmini.AdminRequestError``, ...). Each carries the Envoy response flag
it maps to, so the boundary (the relay, the metrics, the access log) translates an
exception into a flag in one place.
"""

from __future__ import annotations

import errno
from typing import ClassVar

from proxy.core.flags import Flag


class ProxyError(Exception):
    """Base of every error the proxy raises on purpose."""

    flag: ClassVar[Flag] = Flag.NONE


class UsageError(ProxyError):
    """A flag, env var or option value the proxy cannot run with (exit code 2)."""


class OriginalDstError(ProxyError):
    """SO_ORIGINAL_DST gave nothing usable (no conntrack entry, unknown family)."""

    flag = Flag.NO_ROUTE


class LoopDetected(ProxyError):
    """The original destination is one of our own listeners: a direct dial or a loop."""

    flag = Flag.NO_ROUTE


class DialError(ProxyError):
    """Connecting upstream (``proxy.l4.dial``) was refused, timed out or the network was
    unreachable. The L4 relay reports it as is; the HTTP pool wraps it in its own
    ``UpstreamConnectError`` (an ``UpstreamError``, so retried), keeping the reason."""

    flag = Flag.UPSTREAM_CONNECT_FAILURE

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # see ``connect_reason``


class DialTimeout(DialError):
    pass


def connect_reason(exc: BaseException) -> str:
    """Why a connect failed, in the words the metrics use: ``refused``,
    ``unreachable``, ``timeout`` or the errno's name (``econnreset``)."""
    if isinstance(exc, DialError):
        return exc.reason
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "unreachable"
        return errno.errorcode.get(exc.errno or 0, "error").lower()
    return "error"


class PrivilegeError(ProxyError):
    """Switching to the proxy's uid/gid failed or is impossible."""
