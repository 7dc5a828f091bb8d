"""The admin port (127.0.0.1:15000 only): /config_dump, /clusters, POST /drain, PUT /config.

The admin view is a small read model the server fills in; handlers only render it
as JSON or call the drain action, so they stay trivial to test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from proxy.httpmini import Endpoints, Handler, Reply, Request

JSON = "application/json"


@dataclass
class AdminView:
    options: Mapping[str, Any]
    loop_name: str
    drain: Callable[[], None]
    # Live config (proxy/reload): the PUT /config handler and the config in force with
    # its version, source and load time.
    put_config: Handler | None = None
    config_status: Callable[[], Mapping[str, Any]] | None = None
    # The live mesh (proxy/mesh): every cluster with endpoint health, EWMA, in-flight.
    cluster_report: Callable[[], list[dict[str, Any]]] | None = None


def _json(data: object) -> Reply:
    return Reply(200, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), JSON)


def admin_endpoints(view: AdminView) -> Endpoints:
    def config_dump(_: Request) -> Reply:
        status = dict(view.config_status()) if view.config_status is not None else {}
        version = status.get("config_status", {}).get("version", "none")
        return _json(
            {
                "version": version,
                "options": dict(view.options),
                "event_loop": view.loop_name,
                **status,
            }
        )

    def clusters(_: Request) -> Reply:
        out: list[dict[str, Any]] = [{"name": "PassthroughCluster", "endpoints": []}]
        if view.cluster_report is not None:
            out += view.cluster_report()
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
