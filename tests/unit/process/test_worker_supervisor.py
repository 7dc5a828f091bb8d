"""The worker supervisor in a real parent process: replacement, crash-loop stop, drain, creds.

``run_workers`` installs signal handlers and forks, so each case runs it in a child
Python (``SCRIPT``) whose fake workers leave a file per start (``w<index>-<pid>``) and
whose ``on_death`` appends the reaped pid to a file; the test reads those files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from proxy.process.workers import Credentials, RestartBudget
from tests.support import netns as nt

SCRIPT = """
import os, signal, sys, time
from pathlib import Path
from proxy.process.workers import run_workers

out, mode = Path(sys.argv[1]), sys.argv[2]

def worker(index):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGUSR1, lambda *_: None)  # drain: keep serving, like the proxy
    (out / f"w{index}-{os.getpid()}").write_text("")
    if mode == "crash":
        return 3
    while not stop:
        time.sleep(0.02)
    return 0

def died(pid):
    with (out / "dead").open("a") as f:
        f.write(f"{pid}\\n")

sys.exit(run_workers(2, worker, lambda: None, on_death=died))
"""


def _start(tmp: Path, mode: str) -> subprocess.Popen[bytes]:
    with (tmp / "stderr").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(tmp), mode], env=nt.python_env(), stderr=err
        )


def _starts(tmp: Path) -> dict[int, list[int]]:
    """index → pids of every worker started with that index, in start order."""
    out: dict[int, list[int]] = {}
    files = sorted(tmp.glob("w*-*"), key=lambda p: p.stat().st_mtime_ns)
    for path in files:
        index, pid = path.name[1:].split("-")
        out.setdefault(int(index), []).append(int(pid))
    return out


def _dead(tmp: Path) -> list[int]:
    path = tmp / "dead"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _wait(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_killed_worker_is_replaced_and_sigterm_still_exits_0(tmp_path: Path) -> None:
    proc = _start(tmp_path, "serve")
    try:
        _wait(lambda: len(_starts(tmp_path)) == 2, "two workers")
        victim = _starts(tmp_path)[1][0]
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: len(_starts(tmp_path)[1]) == 2, "a replacement for worker 1")
        assert _dead(tmp_path) == [victim]
        replacement = _starts(tmp_path)[1][1]
        assert replacement != victim and _alive(replacement)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    starts = _starts(tmp_path)
    assert [len(starts[0]), len(starts[1])] == [1, 2]  # SIGTERM restarted nothing
    survivors = [starts[0][0], starts[1][1]]
    assert sorted(_dead(tmp_path)) == sorted([victim, *survivors])
    assert not any(_alive(pid) for pid in survivors)
    log = (tmp_path / "stderr").read_text()
    assert (
        f"worker 1 (pid {victim}) killed by SIGKILL unexpectedly: replaced by pid {replacement}"
        in log
    )


def test_workers_crashing_in_a_loop_stop_the_parent_non_zero(tmp_path: Path) -> None:
    proc = _start(tmp_path, "crash")
    try:
        assert proc.wait(10) == 3  # the crashing workers' status
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    # 2 workers + 2 restarts; the third death stops the last one (maybe before it began)
    assert len(_dead(tmp_path)) == 4
    assert 3 <= sum(len(pids) for pids in _starts(tmp_path).values()) <= 4
    log = (tmp_path / "stderr").read_text()
    assert "workers crash in a loop (2 restarts within 10s): stopping" in log


def test_after_a_drain_a_dead_worker_is_not_replaced(tmp_path: Path) -> None:
    proc = _start(tmp_path, "serve")
    try:
        _wait(lambda: len(_starts(tmp_path)) == 2, "two workers")
        proc.send_signal(signal.SIGUSR1)  # what POST /drain asks of the parent
        time.sleep(0.2)
        victim = _starts(tmp_path)[0][0]
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: _dead(tmp_path) == [victim], "the parent to reap it")
        time.sleep(0.3)
        assert [len(pids) for pids in _starts(tmp_path).values()] == [1, 1]
        assert proc.poll() is None  # the other worker still serves what it has
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 128 + signal.SIGKILL  # the killed worker's status
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.mark.parametrize(
    ("times", "allowed"),
    [
        ([0.0, 1.0], [True, True]),
        ([0.0, 1.0, 2.0], [True, True, False]),
        ([0.0, 1.0, 10.0], [True, True, True]),  # the first left the window
        ([0.0, 9.9, 10.0, 10.1], [True, True, True, False]),
        ([0.0, 1.0, 2.0, 11.5], [True, True, False, True]),  # a refusal is not counted
    ],
)
def test_restart_budget_allows_limit_per_window(times: list[float], allowed: list[bool]) -> None:
    budget = RestartBudget(2, 10.0)
    assert [budget.allow(t) for t in times] == allowed


def test_restart_budget_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="limit -1"):
        RestartBudget(-1)
    with pytest.raises(ValueError, match="window 0"):
        RestartBudget(1, 0)


HOLD = """
import os, socket, sys
from proxy.process.workers import Credentials

def listener(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", port))
    s.listen()
    return s

first = listener(0)  # a worker's socket, made as the starting user (root)
port = first.getsockname()[1]
starting = Credentials.current()
starting.hold_as(1337, 1337)
print("held", os.getresuid(), os.getresgid(), flush=True)
for restore in (False, True):
    pid = os.fork()
    if pid == 0:
        if restore:
            starting.restore()
        try:
            listener(port)
            print("restore" if restore else "plain", "bound", os.getresuid(), flush=True)
        except OSError as e:
            print("restore" if restore else "plain", "errno", e.errno, flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
"""


@pytest.mark.skipif(not nt.is_root(), reason="needs root")
def test_held_parent_forks_children_that_bind_like_the_first_workers() -> None:
    out = subprocess.run(
        [sys.executable, "-c", HOLD], env=nt.python_env(), capture_output=True, text=True,
        timeout=30, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert out == [
        "held (1337, 1337, 0) (1337, 1337, 0)",
        "plain errno 98",  # SO_REUSEPORT refuses another owner: EADDRINUSE
        "restore bound (0, 0, 0)",
    ]


def test_credentials_are_left_alone_without_a_user_to_switch_to() -> None:
    before = Credentials.current()
    before.hold_as(None, None)
    before.restore()
    assert Credentials.current() == before
