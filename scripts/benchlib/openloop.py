"""Open-loop HTTP load at a fixed rate, timed from each request's INTENDED send time.

Request ``i`` is due at ``t0 + i/rate`` and goes out on keep-alive connection
``i % conns``; when that connection is still busy the request leaves late, and the
wait counts in its latency, so a proxy stall shows in p99 instead of silently
lowering the rate (the coordinated-omission trap of closed-loop tools like wrk).
Prints one JSON object: sent, ok, errors, p50_ms, p99_ms, max_ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass

from scripts.benchlib.stats import percentile


@dataclass(frozen=True)
class OpenLoopResult:
    sent: int
    ok: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def due(t0: float, i: int, rate: float) -> float:
    return t0 + i / rate


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError(f"response without Content-Length: {head[:120]!r}")


def summarize(latencies: list[float], sent: int, errors: int) -> OpenLoopResult:
    if not latencies:
        raise RuntimeError(f"no successful response out of {sent} requests ({errors} errors)")
    s = sorted(latencies)
    return OpenLoopResult(
        sent, len(s), errors, percentile(s, 50) * 1e3, percentile(s, 99) * 1e3, s[-1] * 1e3
    )


async def _one_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes,
    first: int, step: int, t0: float, end: float, rate: float,
    latencies: list[float], errors: list[int],
) -> int:  # fmt: skip
    clock = time.perf_counter  # uvloop's loop.time() is cached at millisecond resolution
    sent, i = 0, first
    try:
        while (when := due(t0, i, rate)) < end:
            # Timers may fire a little early: never send before the intended time.
            while (delay := when - clock()) > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            sent += 1
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(content_length(head))
            if head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
                latencies.append(clock() - when)
            else:
                errors.append(1)
            i += step
    finally:
        writer.close()
    return sent


async def run(
    host: str, port: int, path: str, rate: float, seconds: float, conns: int
) -> OpenLoopResult:
    request = f"GET {path} HTTP/1.1\r\nHost: bench-web\r\n\r\n".encode()
    latencies: list[float] = []
    errors: list[int] = []
    streams = await asyncio.gather(*(asyncio.open_connection(host, port) for _ in range(conns)))
    # The schedule starts as soon as every connection is open: the first request on
    # the last connection leaves within conns/rate seconds, well inside a sidecar's
    # protocol-detection wait (a connection that stays silent longer is relayed as
    # opaque TCP, which would measure L4 under an L7 label).
    t0 = time.perf_counter()
    end = t0 + seconds
    sent = await asyncio.gather(
        *(
            _one_connection(r, w, request, k, conns, t0, end, rate, latencies, errors)
            for k, (r, w) in enumerate(streams)
        )
    )
    return summarize(latencies, sum(sent), len(errors))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="openloop", description=__doc__)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/")
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--conns", type=int, default=16)
    a = p.parse_args(argv)
    coro = run(a.host, a.port, a.path, a.rate, a.seconds, a.conns)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(coro)
    else:
        result = uvloop.run(coro)
    json.dump(asdict(result), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
