"""``GET /stats`` on the admin port, in-process: the real endpoint over an ``AdminView``
wired to ``process_stats``; every count moves when the process takes or frees what it
counts, so a leak test can compare against a baseline."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from proxy.admin.admin_port import AdminView, admin_endpoints
from proxy.admin.httpmini import Request
from proxy.config import loads_config
from proxy.mesh import Mesh
from proxy.process.stats import open_fds, process_stats

CONFIG = """
services:
  - name: reviews
    port: 9080
    addresses: [10.96.0.20]
    endpoints: [{address: 10.1.0.1}, {address: 10.1.0.2}]
"""


async def _stats(view: AdminView, method: str = "GET") -> tuple[int, Any]:
    reply = await admin_endpoints(view).dispatch(Request(method, "/stats", "", b""))
    return reply.status, json.loads(reply.body) if reply.status == 200 else reply.body


def test_fds_tasks_and_connections_follow_what_is_open() -> None:
    async def main() -> None:
        conns = [0]
        mesh = Mesh(loads_config(CONFIG))
        view = AdminView({}, "asyncio", lambda: None)
        view.stats = lambda: process_stats(lambda: conns[0], mesh.pool_counts)
        status, before = await _stats(view)
        assert status == 200 and before["pid"] == os.getpid()
        r, w = os.pipe()
        stop = asyncio.Event()
        waiter = asyncio.get_running_loop().create_task(stop.wait())
        conns[0] = 3
        try:
            _, during = await _stats(view)
        finally:
            os.close(r)
            os.close(w)
            stop.set()
            await waiter
        _, after = await _stats(view)
        assert during["open_fds"] == before["open_fds"] + 2
        assert during["tasks"] == before["tasks"] + 1
        assert during["downstream_connections"] == 3
        assert (after["open_fds"], after["tasks"]) == (before["open_fds"], before["tasks"])
        assert before["upstream_connections"] == {
            "open": 0, "idle": 0, "clusters": {"reviews": {"open": 0, "idle": 0}},
        }  # fmt: skip

    asyncio.run(main())


def test_open_fds_counts_one_more_per_open_file() -> None:
    before = open_fds()
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        assert open_fds() == before + 1
    finally:
        os.close(fd)
    assert open_fds() == before


def test_without_a_stats_source_404_and_only_get() -> None:
    view = AdminView({}, "asyncio", lambda: None)
    assert asyncio.run(_stats(view))[0] == 404
    view.stats = lambda: {"pid": 1}
    assert asyncio.run(_stats(view, "PUT"))[0] == 405
