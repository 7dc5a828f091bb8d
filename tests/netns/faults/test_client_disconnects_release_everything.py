"""Clients that hang up mid-request and mid-response, through the running sidecar: the
upstream request is abandoned, its connection closed, ``DC`` counted, and the proxy's
open fds, tasks, client connections and pool entries return to their baseline
(admin ``GET /stats``), asserted after each kind of hang-up, five of each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.support import fault_scenarios as sc
from tests.support.http_client import read_head
from tests.support.l7_scenarios import PORT
from tests.support.mesh_topology import Mesh, mesh
from tests.support.pod_clients import Req, open_conn
from tests.support.proxy_stats import held, stats, wait_for_baseline

TIMES = 5


@pytest.fixture(scope="module")
def m(codec: str) -> Iterator[Mesh]:
    with mesh("pd", sc.CONFIG, sc.ENDPOINTS, codec=codec) as topo:
        for server in topo.endpoints.values():
            server.reply = "paths"
        yield topo


def baseline(m: Mesh) -> dict[str, int]:
    """What the proxy holds before the hang-ups, after a normal request to the endpoint
    (so the pool has an idle connection that a hang-up could leak or use up)."""
    assert m.once(sc.vip(sc.STUCK), PORT, Req("GET", "/echo")).status == 200
    base = held(stats(m.pod.name))
    assert (base["downstream_connections"], base["upstream_busy"]) == (0, 0), base
    return base


def dc_count(m: Mesh) -> float:
    return m.metric("istio_requests_total", response_flags="DC")


async def hang_up(m: Mesh, vip: str, raw: bytes, *, read_head_first: bool, after: float) -> int:
    """Send ``raw``, optionally read the response head, wait ``after`` s, close hard."""
    reader, writer = await open_conn(m.pod.name, vip, PORT)
    status = 0
    try:
        writer.write(raw)
        await writer.drain()
        if read_head_first:
            status = (await read_head(reader))[0]
        await asyncio.sleep(after)
    finally:
        writer.transport.abort()
    return status


def settle(m: Mesh, base: dict[str, int], dc_before: float, want_dc: int, within: float) -> None:
    """Back to ``base`` within ``within`` seconds (the stuck service's deadline is 30 s),
    with ``want_dc`` more requests counted ``DC``; the endpoint has no connection from
    the proxy but the pool's idle ones."""
    started = time.monotonic()
    now = wait_for_baseline(m.pod.name, base, timeout=within)
    assert now == base, f"not back to the baseline: {now} != {base}"
    took = time.monotonic() - started
    assert took < within, f"released after {took:.2f}s"
    assert m.wait_metric("istio_requests_total", dc_before + want_dc, response_flags="DC") == (
        dc_before + want_dc
    )


def test_hang_up_while_the_upstream_thinks_abandons_it(m: Mesh) -> None:
    """The client goes before any response (the endpoint takes 20 s): within the
    engine's client watch (1 s) the upstream connection is closed, not left to the
    deadline, and each request is one ``DC``."""
    base, before = baseline(m), dc_count(m)
    raw = b"GET /slow?s=20 HTTP/1.1\r\nHost: stuck\r\n\r\n"
    for _ in range(TIMES):
        m.run(hang_up(m, sc.vip(sc.STUCK), raw, read_head_first=False, after=0.1))
    settle(m, base, before, TIMES, within=3.0)


def test_hang_up_mid_body_upload_abandons_the_upstream(m: Mesh) -> None:
    """The client sends a head promising 100,000 bytes, 1,000 of them, and goes: the
    attempt already under way is aborted upstream, one ``DC`` per request."""
    base, before = baseline(m), dc_count(m)
    raw = b"PUT /echo HTTP/1.1\r\nHost: stuck\r\nContent-Length: 100000\r\n\r\n" + b"u" * 1000
    for _ in range(TIMES):
        m.run(hang_up(m, sc.vip(sc.STUCK), raw, read_head_first=False, after=0.1))
    settle(m, base, before, TIMES, within=2.0)


def test_hang_up_mid_response_body_releases_the_stalled_upstream(m: Mesh) -> None:
    """The head and 1,000 bytes arrive, the upstream stalls, the client goes: the
    upstream connection is closed within the client watch (1 s), not at the deadline."""
    base, before = baseline(m), dc_count(m)
    raw = b"GET /stall HTTP/1.1\r\nHost: stuck\r\n\r\n"
    for _ in range(TIMES):
        status = m.run(hang_up(m, sc.vip(sc.STUCK), raw, read_head_first=True, after=0.05))
        assert status == 200
    settle(m, base, before, TIMES, within=3.0)


def test_hang_up_mid_download_stops_the_transfer(m: Mesh) -> None:
    """A 64 MiB download: the client reads the head and goes. The proxy stops relaying
    (the endpoint's connection is closed long before 64 MiB went out), one ``DC`` each."""
    base, before = baseline(m), dc_count(m)
    raw = b"GET /download?n=67108864 HTTP/1.1\r\nHost: stuck\r\n\r\n"
    sent_before = m.metric("istio_response_bytes_sum")
    for _ in range(TIMES):
        status = m.run(hang_up(m, sc.vip(sc.STUCK), raw, read_head_first=True, after=0.05))
        assert status == 200
    settle(m, base, before, TIMES, within=2.0)
    relayed = m.metric("istio_response_bytes_sum") - sent_before
    assert relayed < TIMES * 16 * 2**20, f"{relayed} bytes relayed to clients that left"
