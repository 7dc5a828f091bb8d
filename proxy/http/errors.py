"""The HTTP engine's typed failures and how each one looks to the client.

Code below the boundary raises one of these; ``HttpProxy`` translates it into a
status code, an Envoy response flag and a short text body naming the flag, once.
``UpstreamError`` means nothing of the response reached the client yet, so the
request may be retried elsewhere (if its body is still replayable).
"""

from __future__ import annotations

from typing import ClassVar

from proxy.core.errors import ProxyError
from proxy.core.flags import Flag


class HttpProxyError(ProxyError):
    """Root of the HTTP engine's failures (under the proxy's one error root)."""

    status: ClassVar[int] = 502
    flag: ClassVar[Flag] = Flag.NONE


class UpstreamError(HttpProxyError):
    """The upstream failed; raised only while nothing was sent to the client."""

    def __init__(self, message: str, *, stale: bool = False) -> None:
        super().__init__(message)
        # A reused keep-alive connection that failed before any response byte: the
        # upstream most likely closed it while idle, so a fresh connection is safe.
        self.stale = stale


class UpstreamConnectError(UpstreamError):
    status, flag = 503, Flag.UPSTREAM_CONNECT_FAILURE

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # ``proxy.core.errors.connect_reason``: refused, timeout, ...


class UpstreamOverflowError(UpstreamError):
    status, flag = 503, Flag.UPSTREAM_OVERFLOW


class UpstreamResetError(UpstreamError):
    status, flag = 502, Flag.UPSTREAM_RESET


class UpstreamTimeoutError(UpstreamError):
    status, flag = 504, Flag.UPSTREAM_TIMEOUT


class ResponseAbortedError(HttpProxyError):
    """The upstream failed after the response head went out: the client connection dies."""

    def __init__(self, cause: UpstreamError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class DownstreamError(HttpProxyError):
    """The client misbehaved or went away."""


class DownstreamDisconnect(DownstreamError):
    status, flag = 0, Flag.DOWNSTREAM_DISCONNECT


class MalformedRequest(DownstreamError):
    status, flag = 400, Flag.DOWNSTREAM_PROTOCOL_ERROR


class UnsupportedRequest(DownstreamError):
    """Valid HTTP the proxy does not implement (a transfer coding other than chunked)."""

    status, flag = 501, Flag.DOWNSTREAM_PROTOCOL_ERROR


class RequestHeadTooLarge(DownstreamError):
    status, flag = 431, Flag.DOWNSTREAM_PROTOCOL_ERROR


class RequestBodyTooLarge(DownstreamError):
    status, flag = 413, Flag.NONE


_REASONS = {
    400: b"Bad Request",
    404: b"Not Found",
    413: b"Content Too Large",
    431: b"Request Header Fields Too Large",
    501: b"Not Implemented",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}


def reason(status: int) -> bytes:
    return _REASONS.get(status, b"")


def error_text(status: int, flag: Flag, detail: str = "") -> bytes:
    """The body of a locally generated error: status, flag, and why."""
    line = f"{status} {reason(status).decode()} ({flag.value})"
    if detail:
        line += f": {detail}"
    return line.encode("utf-8", "replace") + b"\n"


def canned_close_response(status: int, body: bytes) -> bytes:
    """A complete ``Connection: close`` response for when the parser is unusable."""
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
        % (status, reason(status), len(body), body)
    )
