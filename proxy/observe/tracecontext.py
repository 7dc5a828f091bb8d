"""Trace context in and out: W3C ``traceparent``/``tracestate`` and B3 multi-header.

Parsing is strict (lower-case hex of the right length, no all-zero ids, known
version/flags layout): anything malformed is ignored and the request starts a new
trace, as Envoy does. The new hop's span becomes the parent of the upstream request;
sampling follows the caller's decision, else the configured rate (rng passed in).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from proxy.core import names

_W3C: Final = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_HEX16: Final = re.compile(r"^[0-9a-f]{16}$")
_HEX16_32: Final = re.compile(r"^(?:[0-9a-f]{16}|[0-9a-f]{32})$")
_ZERO: Final = re.compile(r"^0+$")
_LOW64: Final = (1 << 64) - 1
_B3_SAMPLED: Final = {"1": True, "true": True, "0": False, "false": False}
HeaderLookup = Callable[[str], "str | None"]  # RequestHead.header: any casing, first value
# The names the lookup is asked for (it takes str), in parse_traceparent / parse_b3 order.
_W3C_NAMES: Final = tuple(n.decode() for n in (names.TRACEPARENT, names.TRACESTATE))
_B3_NAMES: Final = tuple(
    n.decode() for n in (names.B3_TRACE_ID, names.B3_SPAN_ID, names.B3_SAMPLED, names.B3_FLAGS)
)


@dataclass(frozen=True, slots=True)
class Incoming:
    """The caller's span, as read from the request headers."""

    trace_id: str  # 32 hex (a 16-hex B3 id is kept as sent)
    span_id: str  # 16 hex
    sampled: bool | None  # None: the caller left the decision to us
    b3: bool  # came as B3: answer in B3 too
    tracestate: str | None = None


@dataclass(slots=True)
class SpanContext:  # made per request: not frozen (see ``proxy.policy.endpoints.Attempt``)
    """This hop's span: what goes upstream and, if sampled, to the collector."""

    trace_id: str
    span_id: str
    parent_id: str | None
    sampled: bool
    b3: bool
    tracestate: str | None = None

    def upstream_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """``headers()`` as a tuple; a W3C-only span's one header made directly."""
        if self.b3:
            return tuple(self.headers())
        flags = "01" if self.sampled else "00"
        trace32 = self.trace_id.rjust(32, "0")
        return ((names.TRACEPARENT, f"00-{trace32}-{self.span_id}-{flags}".encode()),)

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Headers that carry this span as the upstream request's parent."""
        flags = "01" if self.sampled else "00"
        trace32 = self.trace_id.rjust(32, "0")
        out = [(names.TRACEPARENT, f"00-{trace32}-{self.span_id}-{flags}".encode())]
        if self.b3:
            out += [
                (names.B3_TRACE_ID, self.trace_id.encode()),
                (names.B3_SPAN_ID, self.span_id.encode()),
                (names.B3_SAMPLED, b"1" if self.sampled else b"0"),
            ]
            if self.parent_id is not None:
                out.append((names.B3_PARENT_SPAN_ID, self.parent_id.encode()))
        return out


def parse_traceparent(value: str | None, tracestate: str | None = None) -> Incoming | None:
    if value is None:
        return None
    m = _W3C.match(value.strip())
    if m is None:
        return None
    version, trace_id, span_id, flags, rest = m.groups()
    # Version ff is invalid; version 00 has exactly four fields; later versions may add more.
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if _ZERO.match(trace_id) or _ZERO.match(span_id):
        return None
    return Incoming(trace_id, span_id, bool(int(flags, 16) & 1), False, tracestate)


def parse_b3(
    trace_id: str | None, span_id: str | None, sampled: str | None, flags: str | None
) -> Incoming | None:
    if trace_id is None or span_id is None:
        return None
    if not _HEX16_32.match(trace_id) or not _HEX16.match(span_id):
        return None
    if _ZERO.match(trace_id) or _ZERO.match(span_id):
        return None
    decision: bool | None = None
    if flags is not None and flags.strip() == "1":
        decision = True  # debug implies sampled
    elif sampled is not None:
        decision = _B3_SAMPLED.get(sampled.strip().lower())
        if decision is None:
            return None
    return Incoming(trace_id, span_id, decision, True)


def read_incoming(header: HeaderLookup) -> Incoming | None:
    """W3C first (what Istio prefers), then B3; ``header`` is a case-insensitive lookup."""
    traceparent, tracestate = _W3C_NAMES
    w3c = parse_traceparent(header(traceparent), header(tracestate))
    if w3c is not None:
        return w3c
    trace_id, span_id, sampled, flags = _B3_NAMES
    return parse_b3(header(trace_id), header(span_id), header(sampled), header(flags))


def _hex(rng: random.Random, bits: int) -> str:
    value = 0
    while value == 0:  # an all-zero id is invalid in both formats
        value = rng.getrandbits(bits)
    return f"{value:0{bits // 4}x}"


def new_span(incoming: Incoming | None, sample_rate: float, rng: random.Random) -> SpanContext:
    """This hop's span: child of ``incoming`` when there is one, else a new trace."""
    if incoming is None:
        # Both ids from one draw (a new trace on every request the app starts).
        value = rng.getrandbits(192)
        if value >> 64 and value & _LOW64:
            ids = "%048x" % value  # noqa: UP031 (cheaper than a format spec)
            trace_id, span_id = ids[:32], ids[32:]
        else:  # an all-zero id is invalid: draw them one by one
            trace_id, span_id = _hex(rng, 128), _hex(rng, 64)
        chosen = sample_rate > 0 and rng.random() < sample_rate
        return SpanContext(trace_id, span_id, None, chosen, False)
    span_id = _hex(rng, 64)
    sampled = incoming.sampled
    if sampled is None:
        sampled = rng.random() < sample_rate
    return SpanContext(
        incoming.trace_id, span_id, incoming.span_id, sampled, incoming.b3, incoming.tracestate
    )
