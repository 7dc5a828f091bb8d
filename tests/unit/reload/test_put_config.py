"""PUT /config in process: validation with field paths, atomic apply, fan-out to workers.

The admin endpoints are the real ones (``admin_endpoints`` over an ``AdminView``);
requests go through ``Endpoints.dispatch`` exactly as httpmini hands them over.
Two reloaders sharing one state dir stand for two ``--workers`` processes.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.admin.admin_port import AdminView, admin_endpoints
from proxy.admin.httpmini import Endpoints, Request
from proxy.config import loads_config
from proxy.observe.metrics import ReloadMetrics
from proxy.reload import Loaded, Reloader, load_initial
from tests.support.config_docs import BAD_DOC, reloads, tcp_doc, versions

A, B = tcp_doc("10.0.0.1:80"), tcp_doc("10.0.0.2:80", "10.0.0.3:81")


def _admin(reloader: Reloader) -> tuple[Endpoints, list[Loaded]]:
    view = AdminView({}, "asyncio", lambda: None)
    view.put_config = reloader.put_handler
    view.config_status = reloader.status
    applied: list[Loaded] = []  # what ProxyServer.apply_config is given
    reloader.store.subscribe(applied.append)
    return admin_endpoints(view), applied


async def _call(endpoints: Endpoints, method: str, path: str, body: bytes = b"") -> Any:
    reply = await endpoints.dispatch(Request(method, path, "", body))
    return reply.status, json.loads(reply.body)


def test_put_validates_applies_and_reports_errors_with_paths() -> None:
    registry = CollectorRegistry()
    reloader = Reloader(load_initial(None), ReloadMetrics(registry))
    endpoints, applied = _admin(reloader)

    async def scenario() -> list[tuple[int, Any]]:
        return [
            await _call(endpoints, "GET", "/config_dump"),
            await _call(endpoints, "PUT", "/config", A.encode()),
            await _call(endpoints, "PUT", "/config", BAD_DOC.encode()),
            await _call(endpoints, "PUT", "/config", b"services: [{name: x}]\n"),
            await _call(endpoints, "PUT", "/config", b"\xff\xfe"),
            await _call(endpoints, "PUT", "/config", A.encode()),
            await _call(endpoints, "GET", "/config_dump"),
        ]

    before, ok, bad, missing, binary, again, after = asyncio.run(scenario())
    assert before[0] == 200 and before[1]["version"] == "none"
    assert before[1]["config_status"]["source"] == "none"
    version = loads_config(A).version
    assert ok == (
        200,
        {
            "result": "ok",
            "version": version[:12],
            "sha256": version,
            "source": "put",
            "loaded_at": ok[1]["loaded_at"],
        },
    )
    assert abs(ok[1]["loaded_at"] - time.time()) < 5
    assert bad[0] == 400
    assert bad[1]["errors"] == ["PUT /config:3: services[0].port: must be <= 65535, got 99999"]
    assert bad[1]["in_force"]["sha256"] == version
    assert missing[0] == 400
    assert set(missing[1]["errors"]) == {
        "PUT /config:1: services[0].port: required",
        "PUT /config:1: services[0]: needs endpoints or dns",
    }, missing[1]["errors"]
    assert binary[0] == 400 and "not UTF-8" in binary[1]["errors"][0]
    assert again[0] == 200 and again[1]["result"] == "unchanged"
    # The good document is what routes, and what the dump shows.
    assert [loaded.version for loaded in applied] == [version]
    dump = after[1]
    assert dump["version"] == version[:12]
    assert dump["config"] == loads_config(A).to_dict()
    status = dump["config_status"]
    assert (status["sha256"], status["source"], status["origin"]) == (version, "put", None)
    assert status["loaded_at"] == ok[1]["loaded_at"]
    assert status["reloads"] == {"ok": 1, "error": 3}
    assert status["last_rejected"]["source"] == "put"
    assert reloads(registry, "ok") == 1 and reloads(registry, "error") == 3
    assert versions(registry) == {version[:12]: ok[1]["loaded_at"]}


def test_put_on_one_worker_reaches_the_other_through_the_state_file(tmp_path: Path) -> None:
    config = tmp_path / "mesh.json"
    config.write_text(A)
    registries = [CollectorRegistry(), CollectorRegistry()]
    workers = [
        Reloader(load_initial(str(config)), ReloadMetrics(r), str(tmp_path)) for r in registries
    ]
    admins = [_admin(w)[0] for w in workers]
    b_version = loads_config(B).version

    async def scenario() -> tuple[float, tuple[int, Any], tuple[int, Any]]:
        for w in workers:
            w.start()
        await asyncio.sleep(0.1)
        bad = await _call(admins[0], "PUT", "/config", BAD_DOC.encode())
        started = time.monotonic()
        ok = await _call(admins[0], "PUT", "/config", B.encode())
        assert workers[0].store.current.version == b_version  # the one asked: at once
        while workers[1].store.current.version != b_version:
            assert time.monotonic() - started < 2.0, "the other worker never got the PUT"
            await asyncio.sleep(0.02)
        took = time.monotonic() - started
        await asyncio.sleep(0.6)  # the asked worker does not load its own write again
        for w in workers:
            await w.stop()
        return took, bad, ok

    took, bad, ok = asyncio.run(scenario())
    assert took < 2.0
    assert bad[0] == 400 and ok[0] == 200
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".config")] == []
    assert [w.store.current.source for w in workers] == ["put", "put"]
    # Each process counts its own reloads; the bad document never left the first one.
    assert [reloads(r, "ok") for r in registries] == [1, 1]
    assert [reloads(r, "error") for r in registries] == [1, 0]
