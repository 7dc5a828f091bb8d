"""The JSON access log on stdout, written without ever blocking the event loop.

Lines are appended to a buffer and flushed ``FLUSH_INTERVAL`` after the first of them
(every line of that interval in one write), or at once when the buffer is large,
with non-blocking writes. Envoy buffers its file access logs the same way (flushed
every second); a write per loop iteration cost a busy proxy a syscall every one or
two requests. A request's line can also be rendered at flush time (``defer``): the
formatting of a whole interval then runs back to back, on warm caches, instead of
between the parse and relay work of each request. A stdout that does not keep up
leaves the rest for a retry ``RETRY_AFTER`` later, and past a cap lines are dropped
and counted. Writes to a pipe or socket are cut at line boundaries within PIPE_BUF,
so workers sharing one pipe never mix lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import stat
import time
from collections.abc import Callable
from typing import Any, Final

from prometheus_client import Counter

from proxy.observe.logline import entry_line

FLUSH_INTERVAL: Final = 0.1  # seconds a line may wait for the lines that follow it
_log: Final = logging.getLogger(__name__)
RETRY_AFTER: Final = 0.2  # seconds between attempts while stdout is full
FLUSH_AT: Final = 64 * 1024  # bytes: a busy proxy flushes on size instead
MAX_PENDING: Final = 4 * 1024 * 1024  # bytes held while stdout is stuck; beyond, lines drop
MAX_DEFERRED: Final = 32  # lines waiting to be rendered: a batch short enough not to stall requests
_CHUNK: Final = select.PIPE_BUF  # a pipe write up to this size is atomic


def open_stdout_nonblocking(fd: int = 1) -> int:
    """A non-blocking fd for stdout, if possible one that leaves fd 1's own flags alone.

    A pipe is reopened through /proc (a new open file description, so O_NONBLOCK stays
    ours); when that is not allowed (the pipe belongs to root and we dropped to 1337)
    or stdout is a socket, fd 1 itself is made non-blocking: the proxy writes stdout
    only through this log. Files and terminals do not block meaningfully: used as is.
    """
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return fd  # no stdout at all: writes will fail and the lines are discarded
    if stat.S_ISFIFO(mode):
        with contextlib.suppress(OSError):
            return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        os.set_blocking(fd, False)
    return fd


def _shared_stream(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return True  # unknown: keep the safe cut
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


# ".000Z" to ".999Z": a concatenation, where a format spec is a str.format call (the
# compiled build's f-string pays one for each spec).
_MILLIS: Final = tuple(f".{milli:03d}Z" for milli in range(1000))


class AccessLog:
    def __init__(
        self, fd: int, dropped: Counter | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.fd = fd
        self.dropped = dropped
        # Pipes (and sockets) shared by workers get whole lines within PIPE_BUF per
        # write, so lines never interleave; a file or terminal takes the lot at once.
        self._chunk = _CHUNK if _shared_stream(fd) else MAX_PENDING
        self.clock = clock
        self._pending = bytearray()
        # (time logged, render, its arguments): render(stamp, *args) is the line.
        self._deferred: list[tuple[float, Callable[..., bytes], tuple[Any, ...]]] = []
        self._timer: asyncio.Handle | None = None
        self._second = -1  # the whole second ``_stamp`` was formatted for
        self._stamp = ""
        self._milli = -1  # the millisecond ``_milli_stamp`` is the stamp of
        self._milli_stamp = ""

    def stamp(self, now: float | None = None) -> str:
        """RFC 3339 time with milliseconds; strftime runs once per second, not per line,
        and a busy proxy's lines of the same millisecond share one string."""
        if now is None:
            now = self.clock()
        milli = int(now * 1000)
        if milli == self._milli:
            return self._milli_stamp
        second, part = divmod(milli, 1000)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        self._milli = milli
        self._milli_stamp = self._stamp + _MILLIS[part]
        return self._milli_stamp

    def __call__(self, entry: dict[str, Any]) -> None:
        """Log one request / connection entry (``proxy.observe.logline``); adds ``time``
        (RFC 3339, UTC, ms)."""
        self.defer(entry_line, entry)

    def defer(self, render: Callable[..., bytes], *args: Any) -> None:
        """Queue a line made later as ``render(stamp, *args)``, stamped with the time now.

        The arguments must not change until the flush; a request's finished record
        does not.
        """
        self.defer_at(self.clock(), render, *args)

    def defer_at(self, when: float, render: Callable[..., bytes], *args: Any) -> None:
        """``defer``, stamped with ``when`` (seconds since the epoch) instead of now."""
        self._deferred.append((when, render, args))
        if len(self._deferred) >= MAX_DEFERRED:
            self._render()
        self._arm()

    def _render(self) -> None:
        deferred, self._deferred = self._deferred, []
        for now, render, args in deferred:
            try:
                line = render(self.stamp(now), *args)
            except Exception:  # a bug in one line's renderer must not cost the others
                self.render_failed()
                continue
            self._queue(line)

    def render_failed(self) -> None:
        """A line could not be rendered (called from its ``except``): say so, count it."""
        _log.exception("access log: could not render a line")
        if self.dropped is not None:
            self.dropped.inc()

    def extend(self, lines: list[bytes]) -> None:
        """Queue ready-made lines (each ending in a newline): ``append`` for a batch."""
        if self._deferred:
            self._render()  # what was deferred came first
        pending = self._pending
        size = len(pending)
        for line in lines:
            size += len(line)
        if size < FLUSH_AT:  # so also within MAX_PENDING: every line is kept
            pending += b"".join(lines)
        else:
            for line in lines:
                self._queue(line)
        if pending:
            self._arm()

    def append(self, line: bytes) -> None:
        """Queue one ready-made line (ending in a newline) for the next flush."""
        self._render()  # what was deferred came first
        self._queue(line)
        if self._pending:
            self._arm()

    def _arm(self) -> None:
        """Flush ``FLUSH_INTERVAL`` from now, unless a flush is already due."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self._on_timer)

    def _queue(self, line: bytes) -> None:
        """Add a rendered line; a busy proxy flushes on size instead of waiting."""
        if len(self._pending) + len(line) > MAX_PENDING:
            if self.dropped is not None:
                self.dropped.inc()
        else:
            self._pending += line
        if len(self._pending) >= FLUSH_AT:
            self.flush()

    def _on_timer(self) -> None:
        self._timer = None
        self._render()
        self.flush()
        if self._pending:  # stdout is slow: come back later instead of spinning
            self._timer = asyncio.get_running_loop().call_later(RETRY_AFTER, self._on_timer)

    def flush(self) -> None:
        """Write what stdout takes now; whole lines, at most PIPE_BUF per write."""
        pending = self._pending
        while pending:
            end = len(pending)
            chunk = self._chunk
            if end > chunk:
                cut = pending.rfind(b"\n", 0, chunk)
                end = cut + 1 if cut >= 0 else pending.find(b"\n") + 1  # a line > PIPE_BUF
            try:
                written = os.write(self.fd, pending[:end])
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                pending.clear()  # stdout is gone (closed pipe): nothing to keep it for
                return
            del pending[:written]

    def close(self) -> None:
        """Last flush at shutdown (may still leave lines if stdout stays full)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._render()
        self.flush()
