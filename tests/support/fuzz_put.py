"""Hostile ``PUT /config`` bodies against a live store, and the all-or-nothing check.

A ``Live`` is what a proxy process holds: a ``Reloader`` whose store feeds the real
subscribers (``Mesh.apply`` and ``Telemetry.apply_config``, as ``ProxyServer``
subscribes them), behind the real admin endpoints, with a valid config in force.
``verdict`` PUTs a body (the config fuzzer's documents) and accepts two outcomes:
200 with the new config in force everywhere, or 400 naming errors with the old one
still in force byte for byte (the same ``Loaded``, the same mesh state, the same
/config_dump text). A subscriber that fails on a config the loader accepted
(``(apply)`` errors), an exception, or anything else is a finding.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.admin.admin_port import AdminView, admin_endpoints
from proxy.admin.httpmini import Endpoints, Request
from proxy.config import empty_config
from proxy.mesh import Mesh
from proxy.observe.metrics import ReloadMetrics
from proxy.observe.runtime import Telemetry
from proxy.reload import Reloader, load_initial

IN_FORCE = json.dumps(
    {
        "mesh": {"tracing": {"zipkin_url": "http://127.0.0.1:9/spans", "sample_rate": 0.5}},
        "services": [
            {
                "name": "web",
                "port": 80,
                "addresses": ["10.96.0.80"],
                "protocol": "http",
                "endpoints": [{"address": "10.0.0.1", "port": 8080}],
                "routes": [{"match": {"path": {"prefix": "/a"}}, "destinations": [{}]}],
            }
        ],
    }
)


@dataclass
class Live:
    reloader: Reloader
    mesh: Mesh
    telemetry: Telemetry
    endpoints: Endpoints

    @classmethod
    def start(cls) -> Live:
        registry = CollectorRegistry()
        reloader = Reloader(load_initial(None), ReloadMetrics(registry))
        mesh = Mesh(empty_config())
        telemetry = Telemetry(CollectorRegistry(), access_log=False)

        def apply(loaded: Any) -> None:  # ProxyServer.apply_config, without the listeners
            mesh.apply(loaded.config)
            telemetry.apply_config(loaded.config)

        reloader.store.subscribe(apply)
        view = AdminView({}, "asyncio", lambda: None)
        view.put_config = reloader.put_handler
        view.config_status = reloader.status
        return cls(reloader, mesh, telemetry, admin_endpoints(view))

    async def put(self, body: bytes) -> tuple[int, Any]:
        reply = await self.endpoints.dispatch(Request("PUT", "/config", "", body))
        return reply.status, json.loads(reply.body)

    async def dump(self) -> bytes:
        reply = await self.endpoints.dispatch(Request("GET", "/config_dump", "", b""))
        assert reply.status == 200
        return reply.body

    def in_force(self) -> tuple[Any, ...]:
        """Everything that must not move when a document is rejected."""
        store = self.reloader.store
        return (
            store.current,
            self.mesh.state,
            self.mesh.config,
            self.telemetry.tracing,
            self.telemetry.observer.exporter,
        )


async def _check(body: bytes) -> str | None:
    live = Live.start()
    status, answer = await live.put(IN_FORCE.encode())
    assert status == 200 and answer["result"] == "ok", answer
    before, dump_before = live.in_force(), await live.dump()
    status, answer = await live.put(body)
    if status == 400:
        errors = answer.get("errors")
        if answer.get("result") != "rejected" or not errors:
            return f"400 without errors: {answer}"
        if any(e.startswith("(apply)") for e in errors):
            return f"accepted by the loader, refused by a subscriber: {errors}"
        after, dump_after = live.in_force(), await live.dump()
        if any(a is not b for a, b in zip(before, after, strict=True)):
            return "rejected, but the state in force changed"
        if _without_status(dump_before) != _without_status(dump_after):
            return "rejected, but /config_dump shows another config"
        return None
    if status != 200 or answer.get("result") not in ("ok", "unchanged"):
        return f"status {status}: {answer}"
    current = live.reloader.store.current
    if live.mesh.config is not current.config or answer["sha256"] != current.version:
        return "accepted, but the mesh does not run the config in force"
    status, answer = await live.put(IN_FORCE.encode())  # and it can still change back
    if status != 200:
        return f"could not PUT the first config back: {status} {answer}"
    return None


def _without_status(dump: bytes) -> bytes:
    """/config_dump without ``config_status`` (reload counts, the last rejection)."""
    doc = json.loads(dump)
    doc.pop("config_status", None)
    return json.dumps(doc, sort_keys=True).encode()


def verdict(body: bytes) -> str | None:
    try:
        return asyncio.run(_check(body))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
