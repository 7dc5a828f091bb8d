"""``accept`` failing with EMFILE: the capture listener refuses cleanly, does not spin,
and serves again once descriptors are free.

The worker's connection cap normally keeps ``accept`` away from the descriptor limit;
this is the case it cannot cover (descriptors used up by something else). The listener
runs uncapped in a child process with ``RLIMIT_NOFILE`` 64, on the proxy's own event
loop (uvloop: libuv accepts and closes the waiting connections with a descriptor it
keeps in reserve, so clients see a close, not a hang in the backlog).
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from proxy.process.loop import LOOP_NAME
from tests.support import flood
from tests.support.netns import REPO, python_env

NOFILE = 64
CLIENTS = 60


@pytest.fixture
def child() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.emfile_listener", str(NOFILE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
        env=python_env(),
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        port = int(proc.stdout.readline())
        yield proc, port
    finally:
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()


def echoes(s: socket.socket, data: bytes) -> bool:
    """True when ``s`` echoes ``data``; False when the proxy closed it."""
    try:
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            if not select.select([s], [], [], 5)[0]:
                raise TimeoutError("no echo and no close: the connection hangs")
            chunk = s.recv(65536)
            if not chunk:
                return False
            got += chunk
    except ConnectionError:
        return False
    assert got == data
    return True


@pytest.mark.skipif(LOOP_NAME != "uvloop", reason="asyncio's own loop pauses accept for 1 s")
def test_emfile_at_accept_refuses_cleanly_without_spinning_and_recovers(
    child: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = child
    clients: list[socket.socket] = []
    served: list[bool] = []
    try:
        for i in range(CLIENTS):  # one after the other: each kept one holds 3 descriptors
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            served.append(echoes(clients[-1], b"ping %d" % i))
        cpu = flood.cpu_seconds(proc.pid)
        time.sleep(2)  # every client idle; the listener is out of descriptors
        spent = flood.cpu_seconds(proc.pid) - cpu
        still = [echoes(c, b"again") for c, ok in zip(clients, served, strict=True) if ok]
    finally:
        flood.close_all(clients)
    assert 0 < served.count(True) < CLIENTS, served  # some fit, the rest were closed
    assert all(still)  # the ones it kept still work
    assert spent < 0.3, f"{spent:.2f}s of CPU in 2s: the accept loop spins on EMFILE"
    deadline = time.monotonic() + 10
    while True:  # descriptors are free again: a new client is served
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            if echoes(s, b"after"):
                break
        finally:
            s.close()
        assert time.monotonic() < deadline, "the listener did not recover"
        time.sleep(0.1)
    assert proc.poll() is None
    assert os.path.exists(f"/proc/{proc.pid}")
