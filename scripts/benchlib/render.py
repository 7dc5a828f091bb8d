"""The configuration files of one bench run, rendered as text from a few addresses.

The mesh configs follow DESIGN.md §5: L4 declares the service ``tcp``; L7 declares it
``http`` with what a realistic sidecar does per request (a route to a subset,
retries with a budget, outlier detection, peak-EWMA over two endpoints, access log).
HAProxy gets the same transparent job: it listens on the capture port and its
``server … 0.0.0.0:0`` connects to each connection's original destination.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

PROXY_UID = 1337
CAPTURE_PORT = 15001


@dataclass(frozen=True)
class Upstream:
    """Where the server listens, as seen from the pod (two ports: two L7 endpoints)."""

    address: str = "10.77.0.1"
    port: int = 8080
    second_port: int = 8082


def mesh_l4(up: Upstream) -> str:
    doc = {
        "mesh": {"outbound_policy": "allow_any", "access_log": True},
        "services": [
            {
                "name": "bench-web",
                "port": up.port,
                "addresses": [up.address],
                "protocol": "tcp",
                "endpoints": [
                    {"address": up.address, "port": up.port, "labels": {"version": "v1"}}
                ],
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def mesh_l7(up: Upstream, ports: tuple[int, ...] | None = None) -> str:
    """The realistic sidecar; its endpoints listen on ``ports`` (default: both of ``up``'s)."""
    endpoints = [
        {"address": up.address, "port": port, "labels": {"version": "v1"}}
        for port in (ports or (up.port, up.second_port))
    ]
    doc = {
        "mesh": {"outbound_policy": "allow_any", "access_log": True},
        "defaults": {
            "timeout": "15s",
            "retries": {
                "attempts": 2,
                "retry_on": ["connect-failure", "reset", "refused", "503"],
                "budget": {"ratio": 0.2, "min_per_second": 10},
            },
            "load_balancer": "peak_ewma",
            "outlier_detection": {
                "consecutive_errors": 5,
                "interval": "10s",
                "base_ejection_time": "30s",
                "max_ejection_time": "300s",
                "max_ejection_percent": 50,
            },
        },
        "services": [
            {
                "name": "bench-web",
                "port": up.port,
                "addresses": [up.address],
                "hosts": ["bench-web"],
                "protocol": "http",
                "endpoints": endpoints,
                "subsets": {"v1": {"version": "v1"}},
                "routes": [
                    {
                        "name": "all",
                        "match": {"path": {"prefix": "/"}},
                        "destinations": [{"subset": "v1"}],
                    }
                ],
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def mesh_many(up: Upstream, services: int) -> str:
    """``services`` HTTP services shaped like a real mesh's (VIP, hosts, three endpoints in
    two versions, subsets, a header route and a 90/10 split): memory at rest is measured
    with this, since a sidecar holds every service of the mesh, not only the one it calls."""
    docs = []
    for i in range(services):
        name = f"svc-{i:03d}"
        endpoints = [
            {"address": f"10.{100 + i // 250}.{i % 250}.{n}", "port": 9080,
             "labels": {"version": "v2" if n == 3 else "v1"}}
            for n in (1, 2, 3)
        ]  # fmt: skip
        docs.append(
            {
                "name": name,
                "port": 9080,
                "addresses": [f"10.96.{i // 250}.{i % 250 + 1}"],
                "hosts": [name, f"{name}.default", f"{name}.default.svc.cluster.local"],
                "protocol": "http",
                "endpoints": endpoints,
                "subsets": {"v1": {"version": "v1"}, "v2": {"version": "v2"}},
                "routes": [
                    {
                        "match": {"headers": {"x-env": {"exact": "staging"}}},
                        "destinations": [{"subset": "v2"}],
                    },
                    {
                        "destinations": [
                            {"subset": "v1", "weight": 90},
                            {"subset": "v2", "weight": 10},
                        ]
                    },
                ],
            }
        )
    doc = json.loads(mesh_l7(up))
    doc["services"] = docs + doc["services"]
    return json.dumps(doc, indent=2) + "\n"


def haproxy(mode: str, log: bool = True, threads: int = 1) -> str:
    """HAProxy 2.6, ``threads`` threads (one by default), as uid 1337 so the capture
    rules let its upstream out."""
    if mode not in ("tcp", "http"):
        raise ValueError(f"HAProxy mode {mode!r}: expected tcp or http")
    if threads < 1:
        raise ValueError(f"HAProxy threads {threads}: expected at least 1")
    logging = ["  log stdout format raw local0"] if log else []
    option = "httplog" if mode == "http" else "tcplog"
    lines = [
        "global",
        f"  nbthread {threads}",
        f"  uid {PROXY_UID}",
        f"  gid {PROXY_UID}",
        "  maxconn 4096",
        *logging,
        "defaults",
        f"  mode {mode}",
        "  log global" if log else "  no log",
        f"  option {option}",
        "  timeout connect 5s",
        "  timeout client 60s",
        "  timeout server 60s",
        "listen outbound",
        f"  bind 0.0.0.0:{CAPTURE_PORT}",
        # 0.0.0.0:0 = connect to the address the client dialled (SO_ORIGINAL_DST).
        "  server original 0.0.0.0:0",
    ]
    return "\n".join(lines) + "\n"


def nginx(root: str, ports: tuple[int, ...]) -> str:
    """One single-process nginx serving ``root`` on every port, keep-alive unlimited."""
    listens = "\n".join(f"    listen {p} reuseport;" for p in ports)
    return f"""daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx.error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  client_body_temp_path {root}/tmp-body;
  proxy_temp_path {root}/tmp-proxy;
  fastcgi_temp_path {root}/tmp-fastcgi;
  uwsgi_temp_path {root}/tmp-uwsgi;
  scgi_temp_path {root}/tmp-scgi;
  server {{
{listens}
    root {root}/www;
    add_header X-Bench-Server svc;
  }}
}}
"""
