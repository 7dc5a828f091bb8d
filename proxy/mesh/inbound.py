"""Connections to the local app for inbound HTTP, from 127.0.0.6 (::6).

The L4 inbound path's ``dial`` binds the passthrough source the interceptor exempts
from capture; this adapts it to the HTTP pool's opener contract, which expects
``OSError`` / ``TimeoutError`` (the cause is kept, so a refusal stays a refusal).
"""

from __future__ import annotations

import asyncio

from proxy.core.errors import UpstreamConnectError, UpstreamConnectTimeout
from proxy.http.pool import Opener
from proxy.l4.dial import dial
from proxy.l4.inbound import PASSTHROUGH_SOURCE4, PASSTHROUGH_SOURCE6


def passthrough_opener(connect_timeout: float) -> Opener:
    async def open_from_passthrough(
        host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        family = 6 if ":" in host else 4
        source = PASSTHROUGH_SOURCE6 if family == 6 else PASSTHROUGH_SOURCE4
        try:
            return await dial(host, port, family, connect_timeout, source)
        except UpstreamConnectTimeout as exc:
            raise TimeoutError(str(exc)) from exc
        except UpstreamConnectError as exc:
            cause = exc.__cause__
            raise cause if isinstance(cause, OSError) else OSError(str(exc)) from exc

    return open_from_passthrough
