"""A sidecar started with ``ulimit -n 256`` under a connection flood.

The worker caps its client connections by its descriptor limit ((256 - 64) / 2 = 96):
connections past that are closed at once, unread, and counted, long before ``accept``
runs out of descriptors; the idle flood costs no CPU; a client connected before keeps
being served; once the flood is gone new clients are served again without a restart.
(``accept`` itself failing with EMFILE is proven on loopback, in
tests/unit/l4/test_listener_survives_running_out_of_descriptors.py: lowering a running
proxy's limit needs CAP_SYS_RESOURCE, which this sandbox's root lacks.)
"""

from __future__ import annotations

import json
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import flood, nsock
from tests.support import netns as nt
from tests.support import sidecar as capture
from tests.support.http_server import HttpServer
from tests.support.loop_thread import serving

pytestmark = pytest.mark.netns
PORT = 8080
SVC = "10.77.0.1"  # the service end of the pod's link (``nt.connect``)
NOFILE = 256
CAP = 96  # proxy.policy.overload.fd_connection_cap(256)
FLOOD = 400
WAVE = 100


def low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


@pytest.fixture(scope="module")
def pod(
    tmp_path_factory: pytest.TempPathFactory, codec: str
) -> Iterator[tuple[nt.Link, capture.Proxy]]:
    tmp = Path(tmp_path_factory.mktemp("nofile"))
    path = tmp / "mesh.json"
    service = {"name": "svc", "port": PORT, "addresses": [SVC], "protocol": "http"}
    service["endpoints"] = [{"address": SVC, "port": PORT}]
    path.write_text(json.dumps({"services": [service]}))
    path.chmod(0o644)
    args = ("--http-codec", codec, "--config", str(path))
    with capture.mesh("nf", tmp, *args, preexec=low_nofile) as (link, proxy):
        assert link.b4 == SVC
        with serving(HttpServer("svc", link.b.name, link.b4, PORT)):
            yield link, proxy
        assert proxy.proc.poll() is None, proxy.log()


def ask(s: socket.socket, path: str) -> int:
    """One keep-alive request on ``s``; the status (the body is read and dropped)."""
    s.settimeout(5)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: svc\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, "closed before a response"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    fields = (line.partition(b":") for line in head.split(b"\r\n")[1:])
    length = next(int(v) for k, _, v in fields if k.strip().lower() == b"content-length")
    while len(body) < length:
        body += s.recv(65536)
    return int(head.split(b" ")[1])


def served(link: nt.Link, path: str) -> int:
    s = nsock.connect(link.a.name, SVC, PORT)
    try:
        return ask(s, path)
    finally:
        s.close()


def flood_in_waves(link: nt.Link) -> list[socket.socket]:
    socks: list[socket.socket] = []
    while len(socks) < FLOOD:
        socks += flood.open_many(link.a.name, SVC, PORT, WAVE)
        time.sleep(0.05)  # each wave within the accept queue
    return socks


def test_the_descriptor_limit_caps_connections_and_recovery_is_automatic(
    pod: tuple[nt.Link, capture.Proxy],
) -> None:
    link, proxy = pod
    pid = proxy.proc.pid
    assert f"Max open files            {NOFILE}" in Path(f"/proc/{pid}/limits").read_text()
    keeper = nsock.connect(link.a.name, SVC, PORT)
    assert ask(keeper, "/before") == 200
    before = proxy.total("mesh_overload_rejections_total", reason="downstream_connections")
    socks = flood_in_waves(link)
    try:
        refused, kept = flood.sort_closed(socks)
        cpu = flood.cpu_seconds(pid)
        time.sleep(2)  # the flood just sits there
        spent = flood.cpu_seconds(pid) - cpu
        assert ask(keeper, "/during") == 200
        connections = proxy.total("mesh_downstream_connections")
        rejections = proxy.total("mesh_overload_rejections_total", reason="downstream_connections")
        fds = flood.open_fds(pid)
    finally:
        flood.close_all(socks)
    assert (len(kept), len(refused)) == (CAP - 1, FLOOD - CAP + 1)
    assert connections == CAP
    assert rejections - before == FLOOD - CAP + 1
    assert fds < NOFILE - 32  # the cap left the descriptors' reserve alone
    assert spent < 0.3, f"{spent:.2f}s of CPU in 2s with the flood idle"
    until_connections(proxy, 1)
    assert served(link, "/after") == 200
    keeper.close()


def until_connections(proxy: capture.Proxy, count: int) -> None:
    deadline = time.monotonic() + 10
    while proxy.total("mesh_downstream_connections") != count:
        assert time.monotonic() < deadline, proxy.total("mesh_downstream_connections")
        time.sleep(0.1)
