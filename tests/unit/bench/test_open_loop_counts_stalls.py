"""scripts/bench: the open-loop generator counts a stall against every request queued behind it.

A closed-loop client would see one slow response; timed from the intended send
times, the requests that should have left during the stall are late too, so the
stall reaches p99. Runs on loopback against an in-process server (no namespaces).
"""

from __future__ import annotations

import asyncio

from scripts.benchlib.openloop import run

BODY = b"x" * 1024


async def _serve(stall_at: int, stall_s: float) -> tuple[asyncio.Server, list[int]]:
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                served.append(1)
                if len(served) == stall_at:
                    await asyncio.sleep(stall_s)
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n\r\n".encode()
                writer.write(head + BODY)
                await writer.drain()
        except asyncio.IncompleteReadError:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, served


async def _measure() -> tuple[float, float, int, int]:
    server, served = await _serve(stall_at=10, stall_s=0.1)
    port = server.sockets[0].getsockname()[1]
    try:
        r = await run("127.0.0.1", port, "/", rate=200.0, seconds=0.5, conns=1)
    finally:
        server.close()
        await server.wait_closed()
    return r.p50_ms, r.p99_ms, r.sent, len(served)


def test_a_stall_delays_every_request_that_was_due_during_it() -> None:
    p50, p99, sent, served = asyncio.run(_measure())
    assert sent == served == 100  # 200 req/s for 0.5 s, none skipped despite the stall
    # ~20 requests were due during the 100 ms stall: p99 sees it, p50 does not.
    assert p99 > 50.0
    assert p50 < 20.0
