"""The attempt boundary a retry policy builds on: replay while the body is kept."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable

from proxy.core.flags import Flag
from proxy.http import RequestRecord, Target, UpstreamPool
from tests.support.engine_front import Plan, Planned, proxied, run
from tests.support.http_client import read_response
from tests.support.http_server import Upstream, pattern_body


def _retry_once(
    second: tuple[str, int],
) -> Callable[[list[RequestRecord], UpstreamPool], Planned]:
    """What a retry policy does: on a failure before commit, try another endpoint."""

    def make(records: list[RequestRecord], pool: UpstreamPool) -> Planned:
        return Planned(
            records,
            lambda conn, head: Plan(Target(conn.original_dst, pool), Target(second, pool)),
        )

    return make


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _post(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def test_body_within_the_retry_buffer_is_replayed_to_the_next_endpoint(codec: str) -> None:
    async def main() -> None:
        good = await Upstream().start()
        retry = _retry_once(("127.0.0.1", good.port))
        body = pattern_body(60_000)
        async with proxied(("127.0.0.1", _refused_port()), forwarder=retry, codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(_post("/echo", body))
            resp = await read_response(reader)
            writer.close()
            await writer.wait_closed()
        await good.close()
        assert resp.body == f"60000 {hashlib.sha256(body).hexdigest()}".encode()
        record = front.records[0]
        assert (record.attempts, record.endpoint, record.flag) == (
            2,
            ("127.0.0.1", good.port),
            Flag.NONE,
        )

    run(main())


def test_reset_after_a_small_body_is_retried_but_a_large_one_is_not(codec: str) -> None:
    async def main() -> None:
        bad, good = await Upstream().start(), await Upstream().start()
        retry = _retry_once(("127.0.0.1", good.port))
        async with proxied(("127.0.0.1", bad.port), forwarder=retry, codec=codec) as front:
            statuses = []
            for size in (1000, 200_000):
                reader, writer = await front.connect()
                # the path decides the behaviour: the bad upstream resets, the good one echoes
                writer.write(_post("/reset", pattern_body(size)))
                statuses.append((await read_response(reader)).status)
                writer.close()
                await writer.wait_closed()
        await bad.close()
        await good.close()
        # 1000 bytes: replayed to the good upstream, which resets on /reset as well -> 502
        # after two attempts; 200 kB: the body is gone, one attempt only.
        assert statuses == [502, 502]
        assert [r.attempts for r in front.records] == [2, 1]
        assert [r.flag for r in front.records] == [Flag.UPSTREAM_RESET] * 2
        assert len(good.requests) == 1

    run(main())
