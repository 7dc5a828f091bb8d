"""Instructions per proxied request, counted by callgrind (not a test; run by hand).

    apt-get install -y valgrind
    python -m scripts.benchlib.instructions [mesh|bare] [--codec llhttp] [--env NOOBS=1 ...]
    python -m scripts.benchlib.instructions --layers [--codec llhttp]
    python -m scripts.benchlib.instructions --working-set [--codec llhttp]

Timings on this shared machine drift by several per cent from hour to hour, so a
change worth 1 % cannot be seen in them. Instruction counts are exact: the same code
gives the same count to a few parts per million. This runs the in-process proxy
(``meshbench``: the realistic sidecar, two endpoints; or ``enginebench serve``: the bare
engine) under callgrind, drives it with an nginx-shaped exchange (nginx 1.22's nine
response headers, a 1 KiB body) over 16 keep-alive connections, once with ``SMALL``
and once with ``LARGE`` requests, and prints the difference per request, so start-up
cancels out. User-space instructions only: the kernel's share is not in it, and code
that misses the caches costs more time per instruction than code that does not.

``--working-set`` runs cachegrind instead, simulating a last-level cache of 256 KiB to
2 MiB, and prints its misses per request for each size: where they fall to nearly
none is about how much memory (code and data, user space) the 16 connections'
requests keep touching. It explains what two workers cost on one core's 1 MiB L2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.benchlib import fixedupstream

SMALL, LARGE, CONNECTIONS = 480, 2400, 16
BODY = b"x" * 1024
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 30 Nov 2026 00:00:00 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 1024\r\n"
    b"Last-Modified: Sun, 29 Nov 2026 22:00:00 GMT\r\nConnection: keep-alive\r\n"
    b'ETag: "692b6f20-400"\r\nAccept-Ranges: bytes\r\n\r\n' + BODY
)
CHILDREN = {
    "mesh": ["scripts.benchlib.meshbench"],
    "bare": ["scripts.benchlib.enginebench", "serve"],
}


async def _load(port: int, requests: int) -> None:
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port

    async def one(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            writer.write(request)
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(len(BODY))
        writer.close()

    await asyncio.gather(*(one(requests // CONNECTIONS) for _ in range(CONNECTIONS)))


CALLGRIND = ("--tool=callgrind",)
LAST_LEVEL_SIZES = (256 << 10, 512 << 10, 768 << 10, 1 << 20, 2 << 20)


def cachegrind(last_level: int) -> tuple[str, ...]:
    """Cachegrind with this machine's L1s and a ``last_level``-byte, 64-byte-line LL."""
    ways = 12 if last_level % (12 * 64 * 1024) == 0 else 16  # sets: a power of two
    return (
        "--tool=cachegrind", "--cache-sim=yes", "--I1=32768,8,64", "--D1=32768,8,64",
        f"--LL={last_level},{ways},64",
    )  # fmt: skip


async def _count(
    child: list[str], requests: int, env: dict[str, str], out: Path, tool: tuple[str, ...]
) -> dict[str, int]:
    served = [await fixedupstream.serve(RESPONSE) for _ in range(2)]
    servers, ports = [s for s, _ in served], [str(port) for _, port in served]
    argv = ["valgrind", *tool, f"--{tool[0].partition('=')[2]}-out-file={out}"]
    argv += [sys.executable, "-m", *child, *ports]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    assert proc.stdin is not None and proc.stdout is not None
    port = int(await proc.stdout.readline())
    await _load(port, CONNECTIONS * 10)  # warm-up: connections, pools, caches
    await _load(port, requests)
    proc.stdin.close()  # the child exits at end of input
    await proc.wait()
    for server in servers:
        server.close()
    text = out.read_text()
    events = re.search(r"^events: (.+)$", text, re.MULTILINE)
    summary = re.search(r"^summary: (.+)$", text, re.MULTILINE)
    if events is None or summary is None:
        raise SystemExit(f"no events or summary line in {out}")
    return dict(zip(events.group(1).split(), map(int, summary.group(1).split()), strict=True))


def per_request_events(
    child: str, env: dict[str, str], tool: tuple[str, ...] = CALLGRIND
) -> dict[str, float]:
    """Each event valgrind's ``tool`` counts, per request of ``child`` run with ``env``."""
    with tempfile.TemporaryDirectory(prefix="instructions.") as work:
        small = asyncio.run(_count(CHILDREN[child], SMALL, env, Path(work) / "small", tool))
        large = asyncio.run(_count(CHILDREN[child], LARGE, env, Path(work) / "large", tool))
    return {event: (large[event] - small[event]) / (LARGE - SMALL) for event in large}


def per_request(child: str, env: dict[str, str]) -> int:
    """Instructions per request of ``child`` (``mesh`` or ``bare``) run with ``env``."""
    return int(per_request_events(child, env)["Ir"])


def working_set(child: str, env: dict[str, str]) -> None:
    for size in LAST_LEVEL_SIZES:
        got = per_request_events(child, env, cachegrind(size))
        last_level = got["ILmr"] + got["DLmr"] + got["DLmw"]
        first_level = got["I1mr"] + got["D1mr"] + got["D1mw"]
        print(
            f"LL {size >> 10:5} KiB: {last_level:8,.0f} LL misses per request "
            f"({first_level:,.0f} L1 misses, {got['Ir']:,.0f} instructions)"
        )


# (what the step adds, child, env): each row runs what the one above ran, plus one layer.
LAYERS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("engine + codec (passthrough)", "bare", {}),
    ("+ routing, balancing, retries", "mesh", {"NOOBS": "1"}),
    ("+ metrics and tracing", "mesh", {"NOLOG": "1"}),
    ("+ access log (the realistic sidecar)", "mesh", {}),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("child", choices=sorted(CHILDREN), nargs="?", default="mesh")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the child")
    parser.add_argument("--codec", help="the HTTP codec (MESH_HTTP_CODEC) of the child")
    parser.add_argument("--layers", action="store_true", help="count each layer in turn")
    parser.add_argument(
        "--working-set", action="store_true", help="cache misses per request by LL size"
    )
    args = parser.parse_args(argv)
    # A fixed hash seed: set and dict orders, and so the counts, repeat from run to run.
    env = {"PYTHONHASHSEED": "0", **dict(item.split("=", 1) for item in args.env)}
    if args.codec:
        env["MESH_HTTP_CODEC"] = args.codec
    if args.working_set:
        working_set(args.child, env)
        return 0
    if not args.layers:
        print(f"{args.child}: {per_request(args.child, env):,} instructions per request")
        return 0
    previous = 0
    for what, child, extra in LAYERS:
        total = per_request(child, {**env, **extra})
        print(f"{what:40} {total:>11,} per request  ({total - previous:+,})")
        previous = total
    return 0


if __name__ == "__main__":
    sys.exit(main())
