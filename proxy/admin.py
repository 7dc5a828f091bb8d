"""The admin port (127.0.0.1:15000 only): /config_dump, /clusters, POST /drain, PUT /config.

The admin view is a small read model the server fills in; handlers only render it
as JSON or call the drain action, so they stay trivial to test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.httpmini import Endpoints, Handler, Reply, Request
from proxy.outbound import TcpService

JSON = "application/json"


@dataclass
class AdminView:
    options: Mapping[str, Any]
    config_path: str | None
    config_version: str
    services: Mapping[tuple[str, int], TcpService]
    loop_name: str
    drain: Callable[[], None]
    extra: dict[str, Any] = field(default_factory=dict)
    # Live config (proxy/reload): the PUT /config handler and the dump's config status.
    put_config: Handler | None = None
    config_status: Callable[[], Mapping[str, Any]] | None = None
    # The live mesh (proxy/mesh): every cluster with endpoint health, EWMA, in-flight.
    cluster_report: Callable[[], list[dict[str, Any]]] | None = None
    # The routing config in force, as the mesh holds it (``proxy.mesh.Mesh.dump``).
    mesh_dump: Callable[[], Mapping[str, Any]] | None = None


def _json(data: object) -> Reply:
    return Reply(200, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), JSON)


def admin_endpoints(view: AdminView) -> Endpoints:
    def config_dump(_: Request) -> Reply:
        return _json(
            {
                "version": view.config_version,
                "config_path": view.config_path,
                "options": dict(view.options),
                "event_loop": view.loop_name,
                "tcp_services": [
                    {
                        "name": s.name,
                        "address": f"{a}:{p}",
                        "endpoints": [f"{h}:{q}" for h, q in s.endpoints],
                    }
                    for (a, p), s in sorted(view.services.items())
                ],
                **view.extra,
                **(view.config_status() if view.config_status is not None else {}),
                **(view.mesh_dump() if view.mesh_dump is not None else {}),
            }
        )

    def clusters(_: Request) -> Reply:
        out: list[dict[str, Any]] = [{"name": "PassthroughCluster", "endpoints": []}]
        if view.cluster_report is not None:
            return _json({"clusters": out + view.cluster_report()})
        for s in sorted(view.services.values(), key=lambda s: s.name):
            out.append(
                {
                    "name": s.name,
                    # L4 round robin tracks no health yet: only what is configured.
                    "endpoints": [{"address": f"{h}:{q}"} for h, q in s.endpoints],
                }
            )
        return _json({"clusters": out})

    def drain(_: Request) -> Reply:
        view.drain()
        return Reply(200, b"draining: listeners closed, /healthz/ready answers 503\n")

    endpoints = Endpoints()
    endpoints.add("GET", "/config_dump", config_dump)
    endpoints.add("GET", "/clusters", clusters)
    endpoints.add("POST", "/drain", drain)
    if view.put_config is not None:
        endpoints.add("PUT", "/config", view.put_config)
    return endpoints
