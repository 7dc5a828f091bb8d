"""The pod under test: interception rules, the proxy as uid 1337, a service behind veth.

``install_capture`` is the ONE place that installs the interception rules, through
the real interceptor code. ``Pod`` starts ``python -m proxy run`` in the pod
namespace (as root, dropping to 1337) and exposes its metrics.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from proxy.observe.accesslog import FLUSH_INTERVAL
from tests.support import netns as nt
from tests.support import nsock

PROXY_UID = 1337


def install_capture(pod: nt.Netns) -> None:
    """``mesh-interceptor install --backend legacy`` in ``pod`` (both families, ::6 on lo)."""
    pod.run(
        nt.PYTHON, "-m", "interceptor", "install", "--backend", "legacy",
        env=nt.python_env(), timeout=30,
    )  # fmt: skip


@dataclass
class Proxy:
    ns: nt.Netns
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, body = nsock.http_get(self.ns.name, "127.0.0.1", 15020, "/metrics")
        assert status == 200
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(body.decode()):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def total(self, name: str, **labels: str) -> float:
        """Sum of ``name`` over every series whose labels include ``labels``."""
        return sum(
            v
            for (n, ls), v in self.metrics().items()
            if n == name and all((k, labels[k]) in ls for k in labels)
        )

    def log(self) -> str:
        return self.stderr.read_text()

    def access_log(self, at_least: int = 0, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The access log so far, once every line written before the call is flushed.

        Lines leave ``FLUSH_INTERVAL`` after they were logged: this waits that long, or
        until ``at_least`` lines are there (at most ``timeout``).
        """
        deadline = time.monotonic() + timeout
        if at_least == 0:
            time.sleep(FLUSH_INTERVAL * 2)
        while True:
            entries = [json.loads(x) for x in self.stdout.read_text().splitlines()]
            if len(entries) >= at_least or time.monotonic() > deadline:
                return entries
            time.sleep(0.05)


def start_proxy(
    ns: nt.Netns, tmp: Path, *args: str, preexec: Callable[[], None] | None = None
) -> Proxy:
    """``mesh-proxy run`` in ``ns``; ``preexec`` runs in the child first (e.g. a
    ``setrlimit``, inherited by the proxy)."""
    out, err = tmp / "proxy.out", tmp / "proxy.err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = ns.python(
            "-m",
            "proxy",
            "run",
            "--uid",
            str(PROXY_UID),
            "--gid",
            str(PROXY_UID),
            *args,
            stdout=o,
            stderr=e,
            preexec_fn=preexec,
        )
    proxy = Proxy(ns, proc, out, err)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"proxy exited {proc.returncode}: {proxy.log()}"
        with contextlib.suppress(OSError):
            if nsock.http_get(ns.name, "127.0.0.1", 15020, "/healthz/ready")[0] == 200:
                return proxy
        time.sleep(0.05)
    raise TimeoutError(f"proxy not ready: {proxy.log()}")


@contextlib.contextmanager
def mesh(
    prefix: str, tmp: Path, *proxy_args: str, preexec: Callable[[], None] | None = None
) -> Iterator[tuple[nt.Link, Proxy]]:
    """pod (rules + proxy) ⇄ svc; yields the link and the running proxy."""
    with nt.netns(prefix) as pod, nt.netns(prefix) as svc:
        link = nt.connect(pod, svc)
        install_capture(pod)
        proxy = start_proxy(pod, tmp, *proxy_args, preexec=preexec)
        yield link, proxy
