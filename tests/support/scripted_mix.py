"""The scripted mix: one pod calling five services and opaque TCP, each byte counted.

The pod (interceptor rules + ``python -m proxy run`` as uid 1337) calls services whose
endpoints live on the service namespace's ``lo``: ``ok`` (200), ``fail`` (503, no
retry), ``flaky`` (503 on the first attempt, 200 on the retry: one retry per request
whatever the balancer picks), ``ejecting`` (503 from both endpoints; the first error
ejects one, the 50 % cap keeps the other) and ``db`` (tcp); plus opaque TCP to an
address no service claims. Every body has a known size, so a test can expect exact
counts, sums and histogram counts per label set; the readers here fetch them.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tests.support import netns as nt
from tests.support import nsock
from tests.support import sidecar as capture
from tests.support.http_server import HttpServer, Mode
from tests.support.loop_thread import serving

PORT, DB_PORT, OPAQUE_PORT = 8080, 7000, 7100
OK_BODY, FAIL_BODY = 100, 20  # response body sizes by status
POST_OK, PUT_FLAKY = 1000, 500  # request body sizes
DB_UP, DB_DOWN = 3000, 5000  # tcp bytes client → server, server → client
OPAQUE_UP, OPAQUE_DOWN = 700, 300
Labels = tuple[tuple[str, str], ...]


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
# Every endpoint's answers, by address: status by attempt (``flaky`` fails each
# request's first attempt, wherever the retry lands).
MODES: dict[str, Mode] = {
    "10.77.1.1": Mode(status=200),
    "10.77.1.2": Mode(status=503),
    "10.77.1.3": Mode(status=503, up_to_attempt=1),
    "10.77.1.4": Mode(status=503, up_to_attempt=1),
    "10.77.1.5": Mode(status=503),
    "10.77.1.6": Mode(status=503),
}
SIZES = {200: OK_BODY, 503: FAIL_BODY}  # response body size by status


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
        endpoints = [
            HttpServer(address, svc.name, address, PORT, mode, reply="sized", sizes=SIZES)
            for address, mode in MODES.items()
        ]
        for address in MODES:
            svc.run("ip", "addr", "add", f"{address}/32", "dev", "lo")
        stack.enter_context(serving(*endpoints))
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
