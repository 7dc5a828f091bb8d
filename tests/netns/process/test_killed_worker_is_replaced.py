"""A worker killed under ``--workers 2`` is replaced, and /metrics stays exact across it.

Through the real sidecar (the mix's services, see ``tests.support.scripted_mix``): traffic
reaches both workers, one is SIGKILLed, the parent forks a replacement that binds its
own SO_REUSEPORT listeners as the starting user and drops to 1337, and serves. Then
counters hold everything sent before and after the kill (the dead worker's counter
files stay), while live gauges count only the two live workers (its gauge files go).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import netns as nt
from tests.support import nsock
from tests.support import sidecar as capture
from tests.support.scripted_mix import (
    DB_DOWN,
    DB_PORT,
    DB_UP,
    OK_BODY,
    access_log,
    http_labels,
    mix_mesh,
    request,
    series,
    tcp_exchange,
    tcp_labels,
    vip,
    wait,
    wait_logged,
)

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not nt.is_root(), reason="needs root")]


def _ids(pid: int, key: str) -> list[int]:
    """``Uid``/``Gid`` of ``pid``: real, effective, saved, filesystem."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _ok_until(ns: str, proxy: capture.Proxy, done: set[int], sent: int) -> int:
    """GETs to ``ok`` until every pid in ``done`` served one; returns the total sent."""
    start = sent
    while True:
        assert request(ns, 1) == (200, OK_BODY)
        sent += 1
        wait_logged(proxy, "ok", sent)
        served = {e["worker"] for e in access_log(proxy) if e.get("upstream_cluster") == "ok"}
        if done <= served:
            return sent
        assert sent - start < 40, f"workers {done - served} never served"


def _workers(proxy: capture.Proxy) -> set[int]:
    return {e["worker"] for e in access_log(proxy)}


def _gauges(proxy: capture.Proxy) -> dict[str, float]:
    found = series(proxy, "mesh_upstream_endpoints")
    return {dict(ls)["service"]: v for ls, v in found.items() if dict(ls)["health"] == "healthy"}


@pytest.mark.slow
def test_killed_worker_is_replaced_and_metrics_stay_exact(tmp_path: Path) -> None:
    with mix_mesh(tmp_path, "--workers", "2") as (link, proxy):
        pod, parent = link.a.name, proxy.proc.pid
        # Before: enough traffic that both workers served (connections spread by hash).
        sent = 0
        while len(_workers(proxy)) < 2:
            sent = _ok_until(pod, proxy, set(), sent)
            assert sent < 40, "one worker did all the work"
        first = _workers(proxy)
        assert {_parent_of(pid) for pid in first} == {parent}
        assert [tcp_exchange(pod, vip(5), DB_PORT, DB_UP) for _ in range(2)] == [DB_DOWN] * 2
        wait(lambda: _gauges(proxy).get("flaky") == 4.0, "both workers' endpoint gauges")
        victim = min(first)
        survivor = max(first)
        lines_before = len(proxy.log().splitlines())

        # One worker dies the hard way: no cleanup of its own runs.
        os.kill(victim, signal.SIGKILL)
        pattern = (
            rf"worker \d \(pid {victim}\) killed by SIGKILL unexpectedly: replaced by pid (\d+)"
        )
        wait(lambda: re.search(pattern, proxy.log()) is not None, "the parent's replacement")
        match = re.search(pattern, proxy.log())
        assert match is not None
        replacement = int(match.group(1))
        assert replacement not in first and _parent_of(replacement) == parent

        # After: the replacement serves, as 1337 through and through; the parent holds.
        sent = _ok_until(pod, proxy, {replacement, survivor}, sent)
        assert _ids(replacement, "Uid") == [capture.PROXY_UID] * 4
        assert _ids(parent, "Uid")[:2] == [capture.PROXY_UID] * 2
        assert [tcp_exchange(pod, vip(5), DB_PORT, DB_UP) for _ in range(3)] == [DB_DOWN] * 3
        closed = "istio_tcp_connections_closed_total"
        wait(lambda: proxy.total(closed) >= 5, "5 closed tcp connections")
        time.sleep(1.2)  # every live worker sampled its gauges at least once more
        for _ in range(4):  # whichever worker answers the scrape
            ok = http_labels("ok", 200)
            assert series(proxy, "istio_requests_total") == {ok: float(sent)}
            assert series(proxy, "istio_request_duration_milliseconds_count") == {ok: float(sent)}
            assert series(proxy, "istio_response_bytes_sum") == {ok: float(sent * OK_BODY)}
            db = tcp_labels("db", "v2")
            assert series(proxy, "istio_tcp_connections_opened_total") == {db: 5.0}
            assert series(proxy, closed) == {db: 5.0}
            assert series(proxy, "istio_tcp_received_bytes_total") == {db: 5.0 * DB_UP}
            assert series(proxy, "istio_tcp_sent_bytes_total") == {db: 5.0 * DB_DOWN}
            # two live workers, not three: the dead one's livesum files are gone
            assert _gauges(proxy) == {"ok": 2.0, "fail": 2.0, "flaky": 4.0, "ejecting": 4.0,
                                      "db": 2.0}  # fmt: skip
        assert {e["worker"] for e in access_log(proxy)} == {victim, survivor, replacement}
        assert proxy.proc.poll() is None
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.proc.wait(10) == 0, proxy.log()
        after = proxy.log().splitlines()[lines_before:]
        assert sum("unexpectedly" in line for line in after) == 1  # SIGTERM restarted nothing


def test_workers_that_cannot_bind_crash_loop_and_the_parent_exits_1(tmp_path: Path) -> None:
    with nt.netns("pm") as pod:
        blocker = nsock.socket_in(pod.name)  # another program holds the admin port
        try:
            blocker.bind(("127.0.0.1", 15000))
            blocker.listen()
            started = time.monotonic()
            err = tmp_path / "proxy.err"
            with err.open("wb") as e:
                proc = pod.python(
                    "-m", "proxy", "run", "--workers", "2", "--uid", str(capture.PROXY_UID),
                    "--gid", str(capture.PROXY_UID), stdout=subprocess.DEVNULL, stderr=e,
                )  # fmt: skip
            assert proc.wait(15) == 1
            assert time.monotonic() - started < 10  # gave up at once, not after a window
        finally:
            blocker.close()
        log = err.read_text()
    # 2 workers and 2 replacements died; the third death stopped the last replacement,
    # which may or may not have tried to bind by then.
    assert 3 <= log.count("cannot listen on 127.0.0.1:15000") <= 4
    assert log.count("unexpectedly: replaced by pid") == 2
    assert log.count("unexpectedly; workers crash in a loop (2 restarts within 10s)") == 1
