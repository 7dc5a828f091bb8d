"""The test server's ``paths`` reply: the engine tests pick a behaviour by path.

Each path is one way an upstream can answer or misbehave (stream, stall before or
after the head, die mid-body with a FIN or a reset, close without saying so, send bytes
past the body, switch protocols, answer before reading the body), so a test names what
it provokes in its request line.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from urllib.parse import parse_qs, urlsplit

from tests.support.http_wire import PATTERN, Seen, read_body, send


async def answer_by_path(
    seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    """Answer one request by its path; False when the connection must end."""
    url = urlsplit(seen.target)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    path = url.path
    if path == "/early":
        await send(writer, 403, b"no thanks", close=True)
        return False
    if path == "/ws":
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"
        )
        while data := await reader.read(65536):
            writer.write(data.upper())
            await writer.drain()
        return False
    digest, size = await read_body(reader, seen)
    seen.body_sha256, seen.body_len = digest, size
    if path == "/reset":
        return False  # read the whole request, then hang up without an answer
    if path == "/echo":
        text = f"{size} {digest}".encode()
        await send(writer, 200, text, extra=[(b"X-Seen-Id", seen.header(b"x-request-id"))])
    elif path == "/download":
        await _download(writer, seen, int(query.get("n", "0")), bool(query.get("chunked")))
    elif path == "/slow":
        await asyncio.sleep(float(query.get("s", "1")))
        await send(writer, 200, b"slow")
    elif path == "/cut":  # ``?rst=1``: a reset (RST) instead of a FIN after the first bytes
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        if query.get("rst"):
            await asyncio.sleep(0.05)  # the head and first bytes leave before the reset
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        return False
    elif path == "/stall":  # the head and 1,000 of 100,000 bytes, then nothing, ever
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        await asyncio.sleep(3600)
        return False
    elif path == "/close":
        await send(writer, 200, b"bye", close=True)
        return False
    elif path == "/extra":
        writer.write(b"HTTP/1.1 200 X\r\nContent-Length: 2\r\n\r\nokJUNK")  # 4 bytes too many
    elif path == "/silent-close":
        await send(writer, 200, b"bye")  # keep-alive promised, then closed anyway
        return False
    else:
        await send(writer, 200, b"hello")
    await writer.drain()
    return True


async def _download(writer: asyncio.StreamWriter, seen: Seen, n: int, chunked: bool) -> None:
    if chunked:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, n, len(PATTERN)):
            piece = PATTERN[: min(len(PATTERN), n - start)]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        return
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
    if seen.method == "HEAD":
        n = 0
    for start in range(0, n, len(PATTERN)):
        writer.write(PATTERN[: min(len(PATTERN), n - start)])
        await writer.drain()
