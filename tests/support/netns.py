"""Real network namespaces for integration tests.

Every namespace is named ``<prefix><pid>x<n>`` so that parallel runs and helpers never
collide, and is removed at teardown together with every process still inside it,
even when the test failed. Traffic only ever goes to loopback and to addresses on the
veth links created here (10.77.0.0/24 and fd77::/64 by default), which exist nowhere
but inside these namespaces.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_counter = itertools.count(1)
RESERVED_PORTS_RECORDS = "/run/mesh-interceptor"  # interceptor.sysctl.RECORD_DIR


def is_root() -> bool:
    return os.geteuid() == 0


def traversable_by_all(path: Path) -> bool:
    """True when a non-root uid (1337) can reach ``path`` (every ancestor o+x)."""
    for p in [path, *path.parents]:
        try:
            if not os.stat(p).st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child Python that must import *this* checkout's code.

    The child may drop to uid 1337, so the source tree is put on PYTHONPATH only when
    that uid can read it; otherwise the copy installed in the venv by scripts/test is
    used (the venv lives under /opt, readable by everyone).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    if traversable_by_all(REPO):
        env["PYTHONPATH"] = str(REPO)
    else:
        env.pop("PYTHONPATH", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


PYTHON = sys.executable


@dataclass
class Netns:
    """One network namespace; ``run``/``popen`` execute commands inside it."""

    name: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def argv(self, args: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def run(
        self,
        *args: str,
        check: bool = True,
        input: bytes | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(args),
            check=check,
            input=input.decode() if input is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )

    def popen(self, *args: str, **kw: object) -> subprocess.Popen[bytes]:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p: subprocess.Popen[bytes] = subprocess.Popen(self.argv(args), **kw)  # type: ignore[call-overload]
        self.procs.append(p)
        return p

    def python(self, *args: str, **kw: object) -> subprocess.Popen[bytes]:
        """Start this checkout's Python (``-m module`` or a script) inside the namespace."""
        kw.setdefault("env", python_env())
        kw.setdefault("cwd", "/")
        return self.popen(PYTHON, *args, **kw)

    def pids(self) -> list[int]:
        out = subprocess.run(
            ["ip", "netns", "pids", self.name], capture_output=True, text=True, check=False
        ).stdout
        return [int(x) for x in out.split()]

    def destroy(self) -> None:
        # SIGTERM first: a proxy's parent removes its temporary directories on the
        # way out, which SIGKILL would leave in /tmp. What does not stop is killed.
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        deadline = time.monotonic() + 3
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
            for stream in (p.stdout, p.stderr, p.stdin):
                if stream is not None:
                    stream.close()
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._forget_reserved_ports_record()
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)

    def _forget_reserved_ports_record(self) -> None:
        """``mesh-interceptor install`` notes in /run what it added to the namespace's
        reserved ports, keyed by the namespace's inode; the namespace dies here."""
        with contextlib.suppress(OSError):
            ino = os.stat(f"/run/netns/{self.name}").st_ino
            os.unlink(f"{RESERVED_PORTS_RECORDS}/reserved-ports-netns-{ino}")


def new_name(prefix: str) -> str:
    return f"{prefix}{os.getpid()}x{next(_counter)}"


# Set by tests/conftest.py around each test: None while namespaces may be made, else
# the id of the test that may not make them (it is not under tests/netns/).
_forbidden_for: str | None = None


@contextlib.contextmanager
def namespaces_allowed(allowed: bool, who: str) -> Iterator[None]:
    global _forbidden_for
    before, _forbidden_for = _forbidden_for, (None if allowed else who)
    try:
        yield
    finally:
        _forbidden_for = before


@contextlib.contextmanager
def netns(prefix: str = "mt") -> Iterator[Netns]:
    if _forbidden_for is not None:
        raise RuntimeError(f"{_forbidden_for} creates a network namespace: move it to tests/netns/")
    ns = Netns(new_name(prefix))
    subprocess.run(["ip", "netns", "add", ns.name], check=True)
    try:
        ns.run("ip", "link", "set", "lo", "up")
        yield ns
    finally:
        ns.destroy()


@dataclass(frozen=True)
class Link:
    """A veth pair between two namespaces, with the addresses given to each end."""

    a: Netns
    b: Netns
    a4: str
    b4: str
    a6: str
    b6: str
    ifname: str


def connect(
    a: Netns,
    b: Netns,
    *,
    subnet: int = 0,
    ifname: str | None = None,
    ipv6: bool = True,
) -> Link:
    """veth between ``a`` (10.77.<subnet>.2, fd77:<subnet>::2) and ``b`` (.1, ::1).

    ``a`` also gets default routes via ``b`` (the pod's route out), so any address
    is routable from ``a`` and interception can be tested with "outside" addresses
    that in fact end at ``b``.
    """
    ifname = ifname or f"eth{subnet}"
    subprocess.run(
        [
            "ip",
            "link",
            "add",
            ifname,
            "netns",
            a.name,
            "type",
            "veth",
            "peer",
            "name",
            ifname,
            "netns",
            b.name,
        ],
        check=True,
    )
    a4, b4 = f"10.77.{subnet}.2", f"10.77.{subnet}.1"
    a6, b6 = f"fd77:{subnet}::2", f"fd77:{subnet}::1"
    for ns, v4, v6 in ((a, a4, a6), (b, b4, b6)):
        ns.run("ip", "addr", "add", f"{v4}/24", "dev", ifname)
        if ipv6:
            ns.run("ip", "-6", "addr", "add", f"{v6}/64", "dev", ifname, "nodad")
        ns.run("ip", "link", "set", ifname, "up")
    if subnet == 0:
        a.run("ip", "route", "add", "default", "via", b4)
        if ipv6:
            a.run("ip", "-6", "route", "add", "default", "via", b6)
    return Link(a, b, a4, b4, a6, b6, ifname)


def wait_port(ns: Netns, port: int, host: str = "127.0.0.1", timeout: float = 10) -> None:
    """Block until something listens on host:port inside ``ns`` (polls ``ss``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = ns.run("ss", "-Htln", check=False).stdout
        for line in out.splitlines():
            cols = line.split()
            if len(cols) >= 4 and cols[3].rsplit(":", 1)[-1] == str(port):
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} in {ns.name}")


def leftover_namespaces(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    mine = f"{prefix}{os.getpid()}x"
    return [line.split()[0] for line in out.splitlines() if line.startswith(mine)]


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
