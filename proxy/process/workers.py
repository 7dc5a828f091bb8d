"""``--workers N``: N forked processes, each with its own SO_REUSEPORT listeners, kept at N.

The parent forks before any event loop exists, then only supervises: it forwards
SIGTERM/SIGINT/SIGUSR1 to every worker and reaps them. A worker that dies while the
parent is neither stopping nor draining is reported (``on_death``, e.g. to retire its
metrics files) and replaced by a fresh fork with the same index, at most ``limit``
times per ``window`` seconds; past that the workers crash in a loop and the parent
stops the others and exits non-zero. Its exit status is otherwise the first non-zero
status of a worker stopped by the parent (0 when every worker drained cleanly).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from proxy.core.errors import PrivilegeError

log = logging.getLogger("proxy.process.workers")
RESTART_WINDOW = 10.0  # seconds; at most ``count`` restarts within it (see run_workers)
DRAIN = signal.SIGUSR1  # POST /drain in a worker asks the parent to drain them all
FORWARDED = (signal.SIGTERM, signal.SIGINT, DRAIN)


class RestartBudget:
    """At most ``limit`` restarts in any ``window`` seconds (pure: the clock is passed in)."""

    def __init__(self, limit: int, window: float = RESTART_WINDOW) -> None:
        if limit < 0 or window <= 0:
            raise ValueError(f"restart budget: limit {limit} / window {window}s is not valid")
        self.limit = limit
        self.window = window
        self._recent: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """True (and counted) when a restart at ``now`` stays within the budget."""
        while self._recent and now - self._recent[0] >= self.window:
            self._recent.popleft()
        if len(self._recent) >= self.limit:
            return False
        self._recent.append(now)
        return True


@dataclass(frozen=True)
class Credentials:
    """A process's user and groups, so that a forked replacement can take them back.

    SO_REUSEPORT only joins sockets created by the same uid: a replacement must bind
    as the first workers did (the starting user), then drop like them. The parent
    therefore *holds* instead of dropping: real and effective ids become the proxy's
    (a worker may still signal it, e.g. POST /drain) while the saved ids stay the
    starting ones, which only a child reclaims, right before it binds.
    """

    uids: tuple[int, int, int]
    gids: tuple[int, int, int]
    groups: tuple[int, ...]

    @classmethod
    def current(cls) -> Credentials:
        return cls(os.getresuid(), os.getresgid(), tuple(os.getgroups()))

    def hold_as(self, uid: int | None, gid: int | None) -> None:
        """Parent: act as ``uid``/``gid`` but keep the starting ids as the saved ones."""
        if uid is None or gid is None or self.uids[1] != 0:
            return  # nothing to give up: the workers bind and run as this user already
        try:
            os.setgroups([])
            os.setresgid(gid, gid, self.gids[2])
            os.setresuid(uid, uid, self.uids[2])
        except OSError as e:
            raise PrivilegeError(f"cannot hold uid {uid} gid {gid}: {e.strerror or e}") from e
        if os.getresuid()[:2] != (uid, uid) or os.getresgid()[:2] != (gid, gid):
            raise PrivilegeError(f"holding {uid}:{gid} did not take effect")

    def restore(self) -> None:
        """Child of a holding parent: become the starting user again (no-op otherwise)."""
        if Credentials.current() == self:
            return
        try:
            os.setresuid(*self.uids)  # first: the saved uid makes this allowed
            os.setresgid(*self.gids)
            os.setgroups(list(self.groups))
        except OSError as e:
            raise PrivilegeError(f"cannot restore the starting user: {e.strerror or e}") from e


def _status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def _describe(wait_status: int) -> str:
    if os.WIFSIGNALED(wait_status):
        return f"killed by {signal.Signals(os.WTERMSIG(wait_status)).name}"
    return f"exited with status {os.WEXITSTATUS(wait_status)}"


def _child(index: int, worker: Callable[[int], int]) -> None:
    """The forked worker's whole life; never returns into the parent's code path."""
    for signum in FORWARDED:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)  # blocked by the parent's fork
    code = 1
    try:
        code = worker(index)
    except BaseException:  # the worker is a process: report, then exit non-zero
        log.exception("worker %d failed", index)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()  # os._exit skips Python's buffers: access log lines
        os._exit(code)


def run_workers(
    count: int,
    worker: Callable[[int], int],
    after_fork: Callable[[], None],
    on_death: Callable[[int], None] = lambda pid: None,
    limit: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Fork ``count`` workers running ``worker(index)`` and keep them running.

    ``after_fork`` runs in the parent once the first workers exist; ``on_death(pid)``
    for every worker reaped; ``limit`` restarts per ``RESTART_WINDOW`` (default
    ``count``: each worker may die once per window) before the parent gives up.
    """
    live: dict[int, int] = {}  # pid → worker index
    budget = RestartBudget(count if limit is None else limit)
    stopping = draining = False

    def forward(signum: int, _: FrameType | None) -> None:
        nonlocal stopping, draining
        if signum == DRAIN:
            draining = True  # a drained proxy takes nothing new: no replacements either
        else:
            stopping = True
        for pid in list(live):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def spawn(index: int) -> int:
        # Blocked across fork + bookkeeping so that a SIGTERM arriving meanwhile is
        # forwarded to this worker too (the handler runs once the pid is recorded).
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        try:
            pid = os.fork()
            if pid == 0:
                _child(index, worker)
            live[pid] = index
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        return pid

    # Installed before forking so that no early signal finds the parent unprepared
    # (SIGUSR1's default action would kill it); each worker resets them at once.
    for signum in FORWARDED:
        signal.signal(signum, forward)
    for index in range(count):
        spawn(index)
    try:
        after_fork()
    except BaseException:
        forward(signal.SIGTERM, None)  # no worker outlives a parent that failed
        raise
    result = 0
    while live:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        index = live.pop(pid, -1)
        if index < 0:
            continue  # not one of ours
        on_death(pid)
        code = _status(wait_status)
        if stopping or draining:
            if code:
                log.error("worker %d exited with status %d", pid, code)
                result = result or code
            continue
        what = f"worker {index} (pid {pid}) {_describe(wait_status)} unexpectedly"
        if not budget.allow(clock()):
            log.error(
                "%s; workers crash in a loop (%d restarts within %gs): stopping",
                what, budget.limit, budget.window,
            )  # fmt: skip
            result = code or 1
            forward(signal.SIGTERM, None)
            continue
        log.error("%s: replaced by pid %d", what, spawn(index))
    return result
