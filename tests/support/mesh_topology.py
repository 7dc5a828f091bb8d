"""One pod (interceptor rules + ``python -m proxy run --config``) and one service
namespace.

Service endpoints are extra addresses on the service namespace's ``lo`` (the pod reaches
them through its default route), each served by the one test server
(``tests.support.http_server``) on a background event loop that the tests drive.
Addresses listed as ``refusing`` exist but have no listener (the kernel answers RST).
Optionally dnsmasq serves a hosts file in the service namespace and the pod gets its own
resolv.conf (``/etc/netns/<pod>/resolv.conf``, bind-mounted by ``ip netns exec``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

from proxy.observe.accesslog import FLUSH_INTERVAL
from tests.support import netns as nt
from tests.support import nsock
from tests.support import pod_clients as client
from tests.support import sidecar as capture
from tests.support.http_server import HttpServer
from tests.support.loop_thread import LoopThread

T = TypeVar("T")
DNS_IP = "10.77.0.1"  # the service namespace's end of the veth


@dataclass
class Mesh:
    pod: nt.Netns
    svc: nt.Netns
    proxy: capture.Proxy
    loop: LoopThread
    endpoints: dict[str, HttpServer]
    workdir: Path
    dns_hosts: Path | None = None
    dnsmasq: subprocess.Popen[bytes] | None = None
    stopped: bool = False  # the test stopped the proxy on purpose (SIGTERM)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return self.loop.run(coro, timeout)

    def once(self, host: str, port: int, req: client.Req) -> client.Result:
        return self.run(client.once(self.pod.name, host, port, req))

    def load(
        self,
        host: str,
        port: int,
        n: int,
        conns: int,
        build: Callable[[int], client.Req],
        timeout: float = 60,
    ) -> list[client.Result]:
        return self.run(client.load(self.pod.name, host, port, n, conns, build), timeout)

    def clusters(self) -> dict[str, Any]:
        status, body = nsock.http_get(self.pod.name, "127.0.0.1", 15000, "/clusters")
        assert status == 200, body
        data = json.loads(body)
        assert isinstance(data, dict)
        return data

    def endpoint_row(self, service: str, address: str) -> dict[str, Any]:
        """The /clusters row of ``address`` ("ip:port") in cluster ``service``."""
        for row in self.clusters_of(service):
            if row.get("address") == address:
                return row
        raise AssertionError(f"no endpoint {address} of {service!r} in /clusters")

    def clusters_of(self, service: str) -> list[dict[str, Any]]:
        """The /clusters endpoint rows of cluster ``service``."""
        data = self.clusters()
        for cluster in data.get("clusters", []):
            if cluster.get("name") == service:
                rows = cluster.get("endpoints", [])
                assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
                return rows
        raise AssertionError(f"no cluster {service!r} in /clusters: {data}")

    def address_of(self, endpoint: str) -> str:
        """An endpoint's "ip:port", as /clusters names it."""
        server = self.endpoints[endpoint]
        return f"{server.host}:{server.port}"

    def metric(self, name: str, **labels: str) -> float:
        return self.proxy.total(name, **labels)

    def wait_metric(self, name: str, at_least: float, timeout: float = 3.0, **labels: str) -> float:
        """``name`` once it reaches ``at_least`` (some gauges are sampled once a second),
        or its value when ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        while (value := self.metric(name, **labels)) < at_least and time.monotonic() < deadline:
            time.sleep(0.1)
        return value

    def has_metric(self, name: str) -> bool:
        """Declared on /metrics (a labelled counter may have no sample yet)."""
        status, body = nsock.http_get(self.pod.name, "127.0.0.1", 15020, "/metrics")
        assert status == 200
        return any(
            f.name in (name, name.removesuffix("_total"))
            for f in text_string_to_metric_families(body.decode())
        )

    def access_log(self) -> list[dict[str, Any]]:
        time.sleep(FLUSH_INTERVAL * 2)  # lines written so far are flushed by then
        out = []
        for line in self.proxy.stdout.read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    out.append(entry)
        return out

    def set_dns(self, name: str, *addresses: str) -> None:
        """Rewrite dnsmasq's hosts file and make it re-read it (SIGHUP)."""
        assert self.dns_hosts is not None and self.dnsmasq is not None
        self.dns_hosts.write_text("".join(f"{a} {name}\n" for a in addresses))
        self.dnsmasq.send_signal(signal.SIGHUP)


def flags_in(entry: Mapping[str, Any]) -> set[str]:
    """Envoy-style flags an access-log entry carries, under any key naming flags."""
    found: set[str] = set()
    for key, value in entry.items():
        if "flag" in key.lower() and isinstance(value, str):
            found.update(value.split(","))
    return found


def _start_dnsmasq(svc: nt.Netns, hosts: Path) -> subprocess.Popen[bytes]:
    proc = svc.popen(
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
        "--no-hosts", f"--addn-hosts={hosts}", f"--listen-address={DNS_IP}",
        "--bind-interfaces", "--port=53", "--user=root", "--group=root", "--pid-file=",
        "--local-ttl=0",
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"dnsmasq exited: {proc.stderr.read() if proc.stderr else ''!r}"
        if f"{DNS_IP}:53" in svc.run("ss", "-Hlun", check=False).stdout:
            return proc
        time.sleep(0.05)
    raise TimeoutError("dnsmasq did not start")


@contextlib.contextmanager
def mesh(
    prefix: str,
    config: Mapping[str, Any],
    endpoints: Sequence[tuple[str, str, int]],
    *,
    codec: str,
    refusing: Sequence[str] = (),
    app_port: int | None = None,
    dns: Mapping[str, str] | None = None,
    proxy_args: Sequence[str] = ("--connect-timeout", "1s"),
) -> Iterator[Mesh]:
    """``endpoints`` are (name, ip, port) in the service namespace; ``app_port`` adds an
    ``app`` endpoint inside the pod; ``dns`` maps host names to addresses for dnsmasq;
    the sidecar runs ``--http-codec codec``."""
    workdir = Path(tempfile.mkdtemp(prefix="pt-l7-"))
    workdir.chmod(0o755)  # the proxy (uid 1337) reads its config from here
    etc: Path | None = None
    loop = LoopThread()
    started: list[HttpServer] = []
    try:
        with nt.netns(prefix) as pod, nt.netns(prefix) as svc:
            nt.connect(pod, svc)
            capture.install_capture(pod)
            for ip in sorted({ip for _, ip, _ in endpoints} | set(refusing)):
                svc.run("ip", "addr", "add", f"{ip}/32", "dev", "lo")
            dnsmasq = hosts = None
            if dns is not None:
                hosts = workdir / "hosts"
                hosts.write_text("".join(f"{a} {n}\n" for n, a in dns.items()))
                dnsmasq = _start_dnsmasq(svc, hosts)
                etc = Path("/etc/netns") / pod.name
                etc.mkdir(parents=True)
                (etc / "resolv.conf").write_text(
                    f"nameserver {DNS_IP}\noptions timeout:1 attempts:2\n"
                )
            install_ns = [(name, svc.name, ip, port) for name, ip, port in endpoints]
            if app_port is not None:
                install_ns.append(("app", pod.name, "0.0.0.0", app_port))
            servers = {name: HttpServer(name, ns, ip, port) for name, ns, ip, port in install_ns}
            for server in servers.values():
                loop.run(server.start())
                started.append(server)
            conf = workdir / "mesh.json"
            conf.write_text(json.dumps(config, indent=2))
            conf.chmod(0o644)
            proxy = capture.start_proxy(
                pod, workdir, "--config", str(conf), "--http-codec", codec, *proxy_args
            )
            topo = Mesh(pod, svc, proxy, loop, servers, workdir, hosts, dnsmasq)
            yield topo
            if not topo.stopped:
                assert proxy.proc.poll() is None, f"the proxy died: {proxy.log()[-3000:]}"
            # Misbehaving endpoints are the proxy's daily bread, never a crash in its log.
            assert "Traceback" not in proxy.log(), proxy.log()[-3000:]
    finally:
        for server in started:
            with contextlib.suppress(OSError, TimeoutError, RuntimeError):
                loop.run(server.close(), timeout=10)
        loop.stop()
        if etc is not None:
            shutil.rmtree(etc, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.rmdir("/etc/netns")
        shutil.rmtree(workdir, ignore_errors=True)
