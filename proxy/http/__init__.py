"""HTTP/1.x data plane: a codec on both sides, keep-alive pooling, streaming bodies.

``HttpProxy`` serves one intercepted client connection and forwards each request to
the endpoint a ``Dispatcher`` picks, through a shared ``UpstreamPool``.
"""

from __future__ import annotations

from proxy.http.dispatch import PassthroughDispatcher
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
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from proxy.http.exchange import Exchange
from proxy.http.model import Dispatcher, Forward, Limits, LocalReply, RequestHead, RequestRecord
from proxy.http.pool import Upstream, UpstreamPool
from proxy.http.server import HttpProxy

__all__ = [
    "Dispatcher",
    "DownstreamDisconnect",
    "DownstreamError",
    "Exchange",
    "Forward",
    "HttpProxy",
    "HttpProxyError",
    "Limits",
    "LocalReply",
    "MalformedRequest",
    "PassthroughDispatcher",
    "RequestBodyTooLarge",
    "RequestHead",
    "RequestHeadTooLarge",
    "RequestRecord",
    "ResponseAbortedError",
    "UnsupportedRequest",
    "Upstream",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamOverflowError",
    "UpstreamPool",
    "UpstreamResetError",
    "UpstreamStatusError",
    "UpstreamTimeoutError",
]
