"""``Outbox``: the small writes of one event-loop pass, sent back to back after it.

Each write to a local peer wakes it. A peer that has gone back to sleep costs the
writer a cross-core wake-up, and in a VM that wake-up costs more than the rest of the
syscall. A Python proxy spends long enough between two writes for its peers to fall
asleep again, so each write pays that price. The outbox holds a complete request or
response until the pass over ready connections ends, then writes them all in one
burst. The first write wakes the peer, and the later ones find it awake. Envoy does
the same: a connection's writes are buffered and flushed from the dispatcher, not
at the moment they are made.

The cost is one extra non-blocking poll before the bytes leave, about a microsecond
when idle. Under load, whole passes of requests go out together.

The rule for users: before any other write, ``close`` or ``drain`` on a transport the
outbox may hold bytes for, call ``flush``. It writes everything held, in order, and
it costs nothing when nothing is held.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class Outbox:
    """The held writes of one event loop (``send`` schedules their flush on it)."""

    __slots__ = ("_held", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._held: list[tuple[asyncio.WriteTransport, bytes]] = []

    def send(self, transport: asyncio.WriteTransport, data: bytes) -> None:
        """Write ``data`` once the current pass of the event loop is over."""
        held = self._held
        if not held:
            self.loop.call_soon(self.flush)
        held.append((transport, data))

    def flush(self) -> None:
        """Write everything held now, in the order it was sent."""
        held = self._held
        if held:
            self._held = []
            for transport, data in held:
                if transport.is_closing():  # aborted meanwhile: nobody to send to
                    continue
                try:
                    transport.write(data)
                except Exception:  # one broken transport must not cost the others theirs
                    log.exception("write of %d held bytes failed", len(data))

    def __len__(self) -> int:
        return len(self._held)
