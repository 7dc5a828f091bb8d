"""Access log: JSON lines on a pipe within a second, never blocking, whole lines only."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import select
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from proxy.observe.accesslog import (
    FLUSH_AT,
    FLUSH_INTERVAL,
    MAX_DEFERRED,
    AccessLog,
    open_stdout_nonblocking,
)
from tests.support.engine_front import run
from tests.support.telemetry import piped


def _read_all(fd: int) -> bytes:
    out = b""
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        out += chunk
    return out


@contextlib.contextmanager
def _counting_writes(writes: list[int]) -> Iterator[None]:
    """Within: every ``os.write`` also appends how many bytes it wrote to ``writes``."""
    real_write = os.write

    def counting_write(fd: int, data: bytes | bytearray | memoryview) -> int:
        n = real_write(fd, data)
        writes.append(n)
        return n

    os.write = counting_write  # type: ignore[assignment]
    try:
        yield
    finally:
        os.write = real_write


def test_lines_are_json_with_a_time_and_leave_together_after_the_flush_interval() -> None:
    r, w = os.pipe()

    async def main() -> bytes:
        log = AccessLog(w, clock=lambda: 1_700_000_000.5)
        log({"method": "GET", "status": 200})
        await asyncio.sleep(0)
        log({"method": "POST", "status": 503})
        await asyncio.sleep(0)
        assert _read_all(r) == b""  # buffered across loop iterations: no syscall per line
        await asyncio.sleep(FLUSH_INTERVAL * 1.5)  # both leave in one write
        return _read_all(r)

    try:
        data = run(main())
    finally:
        os.close(r)
        os.close(w)
    lines = [json.loads(line) for line in data.splitlines()]
    assert lines == [
        {"time": "2023-11-14T22:13:20.500Z", "method": "GET", "status": 200},
        {"time": "2023-11-14T22:13:20.500Z", "method": "POST", "status": 503},
    ]


def test_a_large_buffer_is_written_at_once_in_whole_line_chunks() -> None:
    r, w = os.pipe()
    fcntl.fcntl(r, fcntl.F_SETPIPE_SZ, 1 << 20)  # room for all of it
    writes: list[int] = []

    async def main() -> bytes:
        log = AccessLog(w)
        entry = {"path": "/x" * 100}
        # Past both the byte threshold and the deferred-line threshold: no timer needed.
        count = max(FLUSH_AT // len(json.dumps(entry)) + 2, MAX_DEFERRED)
        with _counting_writes(writes):
            for _ in range(count):
                log(dict(entry))
        return _read_all(r)

    try:
        data = run(main())
    finally:
        os.close(r)
        os.close(w)
    assert len(data) >= FLUSH_AT  # flushed on size, before any timer
    assert all(n <= select.PIPE_BUF for n in writes)
    # every write ended on a line boundary: another worker's lines cannot land mid-line
    offsets, total = [], 0
    for n in writes:
        total += n
        offsets.append(total)
    assert all(data[o - 1 : o] == b"\n" for o in offsets)
    assert all(json.loads(line)["path"] == "/x" * 100 for line in data.splitlines())


def test_a_regular_file_takes_a_flush_in_one_write(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    writes: list[int] = []

    async def main() -> None:
        log = AccessLog(fd)
        for n in range(MAX_DEFERRED * 4):
            log({"path": "/x" * 100, "n": n})
        with _counting_writes(writes):
            log.close()

    try:
        run(main())
    finally:
        os.close(fd)
    data = path.read_bytes()
    assert len(data) > 4 * select.PIPE_BUF and writes == [len(data)]  # no PIPE_BUF cuts
    assert [json.loads(line)["n"] for line in data.splitlines()] == list(range(MAX_DEFERRED * 4))


def test_stamps_share_a_millisecond_and_change_with_it() -> None:
    now = [1_700_000_000.9991]
    log = AccessLog(os.open(os.devnull, os.O_WRONLY), clock=lambda: now[0])
    try:
        first = log.stamp()
        assert first == "2023-11-14T22:13:20.999Z" and log.stamp(1_700_000_000.9994) is first
        assert log.stamp(1_700_000_001.0001) == "2023-11-14T22:13:21.000Z"
        assert log.stamp(1_700_000_000.5) == "2023-11-14T22:13:20.500Z"  # the clock stepped back
        assert log.stamp(1_700_000_061.25) == "2023-11-14T22:14:21.250Z"
    finally:
        os.close(log.fd)


def test_a_stuck_stdout_never_blocks_and_lines_past_the_cap_are_dropped() -> None:
    r, w = os.pipe()
    fd = open_stdout_nonblocking(w)  # a pipe: reopened non-blocking, w itself untouched
    assert fd != w and os.get_blocking(w) and not os.get_blocking(fd)
    dropped = Counter("dropped", "test", registry=CollectorRegistry())

    async def main() -> float:
        log = AccessLog(fd, dropped)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(60_000):  # ~6 MB, far more than the pipe (64 KiB) and the cap
            log({"i": i, "pad": "p" * 80})
        spent = loop.time() - started
        log.close()
        return spent

    try:
        spent = run(main())
        data = _read_all(r)
    finally:
        for f in (r, w, fd):
            os.close(f)
    assert spent < 5.0  # no blocking write: nobody reads the pipe during the loop
    assert dropped._value.get() > 0  # type: ignore[attr-defined]
    lines = data.splitlines()
    assert lines and all(json.loads(line)["pad"] == "p" * 80 for line in lines)


def test_deferred_lines_keep_their_order_and_the_time_they_were_logged() -> None:
    clock = iter([1_700_000_000.1005, 1_700_000_000.2005, 1_700_000_000.3005, 1_700_000_009.0])

    def render(stamp: str, n: int) -> bytes:
        return json.dumps({"time": stamp, "n": n}).encode() + b"\n"

    async def main(r: int, w: int) -> bytes:
        log = AccessLog(w, clock=lambda: next(clock))
        log.defer(render, 1)
        log({"n": 2})  # a TCP connection's line between two requests' lines
        log.defer(render, 3)
        await asyncio.sleep(FLUSH_INTERVAL * 1.5)  # rendered and written at the flush
        return _read_all(r)

    lines = [json.loads(line) for line in piped(main).splitlines()]
    assert [line["n"] for line in lines] == [1, 2, 3]
    assert [line["time"][-5:] for line in lines] == [".100Z", ".200Z", ".300Z"]


def test_a_line_that_fails_to_render_is_counted_and_the_others_still_go_out() -> None:
    dropped = Counter("render_dropped", "test", registry=CollectorRegistry())

    def render(stamp: str, n: int) -> bytes:
        if n == 2:
            raise ValueError("a renderer bug")
        return b'{"n":%d}\n' % n

    async def main(r: int, w: int) -> bytes:
        log = AccessLog(w, dropped)
        for n in (1, 2, 3):
            log.defer(render, n)
        log.close()
        return _read_all(r)

    assert piped(main) == b'{"n":1}\n{"n":3}\n'
    assert dropped._value.get() == 1
