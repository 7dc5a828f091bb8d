"""HTTP/1.x data plane: a codec on both sides, keep-alive pooling, streaming bodies.

``HttpProxy`` serves one intercepted client connection; the ``Forwarder`` it is
handed plans each request and runs its attempts through an ``Exchange``.
"""

from __future__ import annotations

from proxy.http.errors import (
    DownstreamDisconnect,
    DownstreamError,
    HttpProxyError,
    MalformedRequest,
    RequestBodyTooLarge,
    RequestHeadTooLarge,
    ResponseAbortedError,
    UnsupportedRequest,
    UpstreamConnectError,
    UpstreamError,
    UpstreamOverflowError,
    UpstreamResetError,
    UpstreamTimeoutError,
)
from proxy.http.exchange import Exchange
from proxy.http.model import (
    Forwarder,
    Forwarding,
    Limits,
    LocalReply,
    RequestHead,
    RequestRecord,
    Target,
)
from proxy.http.passthrough import PassthroughForwarder
from proxy.http.pool import Upstream, UpstreamPool
from proxy.http.server import HttpProxy

__all__ = [
    "DownstreamDisconnect",
    "DownstreamError",
    "Exchange",
    "Forwarder",
    "Forwarding",
    "HttpProxy",
    "HttpProxyError",
    "Limits",
    "LocalReply",
    "MalformedRequest",
    "PassthroughForwarder",
    "RequestBodyTooLarge",
    "RequestHead",
    "RequestHeadTooLarge",
    "RequestRecord",
    "ResponseAbortedError",
    "Target",
    "UnsupportedRequest",
    "Upstream",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamOverflowError",
    "UpstreamPool",
    "UpstreamResetError",
    "UpstreamTimeoutError",
]
