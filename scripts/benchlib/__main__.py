"""``scripts/bench``: one run alternating every configuration, reps interleaved.

Rep r runs every configuration once before rep r+1 starts, so slow drift on a
shared machine (other jobs, thermal) spreads over all of them instead of biasing
one; each figure is the median over reps. ``--profile`` instead samples the
proxy with py-spy under saturated load and prints its top functions.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import proxy
from scripts.benchlib import h11floor, llhttpfloor, procstat, profile, render, report, results
from scripts.benchlib.setups import (
    ALL,
    FULL,
    HAPROXY_HTTP,
    MESH_L4,
    MESH_L7,
    MESH_L7_W2,
    QUICK,
    Plan,
    Setup,
    select,
)
from scripts.benchlib.stand import LOAD_CORE, PROXY_CORE, BenchError, Running, Stand
from tests.support import netns as nt

PINNING = (
    f"proxy pinned to core {PROXY_CORE}; "
    f"wrk, the open-loop generator, curl and nginx to core {LOAD_CORE}"
)
BULK_NOTE = (
    "bulk: direct has curl and nginx (and their softirqs) sharing core 0, so a proxy on "
    "core 1 can beat it; compare bulk against HAProxy tcp, not direct"
)


def measure(stand: Stand, setup: Setup, plan: Plan, rep: int) -> results.Sample:
    running = stand.start(setup)
    try:
        stand.wrk(setup, plan.warmup_s)
        c0 = _cpu(running)
        sat = stand.wrk(setup, plan.saturate_s)
        c1 = _cpu(running)
        http0 = stand.http_requests_counted() if setup.kind == "mesh" else None
        ol = stand.open_loop(setup, plan.open_loop_s)
        c2 = _cpu(running)
        http1 = stand.http_requests_counted() if setup.kind == "mesh" else None
        bulk = stand.bulk(setup) if setup.bulk else None
        rss = procstat.peak_rss_mib(running.pid) if running else None
    finally:
        stand.stop(running)
    figures: dict[str, float | None] = {
        "rps": sat.rps,
        "wrk_p50_ms": sat.p50_ms,
        "wrk_p99_ms": sat.p99_ms,
        "wrk_errors": float(sat.errors),
        "ol_p50_ms": ol.p50_ms,
        "ol_p99_ms": ol.p99_ms,
        "ol_errors": float(ol.sent - ol.ok),
        "cpu_ms_per_1k": None if c0 is None or c1 is None else (c1 - c0) * 1000.0 / sat.requests,
        "cpu_ms_per_1k_at_rate": None if c1 is None or c2 is None else (c2 - c1) * 1000.0 / ol.sent,
        "rss_mib": rss,
        "bulk_mib_s": bulk,
        # Share of the open-loop requests the proxy counted as HTTP requests (L7 engaged).
        "ol_l7_share": None if http0 is None or http1 is None else (http1 - http0) / ol.sent,
    }
    return results.Sample(setup.name, rep, figures)


REST_SERVICES = 100
REST_SETTLE_S = 2.0
IDLE_S = 10.0  # seconds of nothing over which an idle sidecar's CPU is measured


def idle_cpu_us_per_s(pid: int, seconds: float = IDLE_S) -> float:
    """CPU the process tree spends per second of nothing to do."""
    before = procstat.cpu_ns(pid)
    time.sleep(seconds)
    return (procstat.cpu_ns(pid) - before) / 1000.0 / seconds


def rest_memory(stand: Stand) -> dict[str, float]:
    """At rest with a 100-service config: resident memory (one worker, and two workers)
    and the CPU an idle sidecar spends, beside an idle HAProxy."""
    text = render.mesh_many(stand.upstream, REST_SERVICES)
    out: dict[str, float] = {}
    haproxy = stand.start(HAPROXY_HTTP)
    assert haproxy is not None
    try:
        time.sleep(REST_SETTLE_S)
        out["idle_cpu_us_s_haproxy"] = idle_cpu_us_per_s(haproxy.pid)
    finally:
        stand.stop(haproxy)
    for setup in (MESH_L7, MESH_L7_W2):
        running = stand.start(setup, config=text)
        assert running is not None
        try:
            time.sleep(REST_SETTLE_S)
            rss = procstat.rss_mib_by_pid(running.pid)
            if setup.workers == 1:
                out["idle_cpu_us_s"] = idle_cpu_us_per_s(running.pid)
        finally:
            stand.stop(running)
        if setup.workers == 1:
            out["rest_rss_mib_1w"] = rss[running.pid]
        else:
            out["rest_rss_mib_worker_max"] = max(v for p, v in rss.items() if p != running.pid)
            out["rest_rss_mib_parent"] = rss[running.pid]
    return out


def _codec_floors(stand: Stand) -> dict[str, float]:
    """Each parser's own CPU per exchange, in microseconds (= CPU-ms per 1,000), on the
    proxy core: ``h11`` and ``llhttp`` alone."""
    request, response = stand.nginx_exchange()
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(PROXY_CORE)})
    try:
        return {
            "h11": round(h11floor.cpu_us_per_request(request, response), 1),
            "llhttp": round(llhttpfloor.cpu_us_per_request(request, response), 1),
        }
    finally:
        os.sched_setaffinity(0, saved)


def _cpu(running: Running | None) -> float | None:
    return None if running is None else procstat.cpu_ms(running.pid)


def _versions() -> dict[str, str]:
    def first_line(*argv: str) -> str:
        got = subprocess.run(argv, capture_output=True, text=True, check=False)
        return (got.stdout or got.stderr).splitlines()[0] if (got.stdout or got.stderr) else "?"

    return {
        "haproxy": first_line("haproxy", "-v"),
        "nginx": first_line("nginx", "-v"),
        "wrk": first_line("wrk", "-v"),
        "meshproxy_commit": first_line("git", "-C", str(nt.REPO), "rev-parse", "--short", "HEAD"),
        # What the mesh stands run (the -source stand: the Python source, by its name).
        "meshproxy_build": proxy.BUILD,
    }


def bench(setups: tuple[Setup, ...], plan: Plan, out_dir: Path) -> int:
    started = time.monotonic()
    load_before = os.getloadavg()
    samples: list[results.Sample] = []
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="pbbench."))
        stack.callback(shutil.rmtree, work, True)
        stand = Stand(stack, work, plan)
        print(f"== {PINNING}", file=sys.stderr)
        for rep in range(1, plan.reps + 1):
            for setup in setups:
                t = time.monotonic()
                sample = measure(stand, setup, plan, rep)
                samples.append(sample)
                took = time.monotonic() - t
                rps = sample.figures["rps"]
                line = f"   rep {rep}/{plan.reps} {setup.name:<13} {rps:8.0f} req/s ({took:.1f}s)"
                print(line, file=sys.stderr)
        rest = rest_memory(stand) if any(s.kind == "mesh" for s in setups) else {}
        l7 = any(s.name.startswith("mesh-l7") or s.kind == "bare" for s in setups)
        floors = _codec_floors(stand) if l7 else {}
    figures = results.aggregate(samples)
    results.add_latency_over(figures)
    ratios = results.ratios(figures)
    targets = results.targets(figures, rest)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    meta: dict[str, Any] = {
        "timestamp": stamp,
        "plan": plan.__dict__,
        "setups": [s.name for s in setups],
        "pinning": PINNING,
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "seconds": round(time.monotonic() - started, 1),
        "rest_memory": rest,
        "h11_floor_us": floors.get("h11"),
        "llhttp_floor_us": floors.get("llhttp"),
        "notes": [n for n in (results.l7_note(samples), BULK_NOTE) if n],
        **_versions(),
    }
    path = report.write_json(
        out_dir, stamp, report.document(meta, samples, figures, ratios, targets)
    )
    print(f"\nmeshproxy bench {stamp}: medians of {plan.reps} reps; {PINNING}")
    print(f"meshproxy build: {meta['meshproxy_build']} (the -source stand: its Python source)")
    after, cores = meta["loadavg_after"][0], os.cpu_count()
    print(f"load average before {load_before[0]:.2f}, after {after:.2f} ({cores} cores, shared)")
    print(
        f"req/s, p50, p99: wrk -t1 -c{plan.connections} -d{plan.saturate_s}s, 1 KiB body; "
        f"+p50/+p99@1k: open loop at {plan.rate:.0f} req/s over {plan.connections} connections, "
        "minus direct; CPUms/1k: proxy utime+stime per 1,000 requests (saturated, and at the "
        "fixed rate); RSS: VmHWM of the proxy process tree"
    )
    print()
    print(report.table(figures))
    if rest:
        print(
            f"\nRSS at rest, {REST_SERVICES} services: one worker "
            f"{rest['rest_rss_mib_1w']:.1f} MiB; --workers 2: largest worker "
            f"{rest['rest_rss_mib_worker_max']:.1f} MiB "
            f"(parent {rest['rest_rss_mib_parent']:.1f} MiB)"
        )
        print(
            f"CPU at rest, {REST_SERVICES} services, over {IDLE_S:.0f} s: sidecar "
            f"{rest['idle_cpu_us_s'] / 1000:.3f} ms/s; HAProxy "
            f"{rest['idle_cpu_us_s_haproxy'] / 1000:.3f} ms/s"
        )
    if floors:
        print(report.floor_lines(floors, figures.get("haproxy-http", {}).get("cpu_ms_per_1k")))
    print("\nratios (a/b):")
    print(report.ratio_lines(ratios))
    print("\ntargets:")
    print(report.target_lines(targets))
    for setup_name, figs in figures.items():
        failed = (figs.get("wrk_errors") or 0) + (figs.get("ol_errors") or 0)
        if failed:
            print(f"\nWARNING: {setup_name} had {failed:.0f} failed requests (median per rep)")
    for note in meta["notes"]:
        print(f"\nnote: {note}")
    print(f"JSON: {path}")
    return 0


def profile_run(seconds: int, out_dir: Path) -> int:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print(
            "scripts/bench --profile needs py-spy: $MESH_VENV/bin/pip install py-spy",
            file=sys.stderr,
        )
        return 2
    plan = QUICK
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="pbbench."))
        stack.callback(shutil.rmtree, work, True)
        stand = Stand(stack, work, plan)
        for setup in (MESH_L4, MESH_L7):
            running = stand.start(setup)
            assert running is not None
            try:
                stand.wrk(setup, 1)
                raw = work / f"{setup.name}.collapsed"
                argv = [
                    "taskset", "-c", LOAD_CORE, spy, "record", "--pid", str(running.pid),
                    "--duration", str(seconds), "--rate", "250", "--format", "raw", "--nolineno",
                    "--nonblocking", "--subprocesses", "--output", str(raw),
                ]  # fmt: skip
                spy_proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                time.sleep(0.5)
                w = stand.wrk(setup, seconds)
                _, err = spy_proc.communicate(timeout=seconds + 30)
                if spy_proc.returncode != 0:
                    print(f"py-spy failed: {err.decode()[-500:]}", file=sys.stderr)
                    return 1
                text = raw.read_text()
                out_dir.mkdir(parents=True, exist_ok=True)
                (out_dir / f"profile-{setup.name}.collapsed").write_text(text)
                print(f"\n== {setup.name} under wrk -c{plan.connections}: {w.rps:.0f} req/s")
                print(profile.render(setup.name, profile.parse_collapsed(text)))
            finally:
                stand.stop(running)
    return 0


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds the ExitStack: namespaces go


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="3 short reps (under 2 minutes)")
    p.add_argument("--reps", type=int, help="repetitions per configuration (>= 3 recommended)")
    p.add_argument(
        "--only",
        help=f"comma list of configurations ({', '.join(s.name for s in ALL)}); direct always runs",
    )
    p.add_argument(
        "--out", type=Path, default=nt.REPO / "bench-results", help="where the JSON goes"
    )
    p.add_argument(
        "--profile", type=int, metavar="SECONDS", help="py-spy the proxy at L4 and L7 instead"
    )
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        print("scripts/bench: run as root (network namespaces, iptables)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    if a.profile:
        return profile_run(a.profile, a.out)
    plan = QUICK if a.quick else FULL
    if a.reps is not None:
        if a.reps < 1:
            p.error(f"--reps {a.reps}: must be at least 1")
        plan = Plan(**{**plan.__dict__, "reps": a.reps})
    try:
        setups = select(a.only.split(",")) if a.only else ALL
    except ValueError as e:
        p.error(str(e))
    try:
        return bench(setups, plan, a.out)
    except BenchError as e:
        print(f"scripts/bench: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("scripts/bench: interrupted; namespaces and processes removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
