"""Where one intercepted connection goes: the upstream address and its metric labels.

A ``Router`` is a small synchronous decision (no I/O): outbound picks the original
destination or a configured TCP service's endpoint, inbound forwards to the app on
the original destination from the passthrough source address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from proxy.l4.conn import Intercepted
from proxy.observe.metrics import ConnLabels


@dataclass(frozen=True)
class Route:
    host: str
    port: int
    family: int  # 4 or 6
    source: str | None  # bind the upstream socket here first (inbound passthrough)
    labels: ConnLabels
    opaque: bool = False  # the destination is declared tcp: skip protocol detection
    http: bool = False  # declared http: skip detection, straight to the HTTP handler


class Router(Protocol):
    def route(self, conn: Intercepted) -> Route: ...
