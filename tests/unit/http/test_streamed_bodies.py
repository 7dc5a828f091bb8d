"""Bodies streamed both ways (50 MiB, hash-checked), 100-continue, Upgrade relay."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from tests.support.engine_front import proxied, run
from tests.support.http_client import read_head, read_response
from tests.support.http_server import PATTERN, Upstream, pattern_body

BIG = 50 * 1024 * 1024


def _expected_digest(n: int) -> str:
    digest = hashlib.sha256()
    for start in range(0, n, len(PATTERN)):
        digest.update(PATTERN[: min(len(PATTERN), n - start)])
    return digest.hexdigest()


@pytest.mark.parametrize("chunked", [False, True])
def test_50mib_upload_arrives_hash_equal(chunked: bool, codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {BIG}"
            writer.write(f"POST /echo HTTP/1.1\r\nHost: a\r\n{framing}\r\n\r\n".encode())
            for start in range(0, BIG, len(PATTERN)):
                piece = PATTERN[: min(len(PATTERN), BIG - start)]
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                await writer.drain()
            if chunked:
                writer.write(b"0\r\n\r\n")
            resp = await read_response(reader)
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert resp.status == 200
        assert resp.body == f"{BIG} {_expected_digest(BIG)}".encode()
        assert front.records[0].bytes_received == BIG

    started = time.monotonic()
    run(main())
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("chunked", [False, True])
def test_50mib_download_arrives_hash_equal(chunked: bool, codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            flag = "&chunked=1" if chunked else ""
            writer.write(f"GET /download?n={BIG}{flag} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            resp = await read_response(reader, keep_body=False)
            # the connection is still usable afterwards
            writer.write(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
            again = await read_response(reader)
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert resp.status == 200
        assert (resp.size, resp.digest) == (BIG, _expected_digest(BIG))
        assert resp.header(b"transfer-encoding" if chunked else b"content-length") is not None
        assert again.body == b"hello"
        assert front.records[0].bytes_sent == BIG

    run(main())


def test_small_bodies_both_framings_round_trip(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            body = pattern_body(100_000)
            writer.write(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + body)
            first = await read_response(reader)
            writer.write(b"GET /download?n=70000&chunked=1 HTTP/1.1\r\nHost: a\r\n\r\n")
            second = await read_response(reader)
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert first.body == f"100000 {hashlib.sha256(body).hexdigest()}".encode()
        assert second.body == pattern_body(70000)
        assert up.connections == 1

    run(main())


def test_expect_100_continue_gets_100_then_the_final_response(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(
                b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            status, _, _ = await asyncio.wait_for(read_head(reader), 5)
            assert status == 100  # the body was not sent yet: the proxy asked for it
            writer.write(b"hello")
            resp = await read_response(reader)
            writer.close()
            await writer.wait_closed()
        await up.close()
        assert resp.body == f"5 {hashlib.sha256(b'hello').hexdigest()}".encode()
        assert up.requests[0].header(b"expect") is None

    run(main())


def test_upgrade_relays_raw_bytes_both_ways_after_101(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            # the first frame rides in the same packet as the request head
            writer.write(
                b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"
                b"first frame;"
            )
            status, raw, _ = await read_head(reader)
            assert status == 101
            assert b"\r\nUpgrade: echo\r\n" in raw
            assert (await reader.readexactly(12)) == b"FIRST FRAME;"
            writer.write(b"second")
            assert (await reader.readexactly(6)) == b"SECOND"
            writer.write_eof()
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
        await up.close()
        head = up.requests[0].raw_head
        assert b"\r\nUpgrade: echo\r\n" in head
        assert b"\r\nConnection: upgrade\r\n" in head
        record = front.records[0]
        assert (record.status, record.upgraded) == (101, True)

    run(main())


def test_early_response_without_reading_the_body_closes_the_client(codec: str) -> None:
    async def main() -> None:
        up = await Upstream().start()
        async with proxied(("127.0.0.1", up.port), codec=codec) as front:
            reader, writer = await front.connect()
            writer.write(b"POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n")
            writer.write(b"x" * 1000)
            resp = await read_response(reader)
            assert resp.status == 403
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            await writer.wait_closed()
        await up.close()

    run(main())
