"""Process lifecycle through real interception: SIGTERM drain, and ``--workers 2``."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from proxy.process import cpus
from tests.support import netns as nt
from tests.support import nsock
from tests.support import sidecar as capture

pytestmark = pytest.mark.netns
MiB = 1 << 20


def test_sigterm_lets_transfer_finish_refuses_new_and_exits_0(tmp_path: Path) -> None:
    with capture.mesh("pl", tmp_path, "--drain-timeout", "10s") as (link, proxy):
        size = 16 * MiB
        with nsock.serving(link.b.name, link.b4, 0, nsock.digest_then_reply(size, 2)) as srv:
            sent = nsock.pattern(1, size)
            conn = nsock.connect(link.a.name, link.b4, srv.port, timeout=30)
            conn.sendall(sent[: size // 2])  # the transfer is under way...
            proxy.proc.send_signal(signal.SIGTERM)  # ...when the pod is told to stop
            deadline = time.monotonic() + 5
            while nsock.http_get(link.a.name, "127.0.0.1", 15020, "/healthz/ready")[0] != 503:
                assert time.monotonic() < deadline, "never turned not-ready"
                time.sleep(0.02)
            with pytest.raises(ConnectionRefusedError):
                nsock.connect(link.a.name, link.b4, srv.port).close()
            conn.sendall(sent[size // 2 :])
            conn.shutdown(socket.SHUT_WR)
            got = nsock.recv_all(conn)
            conn.close()
        assert got[:32] == hashlib.sha256(sent).digest()
        assert hashlib.sha256(got[32:]).digest() == hashlib.sha256(nsock.pattern(2, size)).digest()
        assert proxy.proc.wait(10) == 0, proxy.log()
        assert "draining" in proxy.log()


def test_two_workers_both_serve_and_metrics_are_merged(tmp_path: Path) -> None:
    with capture.mesh("pl", tmp_path, "--workers", "2") as (link, proxy):
        count = 40
        with nsock.serving(link.b.name, link.b4, 0, nsock.whoami) as srv:
            for _ in range(count):
                conn = nsock.connect(link.a.name, link.b4, srv.port)
                assert conn.recv(200).split()[1] == str(srv.port).encode()
                conn.close()
        deadline = time.monotonic() + 5
        while proxy.total("istio_tcp_connections_closed_total") < count:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        entries = proxy.access_log(at_least=count)
        assert len(entries) == count
        assert len({e["worker"] for e in entries}) == 2, "one worker did all the work"
        if cpus.current().usable >= 2:
            assert "take turns on the same CPUs" not in proxy.log()
        # Whichever worker answers the scrape, it reports the sum over both.
        for _ in range(6):
            assert proxy.total("istio_tcp_connections_opened_total") == count
            assert proxy.total("istio_tcp_connections_closed_total") == count
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.proc.wait(10) == 0, proxy.log()


def test_two_workers_pinned_to_one_cpu_start_with_a_warning_and_serve(tmp_path: Path) -> None:
    def one_cpu() -> None:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    with capture.mesh("pl", tmp_path, "--workers", "2", preexec=one_cpu) as (link, proxy):
        with nsock.serving(link.b.name, link.b4, 0, nsock.whoami) as srv:
            conn = nsock.connect(link.a.name, link.b4, srv.port)
            assert conn.recv(200).split()[1] == str(srv.port).encode()
            conn.close()
        assert "--workers 2 with CPUs 1 usable (affinity 1," in proxy.log()
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.proc.wait(10) == 0, proxy.log()


TCP_SERVICE = """
services:
  - name: db
    port: 7000
    addresses: [10.77.200.20]
    protocol: tcp
    endpoints:
      - {address: 10.77.0.1, port: 17001}
      - {address: 10.77.0.1, port: 17002}
"""


def test_config_tcp_service_goes_to_its_endpoints_round_robin(tmp_path: Path) -> None:
    config = tmp_path / "mesh.yaml"
    config.write_text(TCP_SERVICE)
    with capture.mesh("pl", tmp_path, "--config", str(config)) as (link, proxy):
        with (
            nsock.serving(link.b.name, link.b4, 17001, nsock.whoami),
            nsock.serving(link.b.name, link.b4, 17002, nsock.whoami),
        ):
            ports = []
            for _ in range(4):
                conn = nsock.connect(link.a.name, "10.77.200.20", 7000)  # the service VIP
                ports.append(int(conn.recv(200).split()[1]))
                conn.close()
        assert sorted(ports) == [17001, 17001, 17002, 17002]
        assert ports[0] != ports[1]
        assert proxy.total("istio_tcp_connections_opened_total", destination_service_name="db") == 4
        status, body = nsock.http_get(link.a.name, "127.0.0.1", 15000, "/config_dump")
        dump = json.loads(body)
        assert status == 200 and dump["config"]["services"][0]["addresses"] == ["10.77.200.20"]
        assert dump["version"] != "none"


def test_bad_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "mesh.yaml"
    config.write_text(TCP_SERVICE.replace("port: 17002", "port: 99999"))
    proc = subprocess.run(
        [nt.PYTHON, "-m", "proxy", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        env=nt.python_env(),
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "services[0].endpoints[1].port" in proc.stderr


def test_admin_drain_stops_every_worker_accepting(tmp_path: Path) -> None:
    with capture.mesh("pl", tmp_path, "--workers", "2") as (link, proxy):
        with nsock.serving(link.b.name, link.b4, 0, nsock.whoami) as srv:
            held = nsock.connect(link.a.name, link.b4, srv.port)  # open across the drain
            assert held.recv(200).split()[1] == str(srv.port).encode()
            status, _ = nsock.http_get(link.a.name, "127.0.0.1", 15000, "/drain", "POST")
            assert status == 200
            deadline = time.monotonic() + 5
            while nsock.http_get(link.a.name, "127.0.0.1", 15020, "/healthz/ready")[0] != 503:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            time.sleep(0.2)  # the other worker got the signal through the parent too
            for _ in range(8):  # SO_REUSEPORT would spread these over both workers
                with pytest.raises(ConnectionRefusedError):
                    nsock.connect(link.a.name, link.b4, srv.port).close()
            assert [nsock.http_get(link.a.name, "127.0.0.1", 15020, "/healthz/ready")[0]
                    for _ in range(6)] == [503] * 6  # fmt: skip
            held.close()
        assert proxy.proc.poll() is None  # drained, not exited
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.proc.wait(10) == 0, proxy.log()
