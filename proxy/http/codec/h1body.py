"""The chunked body reader of the llhttp codec: h11's rules, so both codecs agree.

httptools reports no byte offsets (only an upgrade's), so a parser that ran on past a
message's end could not say where the next message starts. The llhttp codec therefore
hands llhttp whole heads only and frames bodies itself: a Content-Length body is
sliced, a chunked one goes through this reader, which keeps h11's grammar
(h11/_readers.py ``ChunkedReader``): a chunk line is 1-20 hex digits, an optional
``;extension`` up to the line end, optional spaces, CRLF; chunk data is followed by
exactly CRLF; trailers follow h11's header rules (``h1grammar.parse_fields``).
"""

from __future__ import annotations

import re
from typing import Final

from proxy.http.codec import h1grammar
from proxy.http.codec.base import END, End, ProtocolError

_CHUNK_LINE: Final = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*\r\n")
_CRLF: Final = b"\r\n"

Body = bytes | bytearray | End | None


class ChunkedReader:
    """One chunked body. ``read(buf)`` returns (event or None, bytes of ``buf`` used)."""

    __slots__ = ("_discard", "_left", "_trailer")

    def __init__(self) -> None:
        self._left = 0  # data bytes left in the current chunk
        self._discard = b""  # what must follow a chunk's data (CRLF), still to match
        self._trailer = False

    def read(self, buf: bytes | bytearray) -> tuple[Body, int]:
        used = 0
        if self._trailer:
            return self._read_trailer(buf, 0)
        if self._discard:
            want = self._discard
            got = buf[: len(want)]
            if not got:
                return None, 0
            if got != want[: len(got)]:
                raise ProtocolError(f"malformed chunk footer: {bytes(got)!r}")
            self._discard = want[len(got) :]
            used = len(got)
            if self._discard:
                return None, used
        if self._left == 0:
            eol = buf.find(_CRLF, used)
            if eol < 0:
                return None, used
            line = _CHUNK_LINE.fullmatch(buf, used, eol + 2)
            if line is None:
                raise ProtocolError(f"illegal chunk header: {bytes(buf[used : eol + 2])!r}")
            self._left = int(line.group(1), 16)
            used = eol + 2
            if self._left == 0:
                self._trailer = True
                return self._read_trailer(buf, used)
        if used >= len(buf):
            return None, used
        data = buf[used : used + self._left]
        self._left -= len(data)
        if self._left == 0:
            self._discard = _CRLF
        return data, used + len(data)

    def _read_trailer(self, buf: bytes | bytearray, used: int) -> tuple[Body, int]:
        end = h1grammar.head_end(buf, used)
        if end < 0:
            return None, used
        items = h1grammar.parse_fields(h1grammar.split_lines(buf[used:end]))
        return (End([(name, value) for name, _, value in items]) if items else END), end

    @staticmethod
    def eof() -> ProtocolError:
        return ProtocolError(
            "peer closed connection without sending complete message body "
            "(incomplete chunked read)",
            truncated=True,
        )
