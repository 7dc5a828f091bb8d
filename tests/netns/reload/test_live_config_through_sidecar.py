"""Live config through the real proxy in namespaces: PUT /config, file swaps, workers, load.

The pod runs the interceptor's rules and ``python -m proxy run`` as uid 1337; the
"service pod" serves ``whoami`` on several ports (each port is one endpoint), so the
port that answers a connection to the service VIP shows which config routed it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import nsock
from tests.support import sidecar as capture
from tests.support.admin_client import config_dump, put_config
from tests.support.config_docs import BAD_DOC, ConfigMapDir
from tests.support.http_server import HttpServer
from tests.support.loop_thread import serving

pytestmark = pytest.mark.netns
VIP = "10.77.200.20"
PORTS = (17001, 17002, 17003, 17004)


def doc(*ports: int, name: str = "db") -> str:
    """The tcp service at VIP:7000 with endpoints 10.77.0.1:<port> (the svc namespace)."""
    eps = [{"address": "10.77.0.1", "port": p} for p in ports]
    service = {"name": name, "port": 7000, "addresses": [VIP], "protocol": "tcp", "endpoints": eps}
    return json.dumps({"services": [service]})


def answered_by(ns: str) -> int:
    conn = nsock.connect(ns, VIP, 7000)
    try:
        return int(conn.recv(200).split()[1])
    finally:
        conn.close()


def _serving_all(ns: str, host: str) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    for port in PORTS:
        stack.enter_context(nsock.serving(ns, host, port, nsock.whoami))
    return stack


def _until(check: Any, limit: float = 2.0) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < limit, f"not within {limit}s"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def readable_dir() -> Iterator[Path]:
    """A directory the proxy can still read after dropping to uid 1337 (as a pod's volume)."""
    path = Path(tempfile.mkdtemp(prefix="pr-config-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_put_inside_pod_file_swap_and_admin_unreachable_from_outside(
    tmp_path: Path, readable_dir: Path
) -> None:
    cm = ConfigMapDir(readable_dir, doc(17001))
    with capture.mesh("pr", tmp_path, "--config", cm.path) as (link, proxy):
        pod, svc = link.a.name, link.b.name
        with _serving_all(svc, link.b4):
            assert {answered_by(pod) for _ in range(3)} == {17001}
            # From the service namespace the admin port is simply not there.
            with pytest.raises(ConnectionRefusedError):
                nsock.connect(svc, link.a4, 15000, timeout=2).close()
            status, bad = put_config(pod, BAD_DOC)
            assert status == 400
            assert bad["errors"] == ["PUT /config:3: services[0].port: must be <= 65535, got 99999"]
            assert {answered_by(pod) for _ in range(3)} == {17001}  # the old one still serves
            status, ok = put_config(pod, doc(17002, 17003))
            assert status == 200 and ok["result"] == "ok" and ok["source"] == "put"
            assert {answered_by(pod) for _ in range(6)} == {17002, 17003}
            now = config_dump(pod)
            assert now["version"] == ok["version"]
            assert now["config_status"]["source"] == "put"
            assert now["config"]["services"][0]["endpoints"][0]["port"] == 17002
            # The ConfigMap is updated: the file wins over the earlier PUT.
            cm.update(doc(17004))
            took = _until(lambda: answered_by(pod) == 17004)
            assert {answered_by(pod) for _ in range(3)} == {17004}
        status_now = config_dump(pod)["config_status"]
        assert (status_now["source"], status_now["origin"]) == ("file", cm.path)
        assert status_now["reloads"] == {"ok": 2, "error": 1}
        assert proxy.total("mesh_config_reloads_total", result="ok") == 2
        assert proxy.total("mesh_config_reloads_total", result="error") == 1
        versions = {
            dict(labels)["version"]: value
            for (name, labels), value in proxy.metrics().items()
            if name == "mesh_config_version"
        }
        assert versions == {status_now["version"]: status_now["loaded_at"]}
        assert took < 2.0
        assert "rejected" in proxy.log()


def test_put_and_file_change_reach_every_worker(tmp_path: Path, readable_dir: Path) -> None:
    config = readable_dir / "mesh.json"
    config.write_text(doc(17001))
    with capture.mesh("pr", tmp_path, "--workers", "2", "--config", str(config)) as (link, proxy):
        pod = link.a.name
        with _serving_all(link.b.name, link.b4):
            status, ok = put_config(pod, doc(17003))
            assert status == 200
            time.sleep(1.2)  # the other worker's state-file watcher: one or two ticks
            seen = [answered_by(pod) for _ in range(30)]
            assert set(seen) == {17003}, seen
            assert {config_dump(pod)["version"] for _ in range(10)} == {ok["version"]}
            replacement = readable_dir / "mesh.json.new"
            replacement.write_text(doc(17002, 17004))
            replacement.replace(config)
            time.sleep(1.2)
            seen = [answered_by(pod) for _ in range(30)]
            assert set(seen) == {17002, 17004}, seen
        workers = {entry["worker"] for entry in proxy.access_log()}
        assert len(workers) == 2, "the connections did not reach both workers"
        # Each worker counts its own reloads: 2 changes x 2 workers.
        assert proxy.total("mesh_config_reloads_total", result="ok") == 4
        # Merged over workers (max): the version in force has its load time, the
        # versions it replaced are 0 (multiprocess files cannot drop a series).
        current = config_dump(pod)["config_status"]
        gauge = {
            dict(labels)["version"]: value
            for (name, labels), value in proxy.metrics().items()
            if name == "mesh_config_version"
        }
        assert gauge[current["version"]] == pytest.approx(current["loaded_at"], abs=1.0)
        assert {v for k, v in gauge.items() if k != current["version"]} == {0.0}
        assert len(gauge) == 3  # the first file version, the PUT one, the second file one
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.proc.wait(10) == 0, proxy.log()


def _request_head(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n".encode()


def _get(ns: str, host: str, port: int, path: str) -> tuple[int, bytes]:
    s = nsock.connect(ns, host, port)
    try:
        s.sendall(_request_head(path))
        raw = nsock.recv_all(s)
    finally:
        s.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def test_a_put_to_a_proxy_started_without_config_turns_http_routing_on(tmp_path: Path) -> None:
    """No config: byte-for-byte relay. The first PUT /config routes HTTP by the mesh."""
    http_doc = json.dumps(
        {
            "services": [
                {
                    "name": "web",
                    "port": 8080,
                    "addresses": [VIP],
                    "protocol": "http",
                    "endpoints": [{"address": "10.77.0.1", "port": 17005}],
                }
            ]
        }
    )
    with capture.mesh("pr", tmp_path) as (link, _proxy):
        pod, svc = link.a.name, link.b.name
        web = HttpServer("web", svc, link.b4, 17005)
        with serving(web):
            # Passthrough to the original destination 10.77.0.1:17005: the request arrives
            # exactly as the app wrote it (no L7 headers added).
            status, _ = _get(pod, link.b4, 17005, "/before")
            seen = web.requests[-1].raw_head
            assert status == 200 and seen == _request_head("/before")
            assert b"x-request-id" not in seen.lower()
            status, ok = put_config(pod, http_doc)
            assert status == 200 and ok["result"] == "ok"
            status, _ = _get(pod, VIP, 8080, "/after")
            seen = web.requests[-1].raw_head
            assert status == 200 and seen.startswith(b"GET /after ")
            assert b"x-request-id" in seen.lower() and b"x-mesh-attempt: 1" in seen.lower()
