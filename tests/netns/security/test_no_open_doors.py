"""No open doors, for each interceptor backend and both address families.

A pod (rules from ``mesh-interceptor install --backend B --ipv6 on``, the proxy as uid
1337) beside a peer namespace. The admin port answers on the pod's loopback only;
15020 is reachable and read-only; a connection straight to a capture port, from the
peer or from inside the pod, is relayed nowhere (a canary on the peer sees nothing)
and counted by the loop guard; and what the access log and the Zipkin spans record
carries no credential, cookie or body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support import netns as nt
from tests.support import nsock
from tests.support import sidecar as capture
from tests.support.http_server import HttpServer
from tests.support.kernel_rules import cli
from tests.support.loop_thread import serving
from tests.support.telemetry import posted_spans

pytestmark = pytest.mark.netns
CANARY = 9999
APP = 8080
SECRETS = ("SECRET-AUTH", "SECRET-COOKIE", "SECRET-PROXY", "SECRET-BODY")


@dataclass
class Pod:
    link: nt.Link
    proxy: capture.Proxy
    canary: nsock.Server
    collector: HttpServer
    app: HttpServer


@pytest.fixture(scope="module", params=["legacy", "nft"])
def pod(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pod]:
    tmp = tmp_path_factory.mktemp("doors")
    config = tmp / "mesh.yaml"
    config.write_text(
        "mesh:\n  tracing: {zipkin_url: 'http://127.0.0.1:9411/api/v2/spans', sample_rate: 1}\n"
    )
    config.chmod(0o644)
    with nt.netns("sd") as pod_ns, nt.netns("sd") as peer:
        link = nt.connect(pod_ns, peer)
        rc, _, err = cli(pod_ns, "install", "--backend", request.param, "--ipv6", "on")
        assert rc == 0, err
        collector = HttpServer("zipkin", pod_ns.name, "127.0.0.1", 9411, reply="collect")
        app = HttpServer("app", peer.name, "::", APP)
        with serving(collector, app), nsock.serving(peer.name, "::", CANARY, nsock.echo) as canary:
            proxy = capture.start_proxy(pod_ns, tmp, "--config", str(config))
            yield Pod(link, proxy, canary, collector, app)
            assert proxy.proc.poll() is None, proxy.log()


def refused(ns: str, host: str, port: int) -> bool:
    try:
        nsock.connect(ns, host, port, timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_the_admin_port_answers_on_the_pods_loopback_only(pod: Pod) -> None:
    link = pod.link
    assert nsock.http_get(link.a.name, "127.0.0.1", 15000, "/config_dump")[0] == 200
    for host in (link.a4, link.a6):
        assert refused(link.b.name, host, 15000), f"admin reachable from the peer on {host}"
        assert refused(link.a.name, host, 15000), f"admin on the pod address {host}"
    assert refused(link.a.name, "::1", 15000)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_telemetry_is_reachable_and_read_only(pod: Pod, method: str) -> None:
    link = pod.link
    for host in (link.a4, link.a6):
        assert nsock.http_get(link.b.name, host, 15020, "/healthz/ready")[0] == 200
        for path in ("/metrics", "/healthz/ready", "/healthz/live"):
            s = nsock.connect(link.b.name, host, 15020)
            try:
                s.sendall(f"{method} {path} HTTP/1.1\r\nContent-Length: 0\r\n\r\n".encode())
                answer = nsock.recv_all(s)
            finally:
                s.close()
            assert answer.startswith(b"HTTP/1.1 405 "), answer[:100]
            assert b"\r\nAllow: GET, HEAD\r\n" in answer


def relayed_nowhere(ns: str, host: str, port: int) -> bool:
    """Dial ``host:port`` and ask to be relayed to the canary: True when the proxy closed
    the connection without a byte."""
    try:
        s = nsock.connect(ns, host, port, timeout=3)
    except (ConnectionRefusedError, ConnectionResetError):  # the reset can beat connect()
        return True
    try:
        s.sendall(b"GET http://10.77.0.1:%d/ HTTP/1.1\r\nHost: 10.77.0.1\r\n\r\n" % CANARY)
        return nsock.recv_all(s) == b""
    except ConnectionResetError:
        return True
    finally:
        s.close()


def test_capture_ports_dialled_directly_relay_nothing(pod: Pod) -> None:
    link = pod.link
    before = pod.proxy.total("mesh_loop_guard_refusals_total")
    dials = [(link.b.name, host, port) for host in (link.a4, link.a6) for port in (15001, 15006)]
    dials += [(link.a.name, host, 15001) for host in ("127.0.0.1", "::1", link.a4, link.a6)]
    for ns, host, port in dials:
        assert relayed_nowhere(ns, host, port), (ns, host, port)
    assert pod.canary.peers == []  # nothing reached the peer's canary
    deadline = time.monotonic() + 5
    while pod.proxy.total("mesh_loop_guard_refusals_total") - before < len(dials):
        assert time.monotonic() < deadline, "loop guard refusals not counted"
        time.sleep(0.05)


def test_no_credential_cookie_or_body_is_logged_or_traced(pod: Pod) -> None:
    link = pod.link
    body = b"password=SECRET-BODY"
    for host in (link.b4, link.b6):
        s = nsock.connect(link.a.name, host, APP)
        try:
            s.sendall(
                b"POST /login?lang=en HTTP/1.1\r\nHost: app\r\nConnection: close\r\n"
                b"Authorization: Bearer SECRET-AUTH\r\nCookie: session=SECRET-COOKIE\r\n"
                b"Proxy-Authorization: Basic SECRET-PROXY\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body
            )
            answer = nsock.recv_all(s)
        finally:
            s.close()
        assert answer.startswith(b"HTTP/1.1 200 ") and b"SECRET-AUTH" in answer  # echoed
    entries = [e for e in pod.proxy.access_log(at_least=2) if e.get("path") == "/login?lang=en"]
    deadline = time.monotonic() + 5
    while len(posted_spans(pod.collector)) < 2:
        assert time.monotonic() < deadline, "no spans"
        time.sleep(0.05)
    spans = [s for s in posted_spans(pod.collector) if "/login" in s["tags"]["http.url"]]
    assert len(entries) >= 2 and len(spans) >= 2
    recorded = json.dumps(entries) + json.dumps(spans) + pod.proxy.log()
    assert [s for s in SECRETS if s in recorded] == []
    assert [s for s in SECRETS if s.lower() in recorded.lower()] == []
