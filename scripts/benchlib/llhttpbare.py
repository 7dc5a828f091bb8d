"""The bare llhttp forwarder: the floor an httptools-based L7 proxy is judged against.

asyncio Protocols (no streams, no tasks per request) on uvloop and httptools' parser
callbacks: each client connection gets one kept-alive connection to the fixed upstream;
a request's head is rebuilt from the parsed pieces (hop-by-hop headers dropped, the
body re-framed as it came) and written upstream from the callback, the response the
same way back. Backpressure: a side whose peer's write buffer is full stops reading.
No routing, policy, metrics or logs: what is left is parser, callbacks and writes.

    python -m scripts.benchlib.llhttpbare --listen 0.0.0.0:15001 --upstream HOST:PORT [--uid 1337]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from typing import cast

import httptools

HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te"})
LAST_CHUNK = b"0\r\n\r\n"


class _Side(asyncio.Protocol):
    """What both directions share: a parser's header callbacks and framing."""

    transport: asyncio.Transport
    peer: _Side | None = None

    def __init__(self) -> None:
        self.head: list[bytes] = []
        self.chunked = False

    def on_message_begin(self) -> None:
        self.head = []
        self.chunked = False

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower not in HOP:
            self.head += (name, b": ", value, b"\r\n")
        elif lower == b"transfer-encoding":
            self.chunked = True  # llhttp took the chunks apart: frame them again

    def framed_head(self) -> bytes:
        if self.chunked:
            self.head.append(b"Transfer-Encoding: chunked\r\n")
        self.head.append(b"\r\n")
        return b"".join(self.head)

    def framed(self, body: bytes) -> bytes:
        return b"%x\r\n%b\r\n" % (len(body), body) if self.chunked else body

    # The peer's write buffer is full: stop reading until it drains.
    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.transport.resume_reading()


class Client(_Side):
    """A client connection: requests in, forwarded to this connection's upstream."""

    def __init__(self, upstream: tuple[str, int], tasks: set[asyncio.Task[None]]) -> None:
        super().__init__()
        self.upstream, self.tasks = upstream, tasks
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.waiting: list[bytes] = []  # for the upstream, until it is connected
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        task = asyncio.get_running_loop().create_task(self._connect())
        self.tasks.add(task)  # a reference, so the task is never collected mid-way
        task.add_done_callback(self.tasks.discard)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, server = await loop.create_connection(lambda: Server(self), *self.upstream)
        except OSError:
            self.transport.close()
            return
        if self.transport.is_closing():
            server.transport.close()
            return
        self.peer = server
        if self.waiting:
            server.transport.write(b"".join(self.waiting))
            self.waiting = []

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.peer.transport.close()

    def send(self, data: bytes) -> None:
        if self.peer is None:
            self.waiting.append(data)
        else:
            self.peer.transport.write(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_headers_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        line = b"%b %b HTTP/1.1\r\n" % (self.parser.get_method(), self.url)
        self.send(line + self.framed_head())

    def on_body(self, body: bytes) -> None:
        self.send(self.framed(body))

    def on_message_complete(self) -> None:
        if self.chunked:
            self.send(LAST_CHUNK)

    def answered(self) -> None:
        """A whole response went back: a client that asked to close gets its FIN."""
        if not self.keep_alive:
            self.transport.close()


class Server(_Side):
    """The upstream connection of one client: responses in, written back to it."""

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client
        self.peer = client
        self.parser = httptools.HttpResponseParser(self)
        self.reason = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.transport.close()  # no reconnect: a bare forwarder's upstream stays

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.reason = b""

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_headers_complete(self) -> None:
        line = b"HTTP/1.1 %d %b\r\n" % (self.parser.get_status_code(), self.reason)
        self.client.transport.write(line + self.framed_head())

    def on_body(self, body: bytes) -> None:
        self.client.transport.write(self.framed(body))

    def on_message_complete(self) -> None:
        if self.chunked:
            self.client.transport.write(LAST_CHUNK)
        self.client.answered()


async def serve(sock: socket.socket, upstream: tuple[str, int]) -> asyncio.Server:
    """Forward every connection accepted on ``sock`` to ``upstream``."""
    tasks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: Client(upstream, tasks), sock=sock)


def _address(raw: str) -> tuple[str, int]:
    host, _, port = raw.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="llhttpbare", description=__doc__)
    p.add_argument("--listen", type=_address, required=True, metavar="HOST:PORT")
    p.add_argument("--upstream", type=_address, required=True, metavar="HOST:PORT")
    p.add_argument("--uid", type=int, help="drop to this uid and gid after binding")
    a = p.parse_args(argv)
    sock = socket.create_server(a.listen, backlog=1024, reuse_port=True)
    if a.uid is not None:  # as the proxy uid, its upstream connections are not captured
        os.setgroups([])
        os.setgid(a.uid)
        os.setuid(a.uid)
    import uvloop

    async def run() -> None:
        server = await serve(sock, a.upstream)
        await server.serve_forever()

    uvloop.run(run())


if __name__ == "__main__":
    main()
