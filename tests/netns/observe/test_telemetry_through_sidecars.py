"""Telemetry through the real sidecar in namespaces: /metrics, access log, traces.

A pod (interceptor rules + ``python -m proxy run`` as uid 1337) calls an HTTP app in
a service namespace; the counts per label set in /metrics must be exact, with one
process and with ``--workers 2``. Then two pods, A → B, each with its own sidecar: the
spans both sidecars send to a collector on their loopback chain parent to child
under the trace id the app sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import netns as nt
from tests.support import nsock
from tests.support import sidecar as capture
from tests.support.http_server import HttpServer
from tests.support.loop_thread import serving
from tests.support.telemetry import check_zipkin_v2, posted_spans

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not nt.is_root(), reason="needs root")]
APP_PORT = 8080
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
APP_SPAN = "00f067aa0ba902b7"
FAIL = "x-test-status: 503"  # what makes the app answer 503


def _app(ns: str) -> HttpServer:
    """The HTTP app: 200, or the status a request's ``x-test-status`` asks for; every
    body 2 bytes, so response byte sums are exact."""
    return HttpServer("app", ns, "0.0.0.0", APP_PORT, reply="sized", sizes={200: 2, 503: 2})


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
    config = tmp_path / "mesh.yaml"
    config.write_text(SERVICE)
    args = ["--workers", str(workers), "--workload", "front", "--config", str(config)]
    args += ["--http-codec", codec]
    with (
        capture.mesh("po", tmp_path, *args) as (link, proxy),
        serving(_app(link.b.name)),
    ):
        statuses = [_request(link.a.name, VIP, "/ok") for _ in range(6)]
        statuses += [_request(link.a.name, VIP, "/fail", FAIL) for _ in range(2)]
        # dialled directly, with a Host no service claims: passthrough
        statuses += [_request(link.a.name, link.b4, "/fail", FAIL, authority="x") for _ in range(3)]
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
    # Every worker holds the service's one endpoint (livesum over the live workers). With
    # one worker, the 503s (two requests, each tried up to the retry limit) ejected it,
    # and the scrape samples the gauges of the worker it reaches, so they show it. With
    # two, SO_REUSEPORT decides which worker saw how many 503s: ejected or not per worker.
    healths = {dict(key)["health"]: value for key, value in endpoints.items()}
    assert {dict(key)["service"] for key in endpoints} == {"app"}
    assert sum(healths.values()) == float(workers)
    assert set(healths) <= {"healthy", "ejected"}
    if workers == 1:
        assert healths == {"ejected": 1.0}
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


def _pod(ns: nt.Netns, tmp: Path, name: str, codec: str) -> capture.Proxy:
    """A pod whose sidecar posts every span to a collector on its own loopback."""
    config = tmp / f"{name}.yaml"
    config.write_text(
        "mesh:\n  tracing: {zipkin_url: 'http://127.0.0.1:9411/api/v2/spans', sample_rate: 0}\n"
    )
    capture.install_capture(ns)
    pod_tmp = tmp / name
    pod_tmp.mkdir()
    args = ("--config", str(config), "--workload", name, "--http-codec", codec)
    return capture.start_proxy(ns, pod_tmp, *args)


def _collector(ns: nt.Netns) -> HttpServer:
    return HttpServer(f"zipkin-{ns.name}", ns.name, "127.0.0.1", 9411, reply="collect")


def test_traces_chain_across_two_sidecars(tmp_path: Path, codec: str) -> None:
    with nt.netns("po") as pod_a, nt.netns("po") as pod_b:
        link = nt.connect(pod_a, pod_b)
        collector_a, collector_b, app = _collector(pod_a), _collector(pod_b), _app(pod_b.name)
        with serving(collector_a, collector_b, app):
            proxy_a = _pod(pod_a, tmp_path, "a", codec)
            proxy_b = _pod(pod_b, tmp_path, "b", codec)
            status = _request(pod_a.name, link.b4, "/ok", f"traceparent: 00-{TRACE}-{APP_SPAN}-01")
            assert status == 200
            _wait(lambda: bool(collector_a.requests and collector_b.requests), "spans from both")
        assert proxy_a.proc.poll() is None and proxy_b.proc.poll() is None
    (client,) = posted_spans(collector_a)
    (server,) = posted_spans(collector_b)
    for span in (client, server):
        check_zipkin_v2(span)
        assert span["traceId"] == TRACE
    assert (client["kind"], client["parentId"]) == ("CLIENT", APP_SPAN)
    assert (server["kind"], server["parentId"]) == ("SERVER", client["id"])
    assert client["localEndpoint"]["serviceName"] == "a"
    assert server["localEndpoint"]["serviceName"] == "b"
    # the app behind B sees B's span as its parent, under the app's trace id
    (seen,) = app.requests
    assert seen.header("traceparent") == f"00-{TRACE}-{server['id']}-01"
