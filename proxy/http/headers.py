"""Hop-by-hop header rewriting (RFC 9110 §7.6.1), one pass per message, no I/O.

The request pass also collects what the engine needs to know about framing, upgrade
and identity, so nothing is parsed twice. Names keep the sender's casing; framing
headers are re-added for the next hop and the codec re-frames the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from proxy.core.names import REQUEST_ID
from proxy.http.codec import HeaderItems, RawHeaders
from proxy.http.codec.base import lowered

# Never forwarded as-is. Expect is end-to-end in the RFC, but like Envoy the proxy
# answers "100 Continue" itself and does not pass the expectation on.
_REQUEST_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
    }
)
_RESPONSE_HOP: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"transfer-encoding", b"upgrade"}
)
# Connection tokens that name no header still left after the hop-by-hop pass
# ("Connection: keep-alive" on nearly every response): no second pass for them.
_NAMES_NOTHING_LEFT: Final = _RESPONSE_HOP | {b"close"}


@dataclass(slots=True)
class RequestFacts:
    """What the request pass learned; mutable only while the pass runs."""

    request_id: bytes = b""
    host: bytes = b""
    upgrade: bytes = b""  # the Upgrade value, when the client asked to switch protocols
    chunked: bool = False
    content_length: int | None = None
    head_size: int = 0


def _tokens(value: bytes) -> set[bytes]:
    # "Connection: keep-alive", nearly always: no comprehension. ``find``, not ``in``:
    # ``bytes in bytes`` first tries the operand as an int and raises (and clears) a
    # TypeError each time, about 2,000 instructions.
    if value.find(b",") < 0:
        return {value.strip().lower()}
    return {token.strip().lower() for token in value.split(b",")}


def rewrite_request(items: HeaderItems, facts: RequestFacts) -> RawHeaders:
    """Headers to send upstream; fills ``facts`` (x-request-id left empty when absent).

    ``items`` are ``(name, lowercase name, value)`` as the codec parsed them.
    """
    out: RawHeaders = []
    named: set[bytes] = set()  # listed in Connection: hop-by-hop too
    upgrade_name = b"Upgrade"
    te_trailers = False
    size = 0
    for name, lname, value in items:
        size += len(name) + len(value) + 4
        if lname in _REQUEST_HOP:
            if lname == b"connection":
                named |= _tokens(value)
            elif lname == b"transfer-encoding":
                facts.chunked = True
            elif lname == b"te":
                te_trailers = te_trailers or b"trailers" in _tokens(value)
            elif lname == b"upgrade":
                facts.upgrade, upgrade_name = value, name
            continue
        if lname == REQUEST_ID:
            if not value:
                continue  # an empty id is no id: a generated one replaces it
            facts.request_id = value
        elif lname == b"host":
            facts.host = value
        elif lname == b"content-length":
            facts.content_length = int(value)  # the codec validated it already
        out.append((name, value))
    facts.head_size = size
    if named:
        out = [(name, value) for name, value in out if name.lower() not in named]
    if facts.chunked:
        # Transfer-Encoding wins over Content-Length (RFC 9112 §6.3); never send both.
        facts.content_length = None
        out = [(name, value) for name, value in out if name.lower() != b"content-length"]
        out.append((b"Transfer-Encoding", b"chunked"))
    if facts.upgrade and b"upgrade" in named:
        out.append((upgrade_name, facts.upgrade))
        out.append((b"Connection", b"upgrade"))
    else:
        facts.upgrade = b""
    if te_trailers:
        out.append((b"TE", b"trailers"))
    return out


def set_headers(headers: RawHeaders, replace: tuple[tuple[bytes, bytes], ...]) -> RawHeaders:
    """``headers`` with every name in ``replace`` set to the given value (casing as given)."""
    if not replace:
        return headers
    names = {lowered(name) for name, _ in replace}
    kept = [(name, value) for name, value in headers if lowered(name) not in names]
    kept.extend(replace)
    return kept


def rewrite_response(items: HeaderItems, *, upgrade: bool) -> tuple[HeaderItems, bool]:
    """Headers to send to the client and whether the upstream body was chunked.

    ``items`` are ``(name, lowercase name, value)`` as the codec parsed them, so no
    name is lowercased again. With ``upgrade`` (a 101 the
    client asked for) Upgrade survives with ``Connection: upgrade``; otherwise framing
    is left to the codec for the client's version.
    """
    out: HeaderItems = []
    named: set[bytes] = set()
    chunked = False
    upgrade_header: tuple[bytes, bytes, bytes] | None = None
    for item in items:
        lname = item[1]
        if lname in _RESPONSE_HOP:
            if lname == b"connection":
                named |= _tokens(item[2])
            elif lname == b"transfer-encoding":
                chunked = True
            elif lname == b"upgrade":
                upgrade_header = item
            continue
        out.append(item)
    if named and not named <= _NAMES_NOTHING_LEFT:
        out = [item for item in out if item[1] not in named]
    if chunked:
        out = [item for item in out if item[1] != b"content-length"]
    if upgrade and upgrade_header is not None:
        out.append(upgrade_header)
        out.append((b"Connection", b"connection", b"upgrade"))
    return out, chunked
