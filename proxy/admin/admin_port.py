"""The admin port (127.0.0.1:15000 only): /config_dump, /clusters, /rules, /stats,
POST /drain, PUT /config.

The admin view is a small read model the server fills in; handlers only render it
as JSON or call the drain action, so they stay trivial to test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from proxy.admin.httpmini import Endpoints, Handler, Reply, Request
from proxy.core.names import PASSTHROUGH_CLUSTER

JSON = "application/json"
# The largest PUT /config body by default: far above any config the file path is given
# in practice (a 10,000-service mesh is about 11 MB), still a bound on one request.
DEFAULT_MAX_BODY = 64 * 1024 * 1024
MAX_BODY_HINT = "; raise it with --admin-max-body / MESH_ADMIN_MAX_BODY"
MAX_RULES_COPY = 1024 * 1024  # a copy of a few nat rules; anything bigger is not ours


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
    # The copy of its rules the init container left (--rules-file / MESH_RULES_FILE).
    rules_file: str | None = None
    # What this process holds now: fds, tasks, connections, pool entries (GET /stats).
    stats: Callable[[], Mapping[str, Any]] | None = None
    # The HTTP/1 codec that runs (``--http-codec auto`` resolved to a name).
    http_codec: str = ""
    # Which build of the per-request path runs: "mypyc", or "source (why)" (proxy.compiled).
    build: str = ""
    # The largest request body the port reads (--admin-max-body); larger gets 413.
    max_body: int = DEFAULT_MAX_BODY


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
                "http_codec": view.http_codec,
                "build": view.build,
                **status,
            }
        )

    def clusters(_: Request) -> Reply:
        out: list[dict[str, Any]] = [{"name": PASSTHROUGH_CLUSTER, "endpoints": []}]
        if view.cluster_report is not None:
            out += view.cluster_report()
        return _json({"clusters": out})

    def stats(_: Request) -> Reply:
        if view.stats is None:
            return Reply(404, b"no stats in this process\n")
        return _json(dict(view.stats()))

    def drain(_: Request) -> Reply:
        view.drain()
        return Reply(200, b"draining: listeners closed, /healthz/ready answers 503\n")

    def rules(_: Request) -> Reply:
        return rules_reply(view.rules_file)

    endpoints = Endpoints(max_body=view.max_body, too_large_hint=MAX_BODY_HINT)
    endpoints.add("GET", "/config_dump", config_dump)
    endpoints.add("GET", "/rules", rules)
    endpoints.add("GET", "/clusters", clusters)
    endpoints.add("GET", "/stats", stats)
    endpoints.add("POST", "/drain", drain)
    if view.put_config is not None:
        endpoints.add("PUT", "/config", view.put_config)
    return endpoints


def rules_reply(path: str | None) -> Reply:
    """The rules copy as written (JSON), read on each request: the init container may
    run again (a pod restart) and rewrite it. Admin traffic is rare; the read is cheap."""
    if path is None:
        return Reply(404, b"no rules copy: the proxy was started without --rules-file\n")
    try:
        with open(path, "rb") as f:
            body = f.read(MAX_RULES_COPY + 1)
    except FileNotFoundError:
        return Reply(404, f"no rules copy at {path}: the init container left none\n".encode())
    except OSError as e:
        return Reply(503, f"cannot read the rules copy {path}: {e.strerror}\n".encode())
    if len(body) > MAX_RULES_COPY:
        return Reply(503, f"the rules copy {path} is over {MAX_RULES_COPY} bytes\n".encode())
    return Reply(200, body, JSON)
