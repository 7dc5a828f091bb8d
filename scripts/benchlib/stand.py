"""The bench's namespaces and processes: pod (capture rules), raw (none), svc (nginx).

``pod`` and ``raw`` each reach ``svc`` over their own veth, so the direct baseline
crosses the same kind of link without any rule. The proxy under test runs in ``pod``
pinned to core 1; load generators and nginx are pinned to core 0. Everything is
created through tests/support/netns.py with the ``pb`` prefix and removed when the
ExitStack closes, on failure and Ctrl-C alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from scripts.benchlib import procstat, render
from scripts.benchlib.openloop import OpenLoopResult
from scripts.benchlib.setups import Plan, Setup
from scripts.benchlib.wrk import WrkResult, parse_wrk
from tests.support import netns as nt
from tests.support import nsock
from tests.support.sidecar import install_capture

PREFIX = "pb"
PROXY_CORE = "1"
LOAD_CORE = "0"
BODY = b"meshproxy-bench!\n" * 64  # the 1 KiB response body (text: curl output is read as str)


def counter_total(metrics_text: str, name: str) -> float:
    """Sum of every sample of ``name`` in Prometheus text (0 when the family is absent)."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


class BenchError(RuntimeError):
    """A configuration did not behave (proxy not ready, wrong response, errors)."""


@dataclass
class Running:
    setup: Setup
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid


class Stand:
    def __init__(self, stack: contextlib.ExitStack, work: Path, plan: Plan) -> None:
        self.work, self.plan = work, plan
        self.pod = stack.enter_context(nt.netns(PREFIX))
        self.raw = stack.enter_context(nt.netns(PREFIX))
        self.svc = stack.enter_context(nt.netns(PREFIX))
        self.pod_link = nt.connect(self.pod, self.svc, ipv6=False)
        self.raw_link = nt.connect(self.raw, self.svc, subnet=1, ipv6=False)
        self.upstream = render.Upstream(address=self.pod_link.b4)
        self._files(plan.bulk_mib)
        self._nginx()
        install_capture(self.pod)

    def _files(self, bulk_mib: int) -> None:
        www = self.work / "www"
        www.mkdir(parents=True)
        (www / "1k").write_bytes(BODY)
        with (www / "bulk").open("wb") as f:
            f.truncate(bulk_mib << 20)  # sparse: no disk used, sendfile reads zero pages
        for name in ("tmp-body", "tmp-proxy", "tmp-fastcgi", "tmp-uwsgi", "tmp-scgi"):
            (self.work / name).mkdir()
        for path in (self.work, *self.work.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)

    def _nginx(self) -> None:
        ports = (self.upstream.port, self.upstream.second_port)
        conf = self.write("nginx.conf", render.nginx(str(self.work), ports))
        err = (self.work / "nginx.stderr").open("wb")
        self.svc.popen(
            "taskset", "-c", LOAD_CORE, "nginx", "-c", str(conf), "-p", str(self.work),
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        for port in ports:
            nt.wait_port(self.svc, port, host="0.0.0.0")

    def write(self, name: str, text: str) -> Path:
        path = self.work / name
        path.write_text(text)
        path.chmod(0o644)
        return path

    def client(self, setup: Setup) -> tuple[nt.Netns, str]:
        """Where the load comes from and the address it dials."""
        if setup.proxied:
            return self.pod, self.pod_link.b4
        return self.raw, self.raw_link.b4

    # -- proxies -----------------------------------------------------------------

    def start(self, setup: Setup, config: str | None = None) -> Running | None:
        """Start ``setup``'s proxy (mesh: with ``config`` instead of its own, if given)."""
        if setup.kind == "direct":
            return None
        log = (self.work / f"{setup.name}.stdout").open("wb")
        err = (self.work / f"{setup.name}.stderr").open("wb")
        if setup.kind == "mesh":
            text = config or (
                render.mesh_l4(self.upstream)
                if setup.mode == "tcp"
                else render.mesh_l7(self.upstream)
            )
            # A directory of its own, as a ConfigMap mount is: the watcher's inotify
            # would otherwise wake on every write of the logs next to it.
            (self.work / setup.name).mkdir(exist_ok=True)
            (self.work / setup.name).chmod(0o755)
            conf = self.write(f"{setup.name}/mesh.json", text)
            uid = str(render.PROXY_UID)
            codec = ("--http-codec", setup.codec) if setup.codec else ()
            env = nt.python_env()
            if setup.source:
                env["MESH_PURE"] = "1"  # proxy.compiled: every module from its source
            proc = self.pod.popen(
                "taskset", "-c", PROXY_CORE, nt.PYTHON, "-m", "proxy", "run",
                "--config", str(conf), "--uid", uid, "--gid", uid,
                "--workers", str(setup.workers), "--drain-timeout", "1s", *codec,
                stdout=log, stderr=err, env=env, cwd="/",
            )  # fmt: skip
        elif setup.kind == "bare":
            # The fixed upstream is the one the load dials; as uid 1337 its own upstream
            # connections pass the capture rules, like the proxy's and HAProxy's.
            up = self.upstream
            proc = self.pod.popen(
                "taskset", "-c", PROXY_CORE, nt.PYTHON, "-m", "scripts.benchlib.llhttpbare",
                "--listen", f"0.0.0.0:{render.CAPTURE_PORT}",
                "--upstream", f"{up.address}:{up.port}", "--uid", str(render.PROXY_UID),
                stdout=log, stderr=err, env=nt.python_env(), cwd=str(nt.REPO),
            )  # fmt: skip
        else:
            text = render.haproxy(setup.mode, threads=setup.workers)
            conf = self.write(f"{setup.name}.cfg", text)
            proc = self.pod.popen(
                "taskset", "-c", PROXY_CORE, "haproxy", "-db", "-f", str(conf),
                stdout=log, stderr=err,
            )  # fmt: skip
        running = Running(setup, proc)
        self._wait_ready(running)
        self.check(setup)
        return running

    def http_requests_counted(self) -> float:
        """``istio_requests_total`` summed: > 0 once the proxy handled a request at L7."""
        status, body = nsock.http_get(self.pod.name, "127.0.0.1", 15020, "/metrics")
        if status != 200:
            raise BenchError(f"GET /metrics answered {status}")
        return counter_total(body.decode(), "istio_requests_total")

    def _wait_ready(self, running: Running) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if running.proc.poll() is not None:
                raise BenchError(
                    f"{running.setup.name} exited {running.proc.returncode}: {self.log(running)}"
                )
            with contextlib.suppress(OSError, IndexError, ValueError):
                if running.setup.kind in ("haproxy", "bare"):
                    nt.wait_port(self.pod, render.CAPTURE_PORT, timeout=0.2)
                    return
                if nsock.http_get(self.pod.name, "127.0.0.1", 15020, "/healthz/ready")[0] == 200:
                    return
            time.sleep(0.05)
        raise BenchError(f"{running.setup.name} not ready after 20s: {self.log(running)}")

    def log(self, running: Running) -> str:
        return (self.work / f"{running.setup.name}.stderr").read_text()[-2000:]

    def stop(self, running: Running | None) -> None:
        if running is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(running.pid, signal.SIGTERM)
        try:
            running.proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            for pid in procstat.tree(running.pid, procstat.all_stats()):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            running.proc.wait(timeout=5)
        # The next configuration binds the same port: wait until nothing listens there.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self._listening(render.CAPTURE_PORT):
            time.sleep(0.05)

    def _listening(self, port: int) -> bool:
        out = self.pod.run("ss", "-Htln", f"sport = :{port}", check=False).stdout
        return bool(out.strip())

    # -- load ----------------------------------------------------------------------

    def url(self, setup: Setup, path: str) -> str:
        return f"http://{self.client(setup)[1]}:{self.upstream.port}{path}"

    def check(self, setup: Setup) -> None:
        """One request through the configuration reaches nginx and returns its bytes."""
        ns, _ = self.client(setup)
        got = ns.run(
            "curl", "-sS", "-m", "5", "-D", "/dev/stderr", self.url(setup, "/1k"), check=False
        )
        served = "x-bench-server: svc" in got.stderr.lower()
        if got.returncode != 0 or not served or got.stdout != BODY.decode():
            raise BenchError(
                f"{setup.name}: a request did not reach the server intact "
                f"(curl rc {got.returncode}, headers {got.stderr[:300]!r})"
            )

    def nginx_exchange(self) -> tuple[bytes, bytes]:
        """The request wrk sends for /1k and nginx's whole answer, as raw bytes."""
        up = self.upstream
        request = f"GET /1k HTTP/1.1\r\nHost: {up.address}:{up.port}\r\n\r\n".encode()
        # From the namespace without capture rules, to the same nginx server block.
        s = nsock.connect(self.raw.name, self.raw_link.b4, up.port)
        try:
            s.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    raise BenchError("nginx closed the connection before a response head")
                data += chunk
            head = data.split(b"\r\n\r\n", 1)[0]
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(data) < len(head) + 4 + length:
                chunk = s.recv(65536)
                if not chunk:
                    raise BenchError("nginx closed the connection mid-body")
                data += chunk
        finally:
            s.close()
        return request, data

    def wrk(self, setup: Setup, seconds: float) -> WrkResult:
        ns, _ = self.client(setup)
        got = ns.run(
            "taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{self.plan.connections}",
            f"-d{seconds}s", "--latency", self.url(setup, "/1k"),
            check=False, timeout=seconds + 30,
        )  # fmt: skip
        if got.returncode != 0:
            raise BenchError(f"{setup.name}: wrk exited {got.returncode}: {got.stderr[:300]}")
        return parse_wrk(got.stdout)

    def open_loop(self, setup: Setup, seconds: float) -> OpenLoopResult:
        ns, host = self.client(setup)
        got = ns.run(
            "taskset", "-c", LOAD_CORE, nt.PYTHON, "-m", "scripts.benchlib.openloop",
            "--host", host, "--port", str(self.upstream.port), "--path", "/1k",
            "--rate", str(self.plan.rate), "--seconds", str(seconds),
            "--conns", str(self.plan.connections),
            check=False, timeout=seconds + 30, env=nt.python_env(),
        )  # fmt: skip
        if got.returncode != 0:
            raise BenchError(f"{setup.name}: open-loop generator failed: {got.stderr[-500:]}")
        return OpenLoopResult(**json.loads(got.stdout))

    def bulk(self, setup: Setup) -> float:
        """MiB/s of one transfer of the bulk file (curl to /dev/null)."""
        ns, _ = self.client(setup)
        got = ns.run(
            "taskset", "-c", LOAD_CORE, "curl", "-sS", "-m", "60", "-o", "/dev/null",
            "-w", "%{size_download} %{time_total}", self.url(setup, "/bulk"),
            check=False, timeout=90,
        )  # fmt: skip
        size, seconds = (float(x) for x in got.stdout.split())
        if got.returncode != 0 or size != self.plan.bulk_mib << 20:
            raise BenchError(
                f"{setup.name}: bulk transfer got {size:.0f} bytes: {got.stderr[:300]}"
            )
        return size / (1 << 20) / seconds
