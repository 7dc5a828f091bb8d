"""scripts/bench: the rendered configs are what the tools accept (proxy loader, haproxy -c)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from proxy.config import loads_config
from scripts.benchlib import render

UP = render.Upstream(address="10.77.0.1", port=8080, second_port=8082)


def test_l4_config_declares_the_destination_tcp() -> None:
    config = loads_config(render.mesh_l4(UP))
    (svc,) = config.services
    assert svc.protocol == "tcp"
    assert list(svc.addresses) == ["10.77.0.1"]
    assert [(e.address, e.port) for e in svc.endpoints] == [("10.77.0.1", 8080)]


def test_l7_config_is_the_realistic_sidecar() -> None:
    config = loads_config(render.mesh_l7(UP))
    assert config.mesh.access_log is True
    (svc,) = config.services
    assert svc.protocol == "http"
    assert sorted(e.port for e in svc.endpoints) == [8080, 8082]
    assert "v1" in svc.subsets
    (route,) = svc.routes
    assert [d.subset for d in route.destinations] == ["v1"]
    policy = route.resolved_policy
    assert policy.load_balancer == "peak_ewma"
    assert policy.retries.attempts == 2
    assert policy.outlier_detection.consecutive_errors == 5


def test_haproxy_config_is_transparent_single_threaded_as_uid_1337() -> None:
    text = render.haproxy("http")
    assert "  nbthread 1" in text and "  uid 1337" in text and "  gid 1337" in text
    assert "  mode http" in text and "  bind 0.0.0.0:15001" in text
    assert "  server original 0.0.0.0:0" in text
    assert "  mode tcp" in render.haproxy("tcp")
    with pytest.raises(ValueError, match="'udp'"):
        render.haproxy("udp")


def test_haproxy_peer_for_two_workers_runs_two_threads() -> None:
    assert "  nbthread 2" in render.haproxy("http", threads=2)
    assert "nbthread 1" not in render.haproxy("http", threads=2)
    with pytest.raises(ValueError, match="threads 0"):
        render.haproxy("http", threads=0)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
@pytest.mark.parametrize(("mode", "threads"), [("tcp", 1), ("http", 1), ("http", 2)])
def test_haproxy_accepts_the_config(tmp_path: Path, mode: str, threads: int) -> None:
    cfg = tmp_path / "h.cfg"
    cfg.write_text(render.haproxy(mode, threads=threads))
    got = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert got.returncode == 0, got.stdout + got.stderr


def test_nginx_config_listens_on_every_port_without_access_log() -> None:
    text = render.nginx("/tmp/x", (8080, 8082))
    assert "listen 8080 reuseport;" in text and "listen 8082 reuseport;" in text
    assert "access_log off;" in text and "root /tmp/x/www;" in text
    assert "keepalive_requests 100000000;" in text


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed")
def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    for d in ("www", "tmp-body", "tmp-proxy", "tmp-fastcgi", "tmp-uwsgi", "tmp-scgi"):
        (tmp_path / d).mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(render.nginx(str(tmp_path), (8080, 8082)))
    got = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert got.returncode == 0, got.stderr


def test_the_at_rest_config_holds_a_hundred_realistic_services() -> None:
    config = loads_config(render.mesh_many(UP, 100))
    assert len(config.services) == 101  # plus the bench's own service
    names = {s.name for s in config.services}
    assert len(names) == 101
    addresses = {a for s in config.services for a in s.addresses}
    assert len(addresses) == 101  # no two services claim one VIP
    svc = config.services[0]
    assert len(svc.endpoints) == 3 and len(svc.routes) == 2
