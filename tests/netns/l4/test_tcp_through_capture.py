"""The L4 proxy end to end, through the interceptor's real rules in a pod namespace.

One pod (rules + ``python -m proxy run`` as uid 1337) and one service namespace per
module; each test asserts on what crossed the wire and on the proxy's /metrics.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import netns as nt
from tests.support import nsock
from tests.support import sidecar as capture

pytestmark = pytest.mark.netns

DETECT = 0.3  # the proxy's --protocol-detect-timeout here: long enough to tell apart
MiB = 1 << 20


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[nt.Link, capture.Proxy]]:
    tmp = tmp_path_factory.mktemp("pod")
    args = ("--connect-timeout", "1s", "--protocol-detect-timeout", f"{int(DETECT * 1000)}ms")
    with capture.mesh("pl", tmp, *args) as (link, proxy):
        yield link, proxy
        assert proxy.proc.poll() is None, proxy.log()


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def big_exchange(client_ns: str, host: str, port: int, size: int) -> None:
    """Send ``size`` bytes, FIN, then receive the server's digest and ``size`` bytes."""
    sent = nsock.pattern(1, size)
    s = nsock.connect(client_ns, host, port, timeout=60)
    try:
        s.sendall(sent)
        s.shutdown(socket.SHUT_WR)  # half-close: the reply must still come back
        got = nsock.recv_all(s)
    finally:
        s.close()
    assert got[:32] == hashlib.sha256(sent).digest(), "server did not get our bytes intact"
    body = got[32:]
    assert len(body) == size
    assert hashlib.sha256(body).digest() == hashlib.sha256(nsock.pattern(2, size)).digest()


@pytest.mark.slow
def test_64mib_each_way_outbound_with_half_close(pod: tuple[nt.Link, capture.Proxy]) -> None:
    link, proxy = pod
    before = proxy.total("istio_tcp_received_bytes_total", reporter="source")
    with nsock.serving(link.b.name, link.b4, 0, nsock.digest_then_reply(64 * MiB, 2)) as srv:
        big_exchange(link.a.name, link.b4, srv.port, 64 * MiB)
        assert srv.peers[0][0] == link.a4  # really went out of the pod, from the pod IP
    assert wait_for(
        lambda: (
            proxy.total("istio_tcp_received_bytes_total", reporter="source") - before == 64 * MiB
        )
    )


@pytest.mark.slow
def test_64mib_each_way_inbound_with_half_close(pod: tuple[nt.Link, capture.Proxy]) -> None:
    link, _ = pod
    with nsock.serving(link.a.name, "::", 0, nsock.digest_then_reply(64 * MiB, 2)) as app:
        big_exchange(link.b.name, link.a4, app.port, 64 * MiB)
        assert app.peers[0][0] == "::ffff:127.0.0.6"  # forwarded by the proxy, as expected


def test_200_concurrent_connections_arrive_intact(pod: tuple[nt.Link, capture.Proxy]) -> None:
    link, _ = pod
    results: dict[int, bool] = {}

    def one(i: int) -> None:
        payload = nsock.pattern(1000 + i, 20_000 + i)
        s = nsock.connect(link.a.name, link.b4, srv.port, timeout=30)
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            results[i] = nsock.recv_all(s) == payload
        finally:
            s.close()

    with nsock.serving(link.b.name, link.b4, 0, nsock.echo) as srv:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert len(results) == 200
    assert all(results.values()), [i for i, ok in results.items() if not ok]


@pytest.mark.parametrize("family", [4, 6])
def test_original_destination_several_ports_and_peers(
    pod: tuple[nt.Link, capture.Proxy], family: int
) -> None:
    link, proxy = pod
    svc_host = link.b4 if family == 4 else link.b6
    pod_ip = str(ipaddress.ip_address(link.a4 if family == 4 else link.a6))
    with (
        nsock.serving(link.b.name, "::", 0, nsock.whoami) as s1,
        nsock.serving(link.b.name, "::", 0, nsock.whoami) as s2,
    ):
        for port in (s1.port, s2.port, s1.port):
            conn = nsock.connect(link.a.name, svc_host, port)
            reply = conn.recv(200).decode().split()
            conn.close()
            assert reply[1] == str(port)
            assert reply[2].removeprefix("::ffff:") == pod_ip
    lines = proxy.access_log(at_least=3)
    dsts = {e["original_dst"] for e in lines if e["direction"] == "outbound"}
    canonical = str(ipaddress.ip_address(svc_host))
    host = f"[{canonical}]" if family == 6 else canonical  # as L7 lines write it
    assert {f"{host}:{s1.port}", f"{host}:{s2.port}"} <= dsts


@pytest.mark.parametrize("family", [4, 6])
def test_inbound_reaches_app_from_passthrough_source(
    pod: tuple[nt.Link, capture.Proxy], family: int
) -> None:
    link, _ = pod
    pod_ip = link.a4 if family == 4 else "fd77::2"
    with nsock.serving(link.a.name, "::", 0, nsock.whoami) as app:
        conn = nsock.connect(link.b.name, pod_ip, app.port)
        local, port, peer = conn.recv(200).decode().split()
        conn.close()
    assert (local.removeprefix("::ffff:"), int(port)) == (pod_ip, app.port)
    assert peer == ("::ffff:127.0.0.6" if family == 4 else "::6")


@pytest.mark.parametrize("host", ["127.0.0.1", "10.77.0.2"])
def test_direct_dial_to_capture_port_is_refused_and_counted(
    pod: tuple[nt.Link, capture.Proxy], host: str
) -> None:
    link, proxy = pod
    before = proxy.total("mesh_loop_guard_refusals_total", direction="outbound")
    t0 = time.monotonic()
    data = b"not closed"
    try:  # the reset may land during connect(), sendall() or recv(): all mean "closed"
        with nsock.connect(link.a.name, host, 15001) as conn:
            conn.sendall(b"hello")
            data = conn.recv(100)
    except ConnectionResetError:
        data = b""
    assert data == b"" and time.monotonic() - t0 < 1.0
    assert wait_for(
        lambda: proxy.total("mesh_loop_guard_refusals_total", direction="outbound") == before + 1
    )
    with nsock.serving(link.b.name, link.b4, 0, nsock.whoami) as srv:  # still serving
        conn = nsock.connect(link.a.name, link.b4, srv.port)
        assert conn.recv(200).split()[1] == str(srv.port).encode()
        conn.close()


def _banner_delay(link: nt.Link, port: int) -> float:
    with nsock.serving(link.b.name, link.b4, port, nsock.banner(b"220 hello\r\n")) as srv:
        t0 = time.monotonic()
        conn = nsock.connect(link.a.name, link.b4, srv.port)
        assert conn.recv(100) == b"220 hello\r\n"
        elapsed = time.monotonic() - t0
        conn.sendall(b"HELO x\r\n")
        assert nsock.recv_all(conn) == b"got HELO x\r\n"
        conn.close()
    return elapsed


def test_server_speaks_first_waits_only_the_detect_timeout(
    pod: tuple[nt.Link, capture.Proxy],
) -> None:
    link, _ = pod
    elapsed = _banner_delay(link, 0)
    assert DETECT <= elapsed < DETECT + 0.5


def test_declared_opaque_port_is_not_delayed(pod: tuple[nt.Link, capture.Proxy]) -> None:
    link, _ = pod
    assert _banner_delay(link, 5432) < DETECT * 0.8


def test_upstream_refused_resets_client_promptly(pod: tuple[nt.Link, capture.Proxy]) -> None:
    link, proxy = pod
    before = proxy.total("istio_tcp_connections_closed_total", response_flags="UF")
    refused = proxy.total("mesh_upstream_connect_failures_total", reason="refused")
    conn = nsock.connect(link.a.name, link.b4, 9)  # nothing listens on discard
    t0 = time.monotonic()
    with pytest.raises(ConnectionResetError):
        conn.sendall(b"x")
        conn.recv(10)
        conn.recv(10)
    conn.close()
    assert time.monotonic() - t0 < DETECT + 1.0
    assert wait_for(
        lambda: proxy.total("istio_tcp_connections_closed_total", response_flags="UF") == before + 1
    )
    assert proxy.total("mesh_upstream_connect_failures_total", reason="refused") == refused + 1


def test_upstream_unreachable_times_out_and_resets(pod: tuple[nt.Link, capture.Proxy]) -> None:
    link, proxy = pod
    before = proxy.total("mesh_upstream_connect_failures_total", reason="timeout")
    conn = nsock.connect(link.a.name, "10.77.9.9", 80, timeout=10)  # dropped by svc: no route
    conn.sendall(b"x")
    t0 = time.monotonic()
    with pytest.raises(ConnectionResetError):
        conn.recv(10)
    conn.close()
    assert 0.5 < time.monotonic() - t0 < 3.0  # the 1 s connect timeout, not a hang
    assert wait_for(
        lambda: proxy.total("mesh_upstream_connect_failures_total", reason="timeout") == before + 1
    )


def test_upstream_reset_mid_stream_reaches_client(pod: tuple[nt.Link, capture.Proxy]) -> None:
    link, proxy = pod
    before = proxy.total("istio_tcp_connections_closed_total", response_flags="UR")

    def reset_after_data(conn: socket.socket, _: tuple[str, int]) -> None:
        conn.recv(100)
        conn.sendall(b"partial")
        time.sleep(0.2)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")

    with nsock.serving(link.b.name, link.b4, 0, reset_after_data) as srv:
        conn = nsock.connect(link.a.name, link.b4, srv.port)
        conn.sendall(b"go")
        got = b""
        t0 = time.monotonic()
        with pytest.raises(ConnectionResetError):
            while True:
                chunk = conn.recv(100)
                if not chunk:
                    break
                got += chunk
        conn.close()
    assert got == b"partial" and time.monotonic() - t0 < 2.0
    assert wait_for(
        lambda: proxy.total("istio_tcp_connections_closed_total", response_flags="UR") == before + 1
    )


def test_tcp_metrics_match_what_was_sent(pod: tuple[nt.Link, capture.Proxy]) -> None:
    link, proxy = pod
    labels = {
        "reporter": "source",
        "destination_service_name": "PassthroughCluster",
        "request_protocol": "tcp",
        "response_flags": "-",
    }
    names = (
        "istio_tcp_received_bytes_total",
        "istio_tcp_sent_bytes_total",
        "istio_tcp_connections_opened_total",
        "istio_tcp_connections_closed_total",
    )
    opened_labels = {k: v for k, v in labels.items() if k != "response_flags"}

    def snapshot() -> list[float]:
        return [proxy.total(n, **(opened_labels if "opened" in n else labels)) for n in names]

    before = snapshot()
    with nsock.serving(link.b.name, link.b4, 0, nsock.digest_then_reply(5000, 3)) as srv:
        for _ in range(3):
            s = nsock.connect(link.a.name, link.b4, srv.port)
            s.sendall(b"a" * 1000)
            s.shutdown(socket.SHUT_WR)
            assert len(nsock.recv_all(s)) == 5032
            s.close()
    expected = [3000, 3 * 5032, 3, 3]
    assert wait_for(lambda: [a - b for a, b in zip(snapshot(), before, strict=True)] == expected)


def test_admin_is_loopback_only_and_answers(pod: tuple[nt.Link, capture.Proxy]) -> None:
    link, _ = pod
    status, body = nsock.http_get(link.a.name, "127.0.0.1", 15000, "/config_dump")
    assert status == 200 and json.loads(body)["options"]["outbound_port"] == 15001
    with pytest.raises(OSError):
        nsock.http_get(link.b.name, link.a4, 15000, "/config_dump")
    assert nsock.http_get(link.a.name, "127.0.0.1", 15020, "/healthz/live")[0] == 200


def test_proxy_runs_as_uid_and_gid_1337(pod: tuple[nt.Link, capture.Proxy]) -> None:
    _, proxy = pod
    status = Path(f"/proc/{proxy.proc.pid}/status").read_text().splitlines()
    ids = {line.split(":")[0]: line.split()[1:] for line in status if line[:4] in ("Uid:", "Gid:")}
    assert ids == {"Uid": ["1337"] * 4, "Gid": ["1337"] * 4}


def test_http_without_a_handler_is_relayed_byte_for_byte(
    pod: tuple[nt.Link, capture.Proxy],
) -> None:
    link, _ = pod
    request = b"GET /x HTTP/1.1\r\nHost: svc\r\n\r\n" + b"tail"
    with nsock.serving(link.b.name, link.b4, 0, nsock.echo) as srv:
        t0 = time.monotonic()
        with nsock.connect(link.a.name, link.b4, srv.port) as conn:
            conn.sendall(request)
            conn.shutdown(socket.SHUT_WR)
            assert nsock.recv_all(conn) == request
        assert time.monotonic() - t0 < DETECT  # decided on the request line, no waiting
