"""A codec's verdict on one HTTP/1 byte stream, as plain data two codecs can be compared on.

A scripted peer drives the codec the way the engine does: bytes go in (in the given
pieces, then the end of input), events come out; the server side answers every
request (101 to an upgrade, 200 to a CONNECT, else a 2-byte 200) and the client side
sends the case's request, and after each message the codec's keep-alive decision is
taken (a client asks again only when more response bytes came). The verdict records
every head, body, trailers, the bytes the codec wrote and how the stream ended:
closed, switched (with the bytes past the head), or the ``ProtocolError`` status and
``truncated``. Byte strings are escaped text (``esc``), so verdicts read well in JSON.
"""

from __future__ import annotations

import random
from typing import Any

from proxy.http.codec import (
    CLOSED,
    END,
    NEED_DATA,
    PAUSED,
    Codec,
    CodecFactory,
    End,
    ProtocolError,
    Request,
    Response,
    Role,
)

Verdict = dict[str, Any]


def esc(data: bytes | bytearray) -> str:
    """Bytes as readable text: printable ASCII as is, the rest as \\xNN (and \\\\)."""
    out = []
    for byte in bytes(data):
        if byte == 0x5C:
            out.append("\\\\")
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        elif byte == 0x0D:
            out.append("\\r")
        elif byte == 0x0A:
            out.append("\\n")
        elif byte == 0x09:
            out.append("\\t")
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def unesc(text: str) -> bytes:
    """The inverse of ``esc``."""
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")


def pieces(data: bytes, how: str, seed: int = 0) -> list[bytes]:
    """``data`` cut ``whole``, ``bytes`` (one by one) or ``random`` (seeded splits)."""
    if how == "whole" or not data:
        return [data] if data else []
    if how == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 8))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


class _Feeder:
    def __init__(self, codec: Codec, parts: list[bytes]) -> None:
        self.codec = codec
        self.parts = parts
        self.done = False

    def more(self) -> bool:
        if self.parts:
            self.codec.feed(self.parts.pop(0))
            return True
        if not self.done:
            self.done = True
            self.codec.feed(b"")
            return True
        return False

    def rest(self) -> None:
        while self.more():
            pass


def _head(head: Request | Response) -> list[Any]:
    items = [[esc(name), esc(lower), esc(value)] for name, lower, value in head.items]
    if type(head) is Request:
        return [esc(head.method), esc(head.target), esc(head.version), items]
    assert type(head) is Response
    return [head.status, esc(head.reason), esc(head.version), items]


def _request_headers(case: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    headers = [(b"Host", b"x")]
    if case.get("upgrade"):
        headers += [(b"Connection", b"upgrade"), (b"Upgrade", b"websocket")]
    return headers


def verdict(factory: CodecFactory, case: dict[str, Any], how: str = "whole") -> Verdict:
    """Run one case (``role``, ``data``, optional ``method``, ``max_head``, ``upgrade``)."""
    server = case["role"] == "server"
    codec = factory(Role.SERVER if server else Role.CLIENT, max_head=case.get("max_head", 65536))
    data = unesc(case["data"])
    feeder = _Feeder(codec, pieces(data, how, seed=len(data)))
    method = case.get("method", "GET").encode()
    sent: list[bytes] = []
    messages: list[dict[str, Any]] = []
    result: Verdict = {"messages": messages, "sent": sent}
    if not server:
        out: list[bytes] = []
        codec.send_request(method, b"/", _request_headers(case), out, END)
        sent.append(b"".join(out))
    message: dict[str, Any] = {}
    try:
        while True:
            event = codec.next_event()
            if event is NEED_DATA:
                if not feeder.more():
                    result["end"] = "need-data"
                    break
            elif type(event) is Request or type(event) is Response:
                if type(event) is Response and event.status < 200 and event.status != 101:
                    result.setdefault("informational", []).append(_head(event))
                    continue
                message = {"head": _head(event), "body": ""}
                if server:
                    message["continue"] = esc(codec.send_continue())
                messages.append(message)
                if type(event) is Response and codec.switched:  # a 101, or a CONNECT's 2xx
                    feeder.rest()
                    result["end"] = "switched"
                    result["trailing"] = esc(codec.trailing())
                    break
            elif type(event) is bytes or type(event) is bytearray:
                message["body"] += esc(event)
            elif type(event) is End:
                message["trailers"] = [[esc(n), esc(v)] for n, v in event.trailers]
                if server:
                    if _answer(codec, message["head"], sent):
                        feeder.rest()
                        result["end"] = "switched"
                        result["trailing"] = esc(codec.trailing())
                        break
                else:
                    feeder.rest()
                message["keep_alive"] = codec.next_message()
                if not message["keep_alive"]:
                    result["end"] = "not-kept-alive"
                    break
                if not server and codec.buffered:  # another response came: ask again
                    out = []
                    codec.send_request(method, b"/", _request_headers(case), out, END)
                    sent.append(b"".join(out))
            elif event is CLOSED:
                result["end"] = "closed"
                break
            else:
                assert event is PAUSED, event
                result["end"] = "paused"
                break
    except ProtocolError as exc:
        result["end"] = "error"
        result["status"] = exc.status
        result["truncated"] = exc.truncated
    result["sent"] = [esc(part) for part in sent]
    return result


def _answer(codec: Codec, head: list[Any], sent: list[bytes]) -> bool:
    """Answer a finished request as an app would; True when the connection switched."""
    method = head[0]
    names = {lower for _, lower, _ in head[3]}
    out: list[bytes] = []
    if method == "CONNECT":
        codec.send_response(200, b"OK", [], out)
    elif "upgrade" in names and method == "GET":
        items = [(b"Upgrade", b"upgrade", b"websocket"), (b"Connection", b"connection", b"upgrade")]
        codec.send_response(101, b"Switching Protocols", items, out)
    else:
        codec.send_response(200, b"OK", [(b"Content-Length", b"content-length", b"2")], out)
        if method != "HEAD":
            codec.send_data(b"ok", out)
        codec.send_end(END, out)
    sent.append(b"".join(out))
    return codec.switched
