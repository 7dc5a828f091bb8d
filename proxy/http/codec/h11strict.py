"""The shared HTTP/1 grammar's passes that h11 does not make, applied around h11.

h11 accepts bare LF line ends and obs-fold, merges repeated Content-Length headers
and takes any token as a method and any version; llhttp refuses all of these and
DESIGN.md says they are rejected, so the h11 codec tightens h11 rather than the other
way round (``h1grammar`` states the whole grammar). Two checks: ``raw_fault`` looks
at a complete head in h11's receive buffer before h11 parses it (the raw bytes are
gone afterwards), ``head_fault`` at the head h11 returns. ``raw_fault`` reads h11's
internal ``Connection._receive_buffer._data`` (``SHAPE`` says whether it is there).
"""

from __future__ import annotations

from typing import Any, Final

import h11

from proxy.http.codec import h1grammar
from proxy.http.codec.base import ProtocolError, Request, Response


def _shape() -> bool:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(b"GET")
    buffer = getattr(getattr(conn, "_receive_buffer", None), "_data", None)
    return type(buffer) is bytearray and buffer == b"GET"


SHAPE: Final = _shape()


def raw_fault(conn: Any, scan: int, max_head: int) -> tuple[ProtocolError | None, int]:
    """Pass 1 of the grammar on the complete head waiting in ``conn``'s buffer, if any;
    and where to resume the search for its end next time (``h1grammar.head_end``).
    A complete head longer than ``max_head`` is refused too (h11 bounds only what it
    buffers while a head is incomplete, so the verdict would depend on the reads)."""
    data: bytearray = conn._receive_buffer._data
    if not data:
        return None, 0
    end = h1grammar.head_end(data, 0, scan)
    if end < 0:
        return None, len(data) - 2
    if end > max_head:
        return ProtocolError("head too long", 431), 0
    return h1grammar.raw_error(data[:end]), 0


def head_fault(head: Request | Response) -> ProtocolError | None:
    """Pass 3 of the grammar on a head h11 parsed."""
    if type(head) is Request:
        return h1grammar.request_error(head.method, head.target, head.version, head.items)
    assert type(head) is Response
    return h1grammar.response_error(head.status, head.version, head.items)
