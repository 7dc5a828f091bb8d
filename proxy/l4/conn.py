"""What the proxy knows about one intercepted connection before any protocol runs.

The listener fills this in from the accepted socket (peer, SO_ORIGINAL_DST) and hands
it, with the bytes already peeked for protocol detection, to either the opaque TCP
relay or the HTTP layer.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Protocol


class Direction(enum.Enum):
    OUTBOUND = "outbound"  # the app dialled out; reporter=source
    INBOUND = "inbound"  # someone dialled the app; reporter=destination

    # Members are singletons: hash by identity in C, not by name through Enum's
    # Python-level __hash__ (metric label keys hash a direction per request).
    __hash__ = object.__hash__

    @property
    def reporter(self) -> str:
        return "source" if self is Direction.OUTBOUND else "destination"


@dataclass(frozen=True)
class Intercepted:
    direction: Direction
    peer: tuple[str, int]  # who connected to the proxy (the app, or the remote client)
    original_dst: tuple[str, int]  # where the connection was headed before REDIRECT
    family: int  # 4 or 6 (of the original destination)


class ConnectionHandler(Protocol):
    """Serves one intercepted connection; ``initial`` are the bytes already read."""

    async def __call__(
        self,
        conn: Intercepted,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        initial: bytes,
    ) -> None: ...
