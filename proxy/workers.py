"""``--workers N``: N forked processes, each with its own SO_REUSEPORT listeners.

The parent forks before any event loop exists, then only supervises: it forwards
SIGTERM/SIGINT to every worker and waits for all of them; its exit status is the
first non-zero worker status (0 when every worker drained cleanly). No respawn yet.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("proxy.workers")


def _status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def run_workers(count: int, worker: Callable[[int], int], after_fork: Callable[[], None]) -> int:
    """Fork ``count`` workers running ``worker(index)``; ``after_fork`` runs in the parent."""
    children: list[int] = []
    forwarded = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)  # USR1: drain (admin)

    def forward(signum: int, _: FrameType | None) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    # Installed before forking so that no early signal finds the parent unprepared
    # (SIGUSR1's default action would kill it); each worker resets them at once.
    for signum in forwarded:
        signal.signal(signum, forward)
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            for signum in forwarded:
                signal.signal(signum, signal.SIG_DFL)
            code = 1
            try:
                code = worker(index)
            except BaseException:  # the worker is a process: report, then exit non-zero
                log.exception("worker %d failed", index)
            finally:
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(OSError, ValueError):
                        stream.flush()  # os._exit skips Python's buffers: access log lines
                os._exit(code)  # never fall back into the parent's code path
        children.append(pid)
    after_fork()
    result = 0
    for pid in children:
        while True:
            try:
                _, wait_status = os.waitpid(pid, 0)
                break
            except ChildProcessError:
                wait_status = 0
                break
            except InterruptedError:
                continue
        code = _status(wait_status)
        if code:
            log.error("worker %d exited with status %d", pid, code)
            result = result or code
    return result
