"""Telemetry through the real sidecar in namespaces: /metrics, access log, traces.

A pod (interceptor rules + ``python -m proxy run`` as uid 1337) calls an HTTP app in
a service namespace; the counts per label set in /metrics must be exact, with one
process and with ``--workers 2``. Then two pods, A → B, each with its own sidecar: the
spans both sidecars send to a collector on their loopback chain parent to child
under the trace id the app sent.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import netns as nt
from tests.support import nsock
from tests.support import sidecar as capture
from tests.support.telemetry import check_zipkin_v2

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not nt.is_root(), reason="needs root")]
APP_PORT = 8080
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
APP_SPAN = "00f067aa0ba902b7"


def _read_head(conn: socket.socket, buf: bytearray) -> bytes | None:
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    buf[:] = rest
    return head


def _headers(head: bytes) -> dict[str, str]:
    out = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        out.setdefault(name.strip().lower().decode(), value.strip().decode())
    return out


class App:
    """HTTP/1.1 app: /fail answers 503, anything else 200 "ok"; one request per connection
    (a pooled idle connection would hold the server's thread until its timeout)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, conn: socket.socket, _: tuple[str, int]) -> None:
        head = _read_head(conn, bytearray())
        if head is None:
            return
        with self.lock:
            self.seen.append(_headers(head))
        status = b"503 Unavailable" if head.split(b" ")[1] == b"/fail" else b"200 OK"
        conn.sendall(
            b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        )


class Collector:
    """Zipkin collector stand-in: keeps every span POSTed to it."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, conn: socket.socket, _: tuple[str, int]) -> None:
        buf = bytearray()
        head = _read_head(conn, buf)
        if head is None:
            return
        length = int(_headers(head)["content-length"])
        while len(buf) < length:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        with self.lock:
            self.spans += json.loads(bytes(buf[:length]))
        conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def _request(ns: str, host: str, path: str, *extra: str, authority: str = "app") -> int:
    s = nsock.connect(ns, host, APP_PORT)
    try:
        lines = [f"GET {path} HTTP/1.1", f"Host: {authority}", "Connection: close", *extra]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        raw = nsock.recv_all(s)
    finally:
        s.close()
    return int(raw.split(b" ")[1])


def _wait(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _labelled(proxy: capture.Proxy, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {ls: v for (n, ls), v in proxy.metrics().items() if n == name and v}


VIP = "10.77.100.1"
SERVICE = f"""
services:
  - name: app
    port: {APP_PORT}
    addresses: [{VIP}]
    protocol: http
    endpoints: [{{address: 10.77.0.1, port: {APP_PORT}, labels: {{version: v1}}}}]
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_exact_request_counts_per_label_set(tmp_path: Path, workers: int, codec: str) -> None:
    app = App()
    config = tmp_path / "mesh.yaml"
    config.write_text(SERVICE)
    args = ["--workers", str(workers), "--workload", "front", "--config", str(config)]
    args += ["--http-codec", codec]
    with (
        capture.mesh("po", tmp_path, *args) as (link, proxy),
        nsock.serving(link.b.name, "0.0.0.0", APP_PORT, app),
    ):
        statuses = [_request(link.a.name, VIP, "/ok") for _ in range(6)]
        statuses += [_request(link.a.name, VIP, "/fail") for _ in range(2)]
        # dialled directly, with a Host no service claims: passthrough
        statuses += [_request(link.a.name, link.b4, "/fail", authority="x") for _ in range(3)]
        assert statuses == [200] * 6 + [503] * 5
        _wait(lambda: proxy.total("istio_requests_total") >= 11, "11 requests in /metrics")
        _wait(lambda: proxy.total("mesh_upstream_endpoints") >= workers, "endpoint gauges")
        time.sleep(0.3)  # nothing more may arrive
        counts = _labelled(proxy, "istio_requests_total")
        sizes = _labelled(proxy, "istio_response_bytes_sum")
        endpoints = _labelled(proxy, "mesh_upstream_endpoints")
        detected = _labelled(proxy, "mesh_protocol_detect_total")
        lines = proxy.access_log()
    base = {
        "reporter": "source", "source_workload": "front", "destination_service_name": "app",
        "destination_version": "v1", "request_protocol": "http", "response_flags": "-",
    }  # fmt: skip
    passthrough = {
        "destination_service_name": "PassthroughCluster",
        "destination_version": "unknown",
    }
    ok = tuple(sorted({**base, "response_code": "200"}.items()))
    fail = tuple(sorted({**base, "response_code": "503"}.items()))
    other = tuple(sorted({**base, **passthrough, "response_code": "503"}.items()))
    assert counts == {ok: 6.0, fail: 2.0, other: 3.0}
    assert sizes == {ok: 12.0, fail: 4.0, other: 6.0}
    # every worker holds the service's one endpoint: livesum over the live workers
    assert endpoints == {(("health", "healthy"), ("service", "app")): float(workers)}
    # 8 to the service declared http (not sniffed), 3 sniffed on their way to passthrough
    assert detected == {
        (("direction", "outbound"), ("result", "declared")): 8.0,
        (("direction", "outbound"), ("result", "http")): 3.0,
    }
    http = [x for x in lines if x.get("method") == "GET"]
    assert sorted(x["status"] for x in http) == [200] * 6 + [503] * 5
    assert {x["upstream"] for x in http} == {f"{link.b4}:{APP_PORT}"}
    assert sorted(x["upstream_cluster"] for x in http) == ["PassthroughCluster"] * 3 + ["app"] * 8
    assert all(len(x["trace_id"]) == 32 and x["direction"] == "outbound" for x in http)


def _pod(
    ns: nt.Netns, tmp: Path, name: str, collector: Collector, codec: str
) -> tuple[capture.Proxy, nsock.Server]:
    config = tmp / f"{name}.yaml"
    config.write_text(
        "mesh:\n  tracing: {zipkin_url: 'http://127.0.0.1:9411/api/v2/spans', sample_rate: 0}\n"
    )
    capture.install_capture(ns)
    server = nsock.Server(ns.name, "127.0.0.1", 9411, collector)
    pod_tmp = tmp / name
    pod_tmp.mkdir()
    args = ("--config", str(config), "--workload", name, "--http-codec", codec)
    return capture.start_proxy(ns, pod_tmp, *args), server


def test_traces_chain_across_two_sidecars(tmp_path: Path, codec: str) -> None:
    app, collector_a, collector_b = App(), Collector(), Collector()
    with nt.netns("po") as pod_a, nt.netns("po") as pod_b:
        link = nt.connect(pod_a, pod_b)
        proxy_a, server_a = _pod(pod_a, tmp_path, "a", collector_a, codec)
        proxy_b, server_b = _pod(pod_b, tmp_path, "b", collector_b, codec)
        try:
            with nsock.serving(pod_b.name, "0.0.0.0", APP_PORT, app):
                status = _request(
                    pod_a.name, link.b4, "/ok", f"traceparent: 00-{TRACE}-{APP_SPAN}-01"
                )
                assert status == 200
                _wait(lambda: collector_a.spans and collector_b.spans, "spans from both")
        finally:
            server_a.close()
            server_b.close()
        assert proxy_a.proc.poll() is None and proxy_b.proc.poll() is None
    (client,) = collector_a.spans
    (server,) = collector_b.spans
    for span in (client, server):
        check_zipkin_v2(span)
        assert span["traceId"] == TRACE
    assert (client["kind"], client["parentId"]) == ("CLIENT", APP_SPAN)
    assert (server["kind"], server["parentId"]) == ("SERVER", client["id"])
    assert client["localEndpoint"]["serviceName"] == "a"
    assert server["localEndpoint"]["serviceName"] == "b"
    # the app behind B sees B's span as its parent, under the app's trace id
    (seen,) = app.seen
    assert seen["traceparent"] == f"00-{TRACE}-{server['id']}-01"
