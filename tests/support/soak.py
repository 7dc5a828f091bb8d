"""``scripts/soak``: the real sidecar under steady captured traffic for minutes, and a verdict.

A pod namespace gets the interception rules and ``mesh-proxy run --config`` (a
ConfigMap-style file); a service namespace serves HTTP (three endpoints of ``web``)
and a TCP echo. From the pod, ``soak_traffic`` sends keep-alive and new-connection
HTTP to the service VIP and TCP streams checked by digest; every period (a minute,
or a sixth of a ``--seconds`` run) the config changes, alternately by PUT /config
and by the file, between two endpoint sets. Each period prints one line: requests,
streams, errors, lost bytes, and the proxy's RSS and open fds.

It fails (exit 1) on any error or lost byte, on a period that carried under 80 % of
the planned requests, and on growth after warm-up: the first period is warm-up, the
second is the baseline, and the largest RSS of the last three periods may exceed the
baseline's by at most 10 % or 8 MiB (whichever is more), open fds by at most 16.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from proxy.config import loads_config
from tests.support import netns as nt
from tests.support import nsock
from tests.support import sidecar as capture
from tests.support.admin_client import config_dump, put_config
from tests.support.config_docs import ConfigMapDir
from tests.support.soak_traffic import Counters, Rates, Traffic

VIP, SVC, ECHO_PORT = ("10.96.0.80", 80), "10.77.0.1", 19000
ENDPOINT_SETS = ((18001, 18002), (18001, 18002, 18003))
RSS_SLACK_KIB, RSS_SLACK_SHARE, FD_SLACK = 8 * 1024, 0.10, 16
MIN_SHARE = 0.8  # of the planned requests per period


def web(ports: Sequence[int]) -> str:
    eps = [{"address": SVC, "port": p} for p in ports]
    service = {"name": "web", "port": VIP[1], "addresses": [VIP[0]], "protocol": "http"}
    return json.dumps({"services": [{**service, "endpoints": eps}]})


@dataclass(frozen=True)
class Sample:
    period: int
    counts: Counters
    rss_kib: int
    fds: int
    proxy_errors: int  # ERROR lines and tracebacks the proxy logged in the period
    change: str  # the config change made at the end of the period


def usage(pids: Sequence[int]) -> tuple[int, int]:
    """Summed VmRSS (KiB) and open fds of ``pids`` (the proxy and any workers)."""
    rss = fds = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue  # gone meanwhile
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
    return rss, fds


def failures(samples: Sequence[Sample], planned: float) -> list[str]:
    """Why the soak fails (empty: it passed); the rule is the module docstring's."""
    out = []
    for s in samples:
        if s.counts.errors:
            out.append(f"period {s.period}: {len(s.counts.errors)} errors: {s.counts.errors[:3]}")
        if s.counts.lost_bytes:
            out.append(f"period {s.period}: {s.counts.lost_bytes} bytes lost")
        if s.proxy_errors:
            out.append(f"period {s.period}: the proxy logged {s.proxy_errors} errors")
        if s.counts.requests < MIN_SHARE * planned:
            out.append(f"period {s.period}: {s.counts.requests} requests of {planned:.0f} planned")
    if len(samples) >= 3:
        base, tail = samples[1], samples[max(2, len(samples) - 3) :]
        rss_cap = base.rss_kib + max(RSS_SLACK_KIB, int(RSS_SLACK_SHARE * base.rss_kib))
        if max(s.rss_kib for s in tail) > rss_cap:
            out.append(f"RSS grew: {[s.rss_kib for s in samples]} KiB (cap {rss_cap})")
        if max(s.fds for s in tail) > base.fds + FD_SLACK:
            out.append(f"open fds grew: {[s.fds for s in samples]} (cap {base.fds + FD_SLACK})")
    return out


HEADER = (
    "period  requests  new-conn  p99-ms  streams  stream-MiB  errors  lost-B  RSS-MiB  fds  change"
)


def row(s: Sample) -> str:
    lat = sorted(s.counts.latencies)
    p99 = lat[int(0.99 * (len(lat) - 1))] * 1000 if lat else 0.0
    errors = len(s.counts.errors) + s.proxy_errors
    return (
        f"{s.period:>6}  {s.counts.requests:>8}  {s.counts.new_conns:>8}  {p99:>6.1f}  "
        f"{s.counts.streams:>7}  {s.counts.stream_bytes / 2**20:>10.1f}  {errors:>6}  "
        f"{s.counts.lost_bytes:>6}  {s.rss_kib / 1024:>7.1f}  {s.fds:>3}  {s.change}"
    )


class Soak:
    def __init__(self, link: nt.Link, proxy: capture.Proxy, cm: ConfigMapDir) -> None:
        self.link, self.proxy, self.cm = link, proxy, cm
        self.logged = 0  # proxy log lines already looked at

    def proxy_errors(self) -> int:
        lines = self.proxy.log().splitlines()
        new, self.logged = lines[self.logged :], len(lines)
        return sum(" ERROR " in line or line.startswith("Traceback") for line in new)

    def change(self, period: int) -> str:
        """Period ``period``'s config change: PUT on odd periods, the file on even ones."""
        ports = ENDPOINT_SETS[period % 2]
        text, ns = web(ports), self.link.a.name
        want = loads_config(text).version[:12]
        if period % 2:
            status, answer = put_config(ns, text)
            if status != 200 or answer.get("result") != "ok":
                return f"PUT failed: {status} {answer}"
            how = "PUT"
        else:
            self.cm.update(text)
            how = "file"
        deadline = time.monotonic() + 5
        while config_dump(ns)["version"] != want:
            if time.monotonic() > deadline:
                return f"{how} {len(ports)} endpoints NOT in force after 5 s"
            time.sleep(0.05)
        return f"{how} -> {len(ports)} endpoints"

    async def sample(
        self, traffic: Traffic, periods: int, period: float, out: TextIO
    ) -> list[Sample]:
        samples: list[Sample] = []
        start = time.monotonic()
        for n in range(1, periods + 1):
            await asyncio.sleep(max(0.0, start + n * period - time.monotonic()))
            counts = traffic.counters.take()
            rss, fds = usage(self.link.a.pids())
            change = await asyncio.to_thread(self.change, n) if n < periods else ""
            if "NOT" in change or "failed" in change:
                counts.errors.append(change)
            samples.append(Sample(n, counts, rss, fds, self.proxy_errors(), change))
            print(row(samples[-1]), file=out, flush=True)
        return samples


def run(seconds: float, period: float, rates: Rates, workers: int, out: TextIO) -> int:
    periods = max(3, round(seconds / period))
    planned = (rates.keepalive_rps + rates.new_conn_rps) * period
    print(
        f"soak: {periods} periods of {period:g} s; {rates.keepalive_rps:g} req/s keep-alive "
        f"({rates.keepalive_conns} conns), {rates.new_conn_rps:g} new conns/s, "
        f"{rates.streams_per_s:g} TCP streams/s of {rates.stream_size // 1024} KiB",
        file=out,
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    tmp.chmod(0o755)  # the proxy (uid 1337) reads the config file in here
    try:
        cm = ConfigMapDir(tmp, web(ENDPOINT_SETS[0]))
        args = ("--config", cm.path, "--access-log", "off", "--workers", str(workers))
        with capture.mesh("sk", tmp, *args) as (link, proxy):
            ports = sorted({p for s in ENDPOINT_SETS for p in s})
            upstream = link.b.python(
                "-m", "tests.support.http_server", "--reply", "port", SVC, *map(str, ports),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
            assert upstream.stdout is not None and upstream.stdout.readline() == b"ready\n"
            with nsock.serving(link.b.name, SVC, ECHO_PORT, nsock.echo):
                traffic = Traffic(link.a.name, VIP, (SVC, ECHO_PORT), rates)
                soak = Soak(link, proxy, cm)
                print(HEADER, file=out, flush=True)

                async def both() -> list[Sample]:
                    load = asyncio.ensure_future(traffic.run(periods * period))
                    samples = await soak.sample(traffic, periods, period, out)
                    await load
                    return samples

                samples = asyncio.run(both())
            alive = proxy.proc.poll() is None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    found = failures(samples, planned) + ([] if alive else ["the proxy exited"])
    for line in found:
        print(f"FAIL {line}", file=out)
    total = sum(s.counts.requests for s in samples)
    streams = sum(s.counts.streams for s in samples)
    print(
        f"soak: {'FAILED' if found else 'passed'}: {total} requests, {streams} TCP streams, "
        f"{sum(len(s.counts.errors) for s in samples)} errors, "
        f"{sum(s.counts.lost_bytes for s in samples)} bytes lost",
        file=out,
    )
    return 1 if found else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n")[0])
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, default=10.0, help="one period per minute")
    length.add_argument("--seconds", type=float, help="a short run: six periods")
    parser.add_argument("--workers", type=int, default=1, help="mesh-proxy run --workers")
    parser.add_argument("--rps", type=float, default=Rates.keepalive_rps, help="keep-alive")
    args = parser.parse_args(argv)
    if not nt.is_root():
        print("scripts/soak: run as root (network namespaces, iptables)", file=sys.stderr)
        return 2
    if args.seconds is not None:
        seconds, period = args.seconds, max(5.0, args.seconds / 6)
    else:
        seconds, period = args.minutes * 60, 60.0
    return run(seconds, period, Rates(keepalive_rps=args.rps), args.workers, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
