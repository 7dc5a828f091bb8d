"""A pod whose ephemeral range covers the sidecar's ports (15000-15090 here).

Without a reservation, an app's outgoing connections are handed the sidecar's ports
and the proxy cannot start; made deterministic by taking every port of the range.
With the init container's reservation they never are, and the proxy always starts.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import nsock
from tests.support.kernel_rules import cli
from tests.support.netns import Netns, netns
from tests.support.sidecar import PROXY_UID

pytestmark = pytest.mark.netns
SYSCTL = "net.ipv4.ip_local_reserved_ports"
RANGE = (15000, 15090)
SIDECAR = {15000, 15001, 15006, 15020, 15021, 15090}
APP_PORT = 9000


def sysctl(ns: Netns, name: str, value: str | None = None) -> str:
    if value is not None:
        ns.run("sysctl", "-qw", f"{name}={value}")
    return ns.run("sysctl", "-n", name).stdout.strip()


@pytest.fixture
def pod() -> Iterator[Netns]:
    with netns("ir") as ns:
        sysctl(ns, "net.ipv4.ip_local_port_range", f"{RANGE[0]} {RANGE[1]}")
        yield ns


@contextlib.contextmanager
def app_connections(ns: Netns) -> Iterator[list[int]]:
    """The app's outgoing connections until the kernel has no ephemeral port left;
    yields their local ports. A listener that never accepts holds them in its backlog."""
    server = nsock.socket_in(ns.name)
    server.bind(("127.0.0.1", APP_PORT))
    server.listen(1024)
    conns: list[socket.socket] = []
    try:
        while len(conns) < 500:
            s = nsock.socket_in(ns.name)
            try:
                s.connect(("127.0.0.1", APP_PORT))
            except OSError as e:
                s.close()
                assert e.errno == errno.EADDRNOTAVAIL, e
                break
            conns.append(s)
        yield [s.getsockname()[1] for s in conns]
    finally:
        for s in conns:
            s.close()
        server.close()


def start_proxy(ns: Netns, tmp: Path) -> tuple[subprocess.Popen[bytes], Path]:
    err = tmp / "proxy.err"
    with err.open("wb") as e:
        proc = ns.python(
            "-m", "proxy", "run", "--uid", str(PROXY_UID), "--gid", str(PROXY_UID),
            stdout=e, stderr=e,
        )  # fmt: skip
    return proc, err


def test_without_the_reservation_an_app_connection_takes_a_sidecar_port(
    pod: Netns, tmp_path: Path
) -> None:
    assert sysctl(pod, SYSCTL) == ""
    with app_connections(pod) as ports:
        # The range is used up (the kernel may skip a port now and then): the
        # sidecar's capture and telemetry ports went to the app's connections.
        assert len(ports) >= RANGE[1] - RANGE[0] - 2 and {15001, 15020} <= set(ports)
        proc, err = start_proxy(pod, tmp_path)
        assert proc.wait(timeout=30) == 1
    text = err.read_text()
    assert "cannot listen on *:15001: Address already in use" in text
    assert SYSCTL in text and "(include 15001;" in text


def test_with_the_init_containers_reservation_the_sidecar_always_starts(
    pod: Netns, tmp_path: Path
) -> None:
    sysctl(pod, SYSCTL, "15050,30000")  # the user's own reservation
    rc, out, err = cli(pod, "install", "--backend", "legacy")
    assert rc == 0, err
    assert f"{SYSCTL}: 15050,30000 -> 15000-15001,15006,15020-15021,15050,15090,30000" in out
    with app_connections(pod) as ports:
        assert len(ports) == RANGE[1] - RANGE[0] + 1 - 7  # the range minus 7 reserved ports
        assert not SIDECAR & set(ports) and 15050 not in ports
        proc, err_path = start_proxy(pod, tmp_path)
        deadline = time.monotonic() + 20
        while "listening" not in err_path.read_text():
            assert proc.poll() is None, err_path.read_text()
            assert time.monotonic() < deadline, err_path.read_text()
            time.sleep(0.05)
    # The app's connections are gone: the probe has a local port again.
    assert nsock.http_get(pod.name, "127.0.0.1", 15020, "/healthz/ready")[0] == 200


def test_plan_dump_verify_and_remove_on_the_real_sysctl(pod: Netns) -> None:
    sysctl(pod, SYSCTL, "15050,30000")
    rc, out, _ = cli(pod, "plan")
    assert rc == 0 and "# after install: 15000-15001,15006,15020-15021,15050,15090,30000" in out
    assert sysctl(pod, SYSCTL) == "15050,30000"  # plan touched nothing
    rc, _, _ = cli(pod, "install", "--backend", "nft", "--inbound-port", "x")
    assert rc == 2 and sysctl(pod, SYSCTL) == "15050,30000"  # bad flags: nothing changed
    assert cli(pod, "install", "--backend", "nft")[0] == 0
    assert cli(pod, "verify", "--backend", "nft")[0] == 0
    rc, out, _ = cli(pod, "dump")
    assert f"# {SYSCTL}" in out and "\n  15000-15001,15006,15020-15021,15050,15090,30000\n" in out
    sysctl(pod, SYSCTL, "15000-15001,15006,15050")  # something rewrote it since
    rc, out, _ = cli(pod, "verify", "--backend", "nft")
    assert rc == 1 and f"{SYSCTL}: ports 15020-15021,15090 are not reserved" in out
    assert cli(pod, "install", "--backend", "nft")[0] == 0
    rc, out, _ = cli(pod, "remove", "--backend", "nft")
    assert rc == 0, out
    assert f"{SYSCTL}: 15000-15001,15006,15020-15021,15050,15090 -> 15050" in out
    # The ports install added went back; the user's 15050 stayed (30000 was dropped by
    # whoever rewrote the value above, not by us).
    assert sysctl(pod, SYSCTL) == "15050"
