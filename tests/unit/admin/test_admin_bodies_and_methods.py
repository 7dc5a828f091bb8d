"""Request bodies and methods on the admin/telemetry server, over real sockets.

A body over the port's limit is answered 413 naming the limit, before a byte of it is
read; ``Expect: 100-continue`` is honoured; a stalled upload never holds up another
client; a method a path does not take is 405 with ``Allow``; /metrics and the health
endpoints take GET and HEAD only.
"""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, Counter

from proxy.admin import httpmini
from proxy.admin.admin_port import DEFAULT_MAX_BODY, AdminView, admin_endpoints
from proxy.admin.httpmini import Endpoints, Reply, Request
from proxy.admin.telemetry_port import Readiness, telemetry_endpoints
from proxy.core.errors import UsageError
from proxy.process.options import parse_size
from tests.support.admin_wire import admin_wire, converse

LIMIT = 4096


def _endpoints(bodies: list[int]) -> Endpoints:
    def echo(request: Request) -> Reply:
        bodies.append(len(request.body))
        return Reply(200, b"got %d\n" % len(request.body))

    endpoints = Endpoints(max_body=LIMIT, too_large_hint="; see --admin-max-body")
    endpoints.add("PUT", "/config", echo)
    endpoints.add("GET", "/config_dump", lambda r: Reply(200, b"dump\n"))
    return endpoints


def put(size: int, extra: bytes = b"") -> bytes:
    return b"PUT /config HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n" % (size, extra)


def test_a_body_at_the_limit_is_read_and_one_over_gets_413_naming_it() -> None:
    async def main() -> None:
        bodies: list[int] = []
        async with admin_wire(_endpoints(bodies)) as port:
            ok = await converse(port, put(LIMIT) + b"x" * LIMIT)
            big = await converse(port, put(LIMIT + 1) + b"x" * (LIMIT + 1))
        assert ok.startswith(b"HTTP/1.1 200 OK\r\n") and ok.endswith(b"got 4096\n")
        assert big.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
        assert big.endswith(
            b"request body of 4097 bytes is over this port's limit of 4096 bytes "
            b"(0.00390625 MiB); see --admin-max-body\n"
        )
        assert bodies == [LIMIT]  # the large one never reached the handler

    asyncio.run(main())


def test_expect_100_continue_is_answered_and_a_refused_body_is_never_sent() -> None:
    async def main() -> None:
        async with admin_wire(_endpoints([])) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(put(5, b"Expect: 100-continue\r\n"))
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(b"hello")
            final = await asyncio.wait_for(reader.read(), 2)
            writer.close()
            await writer.wait_closed()
            assert final.startswith(b"HTTP/1.1 200 OK\r\n") and final.endswith(b"got 5\n")
            # Over the limit: the final answer comes at once, with no 100 before it.
            refused = await converse(port, put(LIMIT * 10, b"Expect: 100-continue\r\n"))
            assert refused.startswith(b"HTTP/1.1 413 ")

    asyncio.run(main())


def test_a_chunked_body_is_411() -> None:
    async def main() -> None:
        async with admin_wire(_endpoints([])) as port:
            answer = await converse(
                port, b"PUT /config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            )
        assert answer.startswith(b"HTTP/1.1 411 Length Required\r\n")
        assert b"Content-Length" in answer

    asyncio.run(main())


def test_a_stalled_upload_holds_up_no_one_and_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpmini, "BODY_IDLE_TIMEOUT", 1.0)

    async def main() -> None:
        bodies: list[int] = []
        async with admin_wire(_endpoints(bodies)) as port:
            loop = asyncio.get_running_loop()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(put(LIMIT) + b"x" * 100)  # and then nothing
            started = loop.time()
            other = await converse(port, b"GET /config_dump HTTP/1.1\r\n\r\n")
            # Answered while the stalled upload still holds its connection.
            assert other.endswith(b"dump\n") and loop.time() - started < 1.0
            cut = await asyncio.wait_for(reader.read(), 3)
            elapsed = loop.time() - started
            writer.close()
            await writer.wait_closed()
        assert cut == b"" and 0.9 < elapsed < 3.0  # closed, not answered
        assert bodies == []

    asyncio.run(main())


def test_admin_methods_not_taken_get_405_with_allow() -> None:
    view = AdminView(options={}, loop_name="asyncio", drain=lambda: None)
    view.put_config = lambda request: Reply(200, b"")
    endpoints = admin_endpoints(view)
    assert endpoints.max_body == DEFAULT_MAX_BODY == 64 * 1024 * 1024

    async def main() -> None:
        async with admin_wire(endpoints) as port:
            drain = await converse(port, b"GET /drain HTTP/1.1\r\n\r\n")
            config = await converse(port, b"DELETE /config HTTP/1.1\r\n\r\n")
            missing = await converse(port, b"GET /nope HTTP/1.1\r\n\r\n")
        assert drain.startswith(b"HTTP/1.1 405 ") and b"\r\nAllow: POST\r\n" in drain
        assert config.startswith(b"HTTP/1.1 405 ") and b"\r\nAllow: PUT\r\n" in config
        assert missing.startswith(b"HTTP/1.1 404 ")

    asyncio.run(main())


@pytest.mark.parametrize("path", ["/metrics", "/healthz/ready", "/healthz/live"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_telemetry_is_read_only(path: str, method: str) -> None:
    registry = CollectorRegistry()
    Counter("mesh_test_total", "a sample, so /metrics has a body", registry=registry).inc()
    endpoints = telemetry_endpoints(Readiness(listening=True), registry)

    async def main() -> tuple[bytes, bytes, bytes]:
        async with admin_wire(endpoints) as port:
            refused = await converse(port, f"{method} {path} HTTP/1.1\r\n\r\n".encode())
            got = await converse(port, f"GET {path} HTTP/1.1\r\n\r\n".encode())
            head = await converse(port, f"HEAD {path} HTTP/1.1\r\n\r\n".encode())
        return refused, got, head

    refused, got, head = asyncio.run(main())
    assert refused.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    assert b"\r\nAllow: GET, HEAD\r\n" in refused
    assert got.startswith(b"HTTP/1.1 200 OK\r\n")
    head_lines, _, head_body = head.partition(b"\r\n\r\n")
    got_lines, _, got_body = got.partition(b"\r\n\r\n")
    assert head_lines == got_lines and head_body == b"" and got_body  # same head, no body


@pytest.mark.parametrize(
    ("raw", "size"),
    [("1048576", 1 << 20), ("64Mi", 64 << 20), ("64MiB", 64 << 20), ("512Ki", 512 << 10)],
)
def test_sizes_parse(raw: str, size: int) -> None:
    assert parse_size(raw) == size


@pytest.mark.parametrize("raw", ["", "0", "-1", "1.5Mi", "64M", "lots"])
def test_bad_sizes_are_usage_errors(raw: str) -> None:
    with pytest.raises(UsageError, match="is not a size"):
        parse_size(raw)
