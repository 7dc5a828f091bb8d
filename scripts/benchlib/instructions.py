"""Instructions per proxied request, counted by callgrind (not a test; run by hand).

    apt-get install -y valgrind
    python -m scripts.benchlib.instructions [mesh|bare] [--codec llhttp] [--env NOOBS=1 ...]
    python -m scripts.benchlib.instructions --layers [--codec llhttp]

Timings on this shared machine drift by several per cent from hour to hour, so a
change worth 1 % cannot be seen in them. Instruction counts are exact: the same code
gives the same count to a few parts per million. This runs the in-process proxy
(``meshbench``: the realistic sidecar, two endpoints; or ``enginebench serve``: the bare
engine) under callgrind, drives it with an nginx-shaped exchange (nginx 1.22's nine
response headers, a 1 KiB body) over 16 keep-alive connections, once with ``SMALL``
and once with ``LARGE`` requests, and prints the difference per request, so start-up
cancels out. User-space instructions only: the kernel's share is not in it, and code
that misses the caches costs more time per instruction than code that does not.
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


async def _count(child: list[str], requests: int, env: dict[str, str], out: Path) -> int:
    served = [await fixedupstream.serve(RESPONSE) for _ in range(2)]
    servers, ports = [s for s, _ in served], [str(port) for _, port in served]
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
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
    found = re.search(r"^summary: (\d+)$", out.read_text(), re.MULTILINE)
    if found is None:
        raise SystemExit(f"no summary line in {out}")
    return int(found.group(1))


def per_request(child: str, env: dict[str, str]) -> int:
    """Instructions per request of ``child`` (``mesh`` or ``bare``) run with ``env``."""
    with tempfile.TemporaryDirectory(prefix="instructions.") as work:
        small = asyncio.run(_count(CHILDREN[child], SMALL, env, Path(work) / "small"))
        large = asyncio.run(_count(CHILDREN[child], LARGE, env, Path(work) / "large"))
    return (large - small) // (LARGE - SMALL)


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
    args = parser.parse_args(argv)
    # A fixed hash seed: set and dict orders, and so the counts, repeat from run to run.
    env = {"PYTHONHASHSEED": "0", **dict(item.split("=", 1) for item in args.env)}
    if args.codec:
        env["MESH_HTTP_CODEC"] = args.codec
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
