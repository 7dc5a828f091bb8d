"""Hostile requests to the admin (15000) and telemetry (15020) ports, served in memory.

The real endpoint tables (``admin_endpoints`` over a view with a live PUT /config
store, ``telemetry_endpoints``) and the real ``httpmini.serve_connection`` get a
mutated request as a ``StreamReader`` that ends with EOF, and write into a recording
writer. ``verdict`` accepts exactly two outcomes: nothing written and the
connection closed (the input ended before a head), or one well-formed HTTP/1.1
response with a status the ports use, a Content-Length that matches, and then the
close. An exception out of ``serve_connection`` or an answer after the timeout
bound is a finding.
"""

from __future__ import annotations

import asyncio
import random
import re

from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from proxy.admin.admin_port import AdminView, admin_endpoints
from proxy.admin.httpmini import Endpoints, serve_connection
from proxy.admin.telemetry_port import Readiness, telemetry_endpoints
from proxy.observe.metrics import ReloadMetrics
from proxy.reload import Reloader, load_initial
from tests.support import fuzz_edits
from tests.support.config_docs import tcp_doc
from tests.support.fuzz_edits import Edit

SPECIAL = b"\r\n :/?#%0123456789-\t\x00\xb2\xb9HTPGEU.,;"
STATUSES = {200, 400, 404, 405, 411, 413, 431, 503}
BOUND = 5.0  # seconds: with the input ended by EOF no step may wait on the client
_STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) [A-Za-z ]+\r\n")

DOC = tcp_doc("10.0.0.1:80").encode()
SEEDS: list[tuple[bool, bytes]] = [  # (for the admin port, the request)
    (True, b"GET /config_dump HTTP/1.1\r\nHost: x\r\n\r\n"),
    (True, b"GET /clusters?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
    (True, b"GET /rules HTTP/1.0\r\n\r\n"),
    (True, b"POST /drain HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
    (True, b"PUT /config HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(DOC), DOC)),
    (True, b"PUT /config HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}"),
    (True, b"PUT /config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
    (False, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"),
    (False, b"HEAD /healthz/ready HTTP/1.1\r\n\r\n"),
    (False, b"GET /healthz/live HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
    (False, b"DELETE /metrics HTTP/1.1\r\n\r\n"),
]
POOL = [request for _, request in SEEDS]


class RecordingWriter:
    """What ``serve_connection`` needs of a ``StreamWriter``, recording what it wrote."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False
        self.eof = False

    def write(self, data: bytes) -> None:
        assert not self.closed and not self.eof, "written after close or EOF"
        self.data += data

    async def drain(self) -> None:
        return None

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        return None


def ports() -> tuple[Endpoints, Endpoints, list[int]]:
    """Fresh admin and telemetry endpoints; the list counts the drains asked for."""
    drains: list[int] = []
    reloader = Reloader(load_initial(None), ReloadMetrics(CollectorRegistry()))
    view = AdminView({"flag": 1}, "asyncio", lambda: drains.append(1))
    view.put_config = reloader.put_handler
    view.config_status = reloader.status
    view.max_body = 64 * 1024
    readiness = Readiness(listening=True)
    return admin_endpoints(view), telemetry_endpoints(readiness, CollectorRegistry()), drains


def check_answer(request: bytes, answer: bytes) -> str | None:
    if not answer:
        return None  # the input ended before a head: closed without a word
    head, sep, body = answer.partition(b"\r\n\r\n")
    if head == b"HTTP/1.1 100 Continue":
        if not body:
            return None  # the body never came: closed after the interim answer
        head, sep, body = body.partition(b"\r\n\r\n")
    found = _STATUS_LINE.match(head + b"\r\n")
    if not sep or found is None:
        return f"not an HTTP response: {answer[:200]!r}"
    status = int(found.group(1))
    if status not in STATUSES:
        return f"status {status}"
    lengths = re.findall(rb"\r\nContent-Length: (\d+)", head)
    if len(lengths) != 1:
        return f"{len(lengths)} Content-Length headers"
    if not request.startswith(b"HEAD ") and int(lengths[0]) != len(body):
        return f"Content-Length {int(lengths[0])} but {len(body)} body bytes"
    return None


async def serve(endpoints: Endpoints, data: bytes) -> tuple[bytes, bool]:
    reader = asyncio.StreamReader(limit=64 * 1024)
    reader.feed_data(data)
    reader.feed_eof()
    writer = RecordingWriter()
    await asyncio.wait_for(serve_connection(endpoints, reader, writer), BOUND)  # type: ignore[arg-type]
    return bytes(writer.data), writer.closed


def verdict(admin: bool, data: bytes) -> str | None:
    admin_port, telemetry_port, _ = ports()
    try:
        answer, closed = asyncio.run(serve(admin_port if admin else telemetry_port, data))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if not closed:
        return "the connection was left open"
    return check_answer(data, answer)


def edited(seed: int, edits: list[Edit]) -> tuple[bool, bytes]:
    admin, request = SEEDS[seed % len(SEEDS)]
    return admin, fuzz_edits.mutate(request, edits, POOL)


def inputs() -> st.SearchStrategy[tuple[bool, bytes]]:
    seeds = st.integers(0, len(SEEDS) - 1)
    return st.builds(edited, seeds, fuzz_edits.strategy(SPECIAL, len(SEEDS)))


def random_input(rng: random.Random) -> tuple[bool, bytes]:
    return edited(rng.randrange(len(SEEDS)), fuzz_edits.random_edits(rng, SPECIAL, len(SEEDS)))
