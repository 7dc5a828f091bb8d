"""Upstreams that misbehave, through the running sidecar: the right status and flag,
retries only where safe, and never a client left waiting past the deadline.

One captured pod runs ``python -m proxy run --config`` (uid 1337) per codec; the
endpoints are the one test server answering by path (``tests.support.fault_scenarios``).
Each test reads what the client got (status, bytes, time), what the endpoints saw
(``x-test-id``, attempts) and the sidecar's access log line for the request.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import fault_scenarios as sc
from tests.support.http_client import read_head
from tests.support.l7_scenarios import PORT
from tests.support.mesh_topology import Mesh, mesh
from tests.support.pod_clients import Client, Req, open_conn

SLACK = 0.4  # the proxy's and the client's own work on a busy 2-core machine


@pytest.fixture(scope="module")
def m(codec: str) -> Iterator[Mesh]:
    with mesh("pf", sc.CONFIG, sc.ENDPOINTS, codec=codec) as topo:
        for server in topo.endpoints.values():
            server.reply = "paths"
        yield topo


def logged(m: Mesh, path: str, timeout: float = 3.0) -> dict[str, Any]:
    """The access-log entry of the one request to ``path``."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in m.access_log() if e.get("path") == path]
        if found or time.monotonic() > deadline:
            break
    assert len(found) == 1, f"{len(found)} access-log entries for {path}"
    return found[0]


def seen(m: Mesh, test_id: str) -> list[str]:
    """The endpoints that received the request ``test_id``, once per attempt."""
    return [
        e.name for e in m.endpoints.values() for s in e.requests if s.header("x-test-id") == test_id
    ]


async def head_then_rest(
    ns: str, host: str, port: int, raw: bytes, limit: float = 10.0
) -> tuple[int, int, float, str]:
    """Send ``raw``; read a response head and then until the connection ends.
    Returns (status, body bytes received, seconds until the end, how it ended)."""
    reader, writer = await open_conn(ns, host, port)
    start = time.monotonic()
    try:
        writer.write(raw)
        status, _, _ = await read_head(reader)
        got, ended = 0, "eof"
        try:
            async with asyncio.timeout(limit):
                while data := await reader.read(65536):
                    got += len(data)
        except ConnectionResetError:
            ended = "reset"
        except TimeoutError:
            ended = "hung"
        return status, got, time.monotonic() - start, ended
    finally:
        writer.close()


def request(method: str, target: str, test_id: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: svc", f"x-test-id: {test_id}"]
    if body or method != "GET":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_upstream_that_never_answers_is_504_at_the_deadline_tried_once(
    m: Mesh, method: str
) -> None:
    """Retries are on (reset, connect-failure, 503), not on a timeout: one attempt, and
    the client has its 504 when the 800 ms route timeout is over, not later."""
    tag = f"silent-{method}"
    target = f"/slow?s=30&t={tag}"
    req = Req(method, target, (("x-test-id", tag),), b"x" * 100 if method == "POST" else b"")
    result = m.once(sc.vip(sc.SILENT), PORT, req)
    assert result.status == 504, result
    assert sc.DEADLINE_S - 0.05 <= result.elapsed <= sc.DEADLINE_S + SLACK, result.elapsed
    time.sleep(0.2)  # a retry would have reached an endpoint by now
    assert len(seen(m, tag)) == 1, seen(m, tag)
    entry = logged(m, target)
    assert (entry["status"], entry["response_flags"], entry["attempts"]) == (504, "DL", 1)


def test_head_then_a_stalled_body_is_cut_at_the_deadline(m: Mesh) -> None:
    """The head (200) and 1,000 of 100,000 bytes arrive, then nothing: the client's
    connection ends at the route timeout (Envoy's timeout covers the whole response),
    with what was relayed, and the request is logged 200 ``UT``."""
    target = "/stall?t=stall"
    raw = request("GET", target, "stall")
    status, got, elapsed, ended = m.run(
        head_then_rest(m.pod.name, sc.vip(sc.STALLING), PORT, raw), timeout=30
    )
    assert (status, got) == (200, 1000) and ended != "hung", (status, got, ended)
    assert elapsed <= sc.DEADLINE_S + SLACK, f"cut after {elapsed:.2f}s, deadline 0.8s"
    entry = logged(m, target)
    assert (entry["status"], entry["response_flags"], entry["bytes_sent"]) == (200, "UT", 1000)
    assert seen(m, "stall") == ["stalling"]


def test_reset_mid_response_ends_the_client_connection_ur_never_retried(m: Mesh) -> None:
    """A reset after the head and 1,000 bytes: the response is committed, so the
    client's connection ends too (it must not take a short body for a whole one),
    the request is logged ``UR``, and no second attempt is made."""
    target = "/cut?rst=1&t=cut"
    raw = request("GET", target, "cut")
    status, got, elapsed, ended = m.run(
        head_then_rest(m.pod.name, sc.vip(sc.CUTTING), PORT, raw), timeout=30
    )
    assert (status, got) == (200, 1000) and ended != "hung", (status, got, ended)
    assert elapsed < 1.0
    entry = logged(m, target)
    assert (entry["status"], entry["response_flags"], entry["attempts"]) == (200, "UR", 1)
    time.sleep(0.2)
    assert len(seen(m, "cut")) == 1


def test_idle_connection_the_upstream_dropped_is_retried_on_a_fresh_one(m: Mesh) -> None:
    """Every reused upstream connection is dropped when the next request arrives on it
    (the stale-pool race, made certain): each request still gets its 200, POSTs too,
    over one client connection, by one more attempt on a new connection."""
    server = m.endpoints["stale"]
    conns_before = len(server.requests), server.connections

    async def run() -> list[int]:
        client = Client(m.pod.name, sc.vip(sc.STALE), PORT)
        statuses = []
        try:
            for i in range(8):
                method = "POST" if i % 2 else "GET"
                # A POST's body follows its head in a second write: the proxy is often
                # still reading it when the dropped attempt fails.
                parts = [b"p" * 500, b"p" * 500] if method == "POST" else []
                headers = (("x-test-id", f"stale-{i}"), ("x-drop-if-reused", "1"))
                resp = await client.send(Req(method, f"/echo?i={i}", headers), chunks=parts)
                statuses.append(resp.status)
        finally:
            client.close()
        return statuses

    assert m.run(run()) == [200] * 8
    ids = Counter(s.header("x-test-id") for s in server.requests[conns_before[0] :])
    # The first goes on a new connection; each later one first meets a dropped reuse.
    assert ids == Counter({"stale-0": 1, **{f"stale-{i}": 2 for i in range(1, 8)}}), ids
    assert server.connections - conns_before[1] == 8
    bodies = [s.body_len for s in server.requests[conns_before[0] :] if s.method == "POST"]
    assert bodies.count(1000) >= 4
    assert m.endpoint_row("stale", f"{sc.ep(31)}:{PORT}")["health"] == "healthy"


def test_five_percent_packet_loss_costs_time_never_a_hang_or_an_unsafe_retry(m: Mesh) -> None:
    """5 % of the packets to and from the endpoints are dropped (iptables statistic in
    the service namespace): every request ends within the 2 s deadline; a failure is a
    503 UF or a 504; a POST never reaches an endpoint twice."""
    for chain, match in (("INPUT", "-d"), ("OUTPUT", "-s")):
        for address in sc.LOSSY_ADDRESSES:
            m.svc.run(
                "iptables-legacy", "-A", chain, "-p", "tcp", match, address,
                "-m", "statistic", "--mode", "random", "--probability", "0.05", "-j", "DROP",
            )  # fmt: skip
    try:

        def build(i: int) -> Req:
            method = "POST" if i % 2 else "GET"
            body = b"b" * 2000 if method == "POST" else b""
            return Req(method, f"/echo?lossy={i}", (("x-test-id", f"lossy-{i}"),), body)

        results = m.load(sc.vip(sc.LOSSY), PORT, 300, 8, build, timeout=60)
        dropped = dropped_packets(m)
    finally:
        for chain in ("INPUT", "OUTPUT"):
            m.svc.run("iptables-legacy", "-F", chain)
    assert dropped >= 20, f"only {dropped} packets dropped: the loss never happened"
    assert len(results) == 300, "the client lost connections to the sidecar"
    slowest = max(r.elapsed for r in results)
    assert slowest <= sc.LOSSY_DEADLINE_S + SLACK, f"a request took {slowest:.2f}s"
    statuses = Counter(r.status for r in results)
    assert set(statuses) <= {200, 503, 504}, statuses
    assert statuses[200] >= 270, statuses
    counts = Counter(
        s.header("x-test-id")
        for name in ("lossy-a", "lossy-b")
        for s in m.endpoints[name].requests
        if s.method == "POST"
    )
    assert len(counts) >= 140 and max(counts.values()) == 1, counts.most_common(3)


def dropped_packets(m: Mesh) -> int:
    """Packets the service namespace's DROP rules matched so far."""
    out = m.svc.run("iptables-legacy", "-L", "-v", "-x", "-n").stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if " DROP " in f" {line} ")
