"""CPU cost of the HTTP engine per 1000 proxied requests (not a test; run by hand).

    python -m scripts.benchlib.enginebench [REQUESTS] [CONNECTIONS]

The proxy runs alone in a child process on uvloop; the upstream and the clients run
here. The child reports its own ``process_time`` before and after the load, so the
number is the proxy's CPU only. ``BENCH_PROFILE=1`` prints a cProfile of the child
(``BENCH_SORT=cumulative`` to reorder).
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import subprocess
import sys
import time
from typing import Any

from scripts.benchlib import fixedupstream

_CHILD = "-m scripts.benchlib.enginebench serve"  # BENCH_CHILD runs another proxy instead


async def serve_measured(proxy: Any, upstream_port: int) -> None:
    """Serve ``proxy`` on 127.0.0.1:0 (port printed), answering "cpu" on stdin with
    this process's CPU time; shared with ``meshbench`` so both measure the same way."""
    from proxy.l4.conn import Direction, Intercepted

    target = ("127.0.0.1", upstream_port)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        await proxy(Intercepted(Direction.OUTBOUND, peer[:2], target, 4), reader, writer, b"")

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    profile = cProfile.Profile() if os.environ.get("BENCH_PROFILE") else None
    measuring = False
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if line.strip() == "cpu":
            print(time.process_time(), flush=True)
            if profile is not None:
                measuring = not measuring
                profile.enable() if measuring else profile.disable()
    if profile is not None and os.environ.get("BENCH_PSTATS"):
        profile.dump_stats(os.environ["BENCH_PSTATS"])
    if profile is not None:
        pstats.Stats(profile, stream=sys.stderr).sort_stats(
            os.environ.get("BENCH_SORT", "tottime")
        ).print_stats(int(os.environ.get("BENCH_LINES", "70")))
    server.close()


def _serve(upstream_port: int) -> None:
    import uvloop

    from proxy.http import HttpProxy, Limits, PassthroughForwarder, UpstreamPool
    from proxy.http.codec import codec_named

    async def main() -> None:
        codec = codec_named(os.environ.get("MESH_HTTP_CODEC", "auto"))
        forwarder = PassthroughForwarder(pool=UpstreamPool(codec=codec))
        proxy = HttpProxy(forwarder, Limits(), codec=codec)
        await serve_measured(proxy, upstream_port)

    uvloop.run(main())


async def _load(port: int, requests: int, connections: int) -> None:
    request = b"GET /hello HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"

    async def one(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            writer.write(request)
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(5)
        writer.close()
        await writer.wait_closed()

    await asyncio.gather(*(one(requests // connections) for _ in range(connections)))


def _pin(cpu: int) -> None:
    # One core for the proxy, the other for the load: otherwise the scheduler moves
    # them around and the cost of cross-core wake-ups swings the result by 2x.
    if len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {cpu})


async def _main(requests: int, connections: int) -> None:
    _pin(0)
    up, up_port = await fixedupstream.serve(fixedupstream.HELLO)
    second, second_port = await fixedupstream.serve(fixedupstream.HELLO)
    child = subprocess.Popen(
        [
            sys.executable,
            *os.environ.get("BENCH_CHILD", _CHILD).split(),
            str(up_port),
            str(second_port),  # a second endpoint, for a child that balances (meshbench)
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: _pin(1),
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        port = int(child.stdout.readline())
        await _load(port, 200, 1)  # warm-up: pool, imports, caches
        child.stdin.write("cpu\n")
        child.stdin.flush()
        before = float(child.stdout.readline())
        started = time.monotonic()
        await _load(port, requests, connections)
        wall = time.monotonic() - started
        child.stdin.write("cpu\n")
        child.stdin.flush()
        after = float(child.stdout.readline())
    finally:
        child.stdin.close()  # the child exits at end of input
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        up.close()
        second.close()
    cpu_ms = (after - before) * 1000
    print(
        f"{requests} requests over {connections} connections: proxy CPU {cpu_ms:.0f} ms "
        f"= {cpu_ms * 1000 / requests:.0f} ms per 1000 requests; {requests / wall:.0f} req/s"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        _serve(int(sys.argv[2]))
    else:
        count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
        conns = int(sys.argv[2]) if len(sys.argv) > 2 else 1
        asyncio.run(_main(count, conns))
