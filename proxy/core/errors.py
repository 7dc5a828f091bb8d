"""The root of the proxy's error hierarchy, and the errors of the L4 core and the process.

Every error the proxy raises on purpose derives from ``ProxyError``; an error specific
to one stage lives in that stage (``proxy.config.errors.ConfigError``,
``proxy.admin.httpmini.AdminRequestError``, ...). Each carries the Envoy response flag
it maps to, so the boundary (the relay, the metrics, the access log) translates an
exception into a flag in one place.
"""

from __future__ import annotations

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


class UpstreamConnectError(ProxyError):
    """Connecting upstream was refused, timed out or the network was unreachable."""

    flag = Flag.UPSTREAM_CONNECT_FAILURE

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # refused | unreachable | timeout | <errno name>


class UpstreamConnectTimeout(UpstreamConnectError):
    flag = Flag.UPSTREAM_CONNECT_FAILURE


class PrivilegeError(ProxyError):
    """Switching to the proxy's uid/gid failed or is impossible."""
