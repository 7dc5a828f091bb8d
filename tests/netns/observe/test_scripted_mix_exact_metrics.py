"""A scripted mix through the real sidecar: /metrics must hold exactly what was sent.

The pod (interceptor rules + ``python -m proxy run`` as uid 1337) calls five services
whose endpoints live on the service namespace's ``lo``: ``ok`` (200), ``fail`` (503, no
retry), ``flaky`` (503 on the first attempt, 200 on the retry: one retry per request
whatever the balancer picks), ``ejecting`` (503 from both endpoints; the first error
ejects one, the 50 % cap keeps the other) and ``db`` (tcp); plus opaque TCP to an
address no service claims. Every body has a known size, so counts, sums and
histogram counts per label set are exact, with one process and with ``--workers 2``
(where requests spread over the workers and the endpoint gauges are per worker).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support import netns as nt
from tests.support import nsock
from tests.support import sidecar as capture

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not nt.is_root(), reason="needs root")]
PORT, DB_PORT, OPAQUE_PORT = 8080, 7000, 7100
OK_BODY, FAIL_BODY = 100, 20  # response body sizes by status
POST_OK, PUT_FLAKY = 1000, 500  # request body sizes
DB_UP, DB_DOWN = 3000, 5000  # tcp bytes client → server, server → client
OPAQUE_UP, OPAQUE_DOWN = 700, 300
Labels = tuple[tuple[str, str], ...]
Behaviour = Callable[[int], int]  # x-mesh-attempt → status


def vip(n: int) -> str:
    return f"10.96.0.{n}"


def http_service(name: str, n: int, addresses: list[str], policy: dict[str, Any]) -> dict[str, Any]:
    endpoints = [{"address": a, "port": PORT, "labels": {"version": "v1"}} for a in addresses]
    return {
        "name": name, "port": PORT, "addresses": [vip(n)], "protocol": "http",
        "endpoints": endpoints, "policy": policy,
    }  # fmt: skip


NO_RETRY = {"retries": {"attempts": 0}, "outlier_detection": {"consecutive_errors": 0}}
CONFIG = {
    "mesh": {"outbound_policy": "allow_any"},
    "services": [
        http_service("ok", 1, ["10.77.1.1"], NO_RETRY),
        http_service("fail", 2, ["10.77.1.2"], NO_RETRY),
        http_service("flaky", 3, ["10.77.1.3", "10.77.1.4"], {
            "load_balancer": "round_robin",
            "retries": {"attempts": 2, "retry_on": ["503"],
                        "budget": {"ratio": 1, "min_per_second": 100}},
            "circuit_breaker": {"max_retries": 100},
            "outlier_detection": {"consecutive_errors": 0},
        }),
        http_service("ejecting", 4, ["10.77.1.5", "10.77.1.6"], {
            "load_balancer": "round_robin",
            "retries": {"attempts": 0},
            "outlier_detection": {
                "consecutive_errors": 1, "interval": "10s", "base_ejection_time": "60s",
                "max_ejection_time": "300s", "max_ejection_percent": 50,
            },
        }),
        {
            "name": "db", "port": DB_PORT, "addresses": [vip(5)], "protocol": "tcp",
            "endpoints": [{"address": "10.77.1.7", "port": DB_PORT, "labels": {"version": "v2"}}],
        },
    ],
}  # fmt: skip
BEHAVIOURS: dict[str, Behaviour] = {
    "10.77.1.1": lambda attempt: 200,
    "10.77.1.2": lambda attempt: 503,
    "10.77.1.3": lambda attempt: 503 if attempt == 1 else 200,
    "10.77.1.4": lambda attempt: 503 if attempt == 1 else 200,
    "10.77.1.5": lambda attempt: 503,
    "10.77.1.6": lambda attempt: 503,
}


def _read_head(conn: socket.socket, buf: bytearray) -> dict[str, str] | None:
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    buf[:] = rest
    out = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        out[name.strip().lower().decode()] = value.strip().decode()
    return out


def http_endpoint(behaviour: Behaviour) -> nsock.Handler:
    """One request per connection: read it whole, answer by attempt number."""

    def serve(conn: socket.socket, _: tuple[str, int]) -> None:
        buf = bytearray()
        headers = _read_head(conn, buf)
        if headers is None:
            return
        while len(buf) < int(headers.get("content-length", "0")):
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        status = behaviour(int(headers.get("x-mesh-attempt", "1")))
        body = b"o" * OK_BODY if status == 200 else b"f" * FAIL_BODY
        conn.sendall(
            b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (status, len(body), body)
        )

    return serve


def tcp_endpoint(down: int) -> nsock.Handler:
    """Read to the client's FIN, then send ``down`` bytes and close."""

    def serve(conn: socket.socket, _: tuple[str, int]) -> None:
        while conn.recv(65536):
            pass
        conn.sendall(b"d" * down)

    return serve


def request(ns: str, n: int, method: str = "GET", body: int = 0) -> tuple[int, int]:
    """(status, response body length) of one request to service ``n``'s VIP."""
    s = nsock.connect(ns, vip(n), PORT)
    try:
        head = f"{method} /x HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n"
        if body:
            head += f"Content-Length: {body}\r\n"
        s.sendall(head.encode() + b"\r\n" + b"p" * body)
        raw = nsock.recv_all(s)
    finally:
        s.close()
    return int(raw.split(b" ")[1]), len(raw.partition(b"\r\n\r\n")[2])


def tcp_exchange(ns: str, host: str, port: int, up: int) -> int:
    s = nsock.connect(ns, host, port)
    try:
        s.sendall(b"u" * up)
        s.shutdown(socket.SHUT_WR)
        return len(nsock.recv_all(s))
    finally:
        s.close()


def wait(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def series(proxy: capture.Proxy, name: str) -> dict[Labels, float]:
    """Every non-zero sample of ``name`` by label set, as prometheus-client parses it."""
    return {ls: v for (n, ls), v in proxy.metrics().items() if n == name and v}


def access_log(proxy: capture.Proxy) -> list[dict[str, Any]]:
    return proxy.access_log()


def http_labels(service: str, code: int, version: str = "v1") -> Labels:
    return tuple(sorted({
        "reporter": "source", "source_workload": "front", "destination_service_name": service,
        "destination_version": version, "request_protocol": "http", "response_flags": "-",
        "response_code": str(code),
    }.items()))  # fmt: skip


def tcp_labels(service: str, version: str) -> Labels:
    return tuple(sorted({
        "reporter": "source", "source_workload": "front", "destination_service_name": service,
        "destination_version": version, "request_protocol": "tcp", "response_flags": "-",
    }.items()))  # fmt: skip


@contextmanager
def mix_mesh(tmp: Path, *args: str) -> Iterator[tuple[nt.Link, capture.Proxy]]:
    """capture.mesh with the mix's config, endpoints on the service side's lo, serving."""
    config = tmp / "mesh.yaml"
    config.write_text(json.dumps(CONFIG))
    config.chmod(0o644)
    with ExitStack() as stack:
        link, proxy = stack.enter_context(
            capture.mesh("pm", tmp, "--workload", "front", "--config", str(config), *args)
        )
        svc = link.b
        for address, behaviour in BEHAVIOURS.items():
            svc.run("ip", "addr", "add", f"{address}/32", "dev", "lo")
            stack.enter_context(nsock.serving(svc.name, address, PORT, http_endpoint(behaviour)))
        svc.run("ip", "addr", "add", "10.77.1.7/32", "dev", "lo")
        stack.enter_context(nsock.serving(svc.name, "10.77.1.7", DB_PORT, tcp_endpoint(DB_DOWN)))
        stack.enter_context(
            nsock.serving(svc.name, link.b4, OPAQUE_PORT, tcp_endpoint(OPAQUE_DOWN))
        )
        yield link, proxy


def wait_logged(proxy: capture.Proxy, service: str, count: int) -> None:
    """Until the access log holds ``count`` lines for ``service`` (lines are flushed
    after each loop iteration, and the test reads them to learn which worker served)."""
    wait(
        lambda: sum(e.get("upstream_cluster") == service for e in access_log(proxy)) == count,
        f"{count} access log lines of {service}",
    )


def ejecting_until_every_worker_saw_it(ns: str, proxy: capture.Proxy, workers: int) -> int:
    """Requests to ``ejecting`` until each worker served >= 2 (its first ejects, the rest
    overflow the cap); the kernel spreads connections, so the number is not fixed."""
    sent = 0
    while True:
        assert request(ns, 4) == (503, FAIL_BODY)
        sent += 1
        wait_logged(proxy, "ejecting", sent)
        per_worker: dict[int, int] = {}
        for e in access_log(proxy):
            if e.get("upstream_cluster") == "ejecting":
                per_worker[e["worker"]] = per_worker.get(e["worker"], 0) + 1
        if len(per_worker) == workers and min(per_worker.values()) >= 2:
            return sent
        assert sent < 40, f"connections never reached all {workers} workers: {per_worker}"


def send_mix(link: nt.Link, proxy: capture.Proxy, workers: int) -> int:
    """The whole mix; returns how many requests went to ``ejecting``."""
    pod = link.a.name
    assert [request(pod, 1) for _ in range(4)] == [(200, OK_BODY)] * 4
    assert [request(pod, 1, "POST", POST_OK) for _ in range(3)] == [(200, OK_BODY)] * 3
    assert [request(pod, 2) for _ in range(3)] == [(503, FAIL_BODY)] * 3
    assert [request(pod, 3) for _ in range(2)] == [(200, OK_BODY)] * 2
    # PUT: idempotent, so retried on 503 with its body replayed (a POST would not be)
    assert [request(pod, 3, "PUT", PUT_FLAKY) for _ in range(2)] == [(200, OK_BODY)] * 2
    assert [tcp_exchange(pod, vip(5), DB_PORT, DB_UP) for _ in range(3)] == [DB_DOWN] * 3
    opaque = [tcp_exchange(pod, link.b4, OPAQUE_PORT, OPAQUE_UP) for _ in range(2)]
    assert opaque == [OPAQUE_DOWN] * 2
    return ejecting_until_every_worker_saw_it(pod, proxy, workers)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_scripted_mix_gives_exact_metrics(tmp_path: Path, workers: int, codec: str) -> None:
    with mix_mesh(tmp_path, "--workers", str(workers), "--http-codec", codec) as (link, proxy):
        ejecting = send_mix(link, proxy, workers)
        closed = "istio_tcp_connections_closed_total"
        wait(lambda: proxy.total(closed) >= 5, "5 closed tcp connections")
        # ejections and endpoint gauges are sampled once a second per worker
        eject = "mesh_outlier_ejections_total"
        wait(lambda: proxy.total(eject) >= workers, f"{workers} ejections")
        wait(lambda: proxy.total("mesh_upstream_endpoints", health="ejected") >= workers,
             "the ejected endpoint in every worker's gauge")  # fmt: skip
        time.sleep(1.2)  # one more sampling round: nothing more may arrive
        got = {
            name: series(proxy, name)
            for name in (
                "istio_requests_total", "istio_request_duration_milliseconds_count",
                "istio_request_bytes_sum", "istio_request_bytes_count",
                "istio_response_bytes_sum", "mesh_upstream_retries_total", eject,
                "mesh_upstream_endpoints", "istio_tcp_connections_opened_total", closed,
                "istio_tcp_received_bytes_total", "istio_tcp_sent_bytes_total",
                "mesh_protocol_detect_total",
            )
        }  # fmt: skip
        log = access_log(proxy)
    ok, fail, flaky = http_labels("ok", 200), http_labels("fail", 503), http_labels("flaky", 200)
    shed = http_labels("ejecting", 503)
    requests = {ok: 7.0, fail: 3.0, flaky: 4.0, shed: float(ejecting)}
    assert got["istio_requests_total"] == requests
    assert got["istio_request_duration_milliseconds_count"] == requests
    assert got["istio_request_bytes_count"] == requests
    assert got["istio_request_bytes_sum"] == {ok: 3.0 * POST_OK, flaky: 2.0 * PUT_FLAKY}
    assert got["istio_response_bytes_sum"] == {
        ok: 7.0 * OK_BODY, fail: 3.0 * FAIL_BODY, flaky: 4.0 * OK_BODY,
        shed: ejecting * FAIL_BODY,
    }  # fmt: skip
    assert got["mesh_upstream_retries_total"] == {(("service", "flaky"),): 4.0}
    # each worker ejected one of the two endpoints once; the cap kept the other
    assert got[eject] == {(("service", "ejecting"),): float(workers)}
    healthy = {"ok": 1, "fail": 1, "flaky": 2, "ejecting": 1, "db": 1}
    gauges = {
        (("health", "healthy"), ("service", s)): float(n * workers) for s, n in healthy.items()
    }
    gauges[(("health", "ejected"), ("service", "ejecting"))] = float(workers)
    assert got["mesh_upstream_endpoints"] == gauges
    db, opaque = tcp_labels("db", "v2"), tcp_labels("PassthroughCluster", "unknown")
    assert got["istio_tcp_connections_opened_total"] == {db: 3.0, opaque: 2.0}
    assert got[closed] == {db: 3.0, opaque: 2.0}
    assert got["istio_tcp_received_bytes_total"] == {db: 3.0 * DB_UP, opaque: 2.0 * OPAQUE_UP}
    assert got["istio_tcp_sent_bytes_total"] == {db: 3.0 * DB_DOWN, opaque: 2.0 * OPAQUE_DOWN}
    http_conns = 7 + 3 + 4 + ejecting  # to services declared http: not sniffed
    assert got["mesh_protocol_detect_total"] == {
        (("direction", "outbound"), ("result", "declared")): float(http_conns) + 3.0,  # + db
        (("direction", "outbound"), ("result", "opaque")): 2.0,
    }
    attempts = sorted(e["attempts"] for e in log if e.get("upstream_cluster") == "flaky")
    assert attempts == [2, 2, 2, 2]
    assert len({e["worker"] for e in log}) == workers
