"""The mesh wired into the running sidecar: real capture rules, ``python -m proxy run
--config`` as uid 1337, a service behind veth, HTTP routed by VIP and by Host, and
inbound HTTP reaching the app from 127.0.0.6."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import netns as nt
from tests.support import nsock
from tests.support import sidecar as capture
from tests.support.http_server import HttpServer
from tests.support.loop_thread import serving

pytestmark = pytest.mark.netns

VIP, PORT = "10.96.0.20", 9080
V1_PORT, V2_PORT, APP_PORT = 9081, 9082, 8080


def _get(ns: str, host: str, port: int, path: str, *headers: str) -> tuple[int, dict[str, Any]]:
    s = nsock.connect(ns, host, port)
    try:
        lines = [f"GET {path} HTTP/1.1", *headers, "Connection: close"]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        raw = nsock.recv_all(s)
    finally:
        s.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, json.loads(body) if status == 200 else {"error": body.decode()}


def _headers(seen: dict[str, Any]) -> dict[str, str]:
    """The request headers the server's identity reply names, by lower-cased name."""
    pairs = seen["headers"]
    assert isinstance(pairs, list)
    return {name: value for name, value in pairs}


def _config(svc_ip: str) -> dict[str, object]:
    return {
        "services": [
            {
                "name": "reviews",
                "port": PORT,
                "addresses": [VIP],
                "hosts": ["reviews.test"],
                "protocol": "http",
                "endpoints": [
                    {"address": svc_ip, "port": V1_PORT, "labels": {"version": "v1"}},
                    {"address": svc_ip, "port": V2_PORT, "labels": {"version": "v2"}},
                ],
                "subsets": {"v1": {"version": "v1"}, "v2": {"version": "v2"}},
                "routes": [
                    {
                        "match": {"headers": {"x-env": {"exact": "staging"}}},
                        "destinations": [{"subset": "v2"}],
                    },
                    {"destinations": [{"subset": "v1"}]},
                ],
            }
        ]
    }


@pytest.fixture(scope="module")
def pod(
    tmp_path_factory: pytest.TempPathFactory, codec: str
) -> Iterator[tuple[nt.Link, capture.Proxy]]:
    tmp = tmp_path_factory.mktemp("meshpod")
    path = Path(tmp) / "mesh.json"
    path.write_text(json.dumps(_config("10.77.0.1")))
    path.chmod(0o644)
    with capture.mesh("pw", tmp, "--config", str(path), "--http-codec", codec) as (link, proxy):
        assert link.b4 == "10.77.0.1"
        yield link, proxy
        assert proxy.proc.poll() is None, proxy.log()


def test_app_reaches_a_service_by_vip_and_by_host_routed_to_the_right_subset(
    pod: tuple[nt.Link, capture.Proxy],
) -> None:
    link, proxy = pod
    v1 = HttpServer("v1", link.b.name, link.b4, V1_PORT)
    v2 = HttpServer("v2", link.b.name, link.b4, V2_PORT)
    with serving(v1, v2):
        by_vip = _get(link.a.name, VIP, PORT, "/a", "Host: reviews")
        staging = _get(link.a.name, VIP, PORT, "/b", "Host: reviews", "x-env: staging")
        # Not a VIP: nothing listens on the service namespace's 9080; the Host decides.
        by_host = _get(link.a.name, link.b4, PORT, "/c", "Host: reviews.test")
    assert by_vip[0] == 200 and by_vip[1]["served_by"] == "v1", by_vip
    assert staging[0] == 200 and staging[1]["served_by"] == "v2", staging
    assert by_host[0] == 200 and by_host[1]["served_by"] == "v1", by_host
    sent = _headers(by_vip[1])
    assert sent["x-mesh-attempt"] == "1" and 0 < int(sent["x-mesh-timeout-ms"]) <= 15000
    assert v1.requests[0].peer[0] == link.a4  # left the pod from its own address
    status, body = nsock.http_get(link.a.name, "127.0.0.1", 15000, "/clusters")
    clusters = {c["name"]: c for c in json.loads(body)["clusters"]}
    rows = {r["address"]: r for r in clusters["reviews"]["endpoints"]}
    assert status == 200
    assert rows[f"{link.b4}:{V1_PORT}"]["health"] == "healthy"
    assert rows[f"{link.b4}:{V2_PORT}"]["version"] == "v2"
    status, body = nsock.http_get(link.a.name, "127.0.0.1", 15000, "/config_dump")
    dump = json.loads(body)
    assert status == 200 and len(dump["config_status"]["sha256"]) == 64
    assert [s["name"] for s in dump["config"]["services"]] == ["reviews"]
    assert proxy.proc.poll() is None


def test_inbound_http_reaches_the_app_from_127_0_0_6(pod: tuple[nt.Link, capture.Proxy]) -> None:
    link, _ = pod
    app = HttpServer("app", link.a.name, "0.0.0.0", APP_PORT)
    with serving(app):
        deadline = "x-mesh-timeout-ms: 4000"
        status, seen = _get(link.b.name, link.a4, APP_PORT, "/in", "Host: app", deadline)
    assert status == 200, seen
    assert seen["peer"] == ["127.0.0.6", app.requests[0].peer[1]]
    assert app.requests[0].peer[0] == "127.0.0.6"
    headers = _headers(seen)
    assert 0 < int(headers["x-mesh-timeout-ms"]) <= 4000  # the caller's deadline, chained
    assert headers["x-request-id"]  # the HTTP layer handled it, not the L4 relay
