"""An endpoint SIGKILLed under steady load, through the running sidecar.

Three endpoints, round robin, retries on (connect-failure, refused, reset, 503); the
victim is the test server in a child process of its own, so it can die the hard way:
its connections vanish with whatever request was on them. Clients see only 200s; the
victim is ejected, probed while still dead (and ejected again), and once it is
restarted on the same address, a probe readmits it and it serves its share again.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from tests.support import fault_scenarios as sc
from tests.support.l7_scenarios import PORT
from tests.support.mesh_topology import Mesh, mesh
from tests.support.pod_clients import Req, Result
from tests.support.steady_load import SteadyLoad, wait_until

VICTIM_BODY = f"port={PORT}".encode()  # what the child test server answers (``--reply port``)
VICTIM_ROW = f"{sc.VICTIM}:{PORT}"


@pytest.fixture(scope="module")
def m(codec: str) -> Iterator[Mesh]:
    with mesh("pk", sc.KILL_CONFIG, sc.KILL_ENDPOINTS, codec=codec, refusing=[sc.VICTIM]) as topo:
        yield topo


def start_victim(m: Mesh) -> subprocess.Popen[bytes]:
    proc = m.svc.python(
        "-m", "tests.support.http_server", sc.VICTIM, str(PORT),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    return proc


def build(n: int, i: int) -> Req:
    return Req("GET", f"/k/{n}/{i}", (("x-test-id", f"k-{n}-{i}"),))


def by_victim(result: Result) -> bool:
    return result.response is not None and result.response.body == VICTIM_BODY


def test_sigkilled_endpoint_costs_no_request_is_ejected_and_readmitted(m: Mesh) -> None:
    victim = start_victim(m)
    load = SteadyLoad(m.loop, m.pod.name, sc.vip(sc.KILLABLE), PORT, build, conns=4)
    try:
        wait_until("the victim to serve", lambda: load.count(by_victim) >= 20)
        os.kill(victim.pid, signal.SIGKILL)  # no goodbye: its connections just die
        victim.wait(5)
        killed_at = len(load.results)
        wait_until(
            "ejection", lambda: m.endpoint_row("killable", VICTIM_ROW)["health"] == "ejected"
        )
        ejected = m.endpoint_row("killable", VICTIM_ROW)
        # Dead past one ejection time: probed, the probe refused, ejected again.
        wait_until(
            "a failed probe", lambda: m.endpoint_row("killable", VICTIM_ROW)["ejections"] >= 2
        )
        victim = start_victim(m)  # back, on the same address
        back_at = len(load.results)
        wait_until(
            "readmission", lambda: m.endpoint_row("killable", VICTIM_ROW)["health"] == "healthy"
        )
        wait_until("traffic again", lambda: load.count(by_victim, back_at) >= 20)
    finally:
        results = [t.result for t in load.finish()]
        if victim.stdin is not None:
            victim.stdin.close()  # the child serves until its stdin closes
        victim.wait(5)
    failed = [(r.index, r.status, r.error) for r in results if r.status != 200]
    assert not failed, f"{len(failed)} of {len(results)} failed: {failed[:5]}"
    assert ejected["ejections"] == 1, ejected
    after_kill = results[killed_at:back_at]
    assert after_kill and not any(by_victim(r) for r in after_kill)
    steady = {"victim" if by_victim(r) else r.served_by for r in results[back_at:]}
    assert steady == {"steady-a", "steady-b", "victim"}, steady
    assert m.metric("mesh_outlier_ejections_total", service="killable") >= 2
