"""Trace context: strict W3C/B3 parsing, sampling decisions, propagated headers."""

from __future__ import annotations

import random

import pytest

from proxy.observe.tracecontext import (
    Incoming,
    SpanContext,
    new_span,
    parse_b3,
    parse_traceparent,
    read_incoming,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"00-{TRACE}-{SPAN}-01", Incoming(TRACE, SPAN, True, False)),
        (f"00-{TRACE}-{SPAN}-00", Incoming(TRACE, SPAN, False, False)),
        (f"00-{TRACE}-{SPAN}-03", Incoming(TRACE, SPAN, True, False)),  # other flag bits
        (f" 00-{TRACE}-{SPAN}-01 ", Incoming(TRACE, SPAN, True, False)),  # OWS trimmed
        (f"01-{TRACE}-{SPAN}-01-future", Incoming(TRACE, SPAN, True, False)),  # later version
        (f"00-{TRACE}-{SPAN}-01-extra", None),  # version 00 has exactly four fields
        (f"ff-{TRACE}-{SPAN}-01", None),  # forbidden version
        (f"00-{TRACE.upper()}-{SPAN}-01", None),  # upper-case hex
        (f"00-{'0' * 32}-{SPAN}-01", None),  # all-zero trace id
        (f"00-{TRACE}-{'0' * 16}-01", None),  # all-zero span id
        (f"00-{TRACE[:-1]}-{SPAN}-01", None),  # short trace id
        (f"00-{TRACE}-{SPAN}-1", None),  # short flags
        (f"00-{TRACE}-{SPAN}", None),
        ("garbage", None),
        ("", None),
        (None, None),
    ],
)
def test_traceparent_parsing_is_strict(value: str | None, expected: Incoming | None) -> None:
    assert parse_traceparent(value) == expected


@pytest.mark.parametrize(
    ("trace", "span", "sampled", "flags", "expected"),
    [
        (TRACE, SPAN, "1", None, Incoming(TRACE, SPAN, True, True)),
        (TRACE, SPAN, "0", None, Incoming(TRACE, SPAN, False, True)),
        (TRACE, SPAN, "true", None, Incoming(TRACE, SPAN, True, True)),
        (TRACE[:16], SPAN, None, None, Incoming(TRACE[:16], SPAN, None, True)),  # 64-bit id
        (TRACE, SPAN, "0", "1", Incoming(TRACE, SPAN, True, True)),  # debug wins
        (TRACE, SPAN, "yes", None, None),  # unknown sampled value
        (TRACE[:20], SPAN, "1", None, None),  # neither 16 nor 32 hex
        (TRACE, SPAN.upper(), "1", None, None),
        (TRACE, "0" * 16, "1", None, None),
        (TRACE, None, "1", None, None),
        (None, SPAN, "1", None, None),
    ],
)
def test_b3_parsing_is_strict(
    trace: str | None,
    span: str | None,
    sampled: str | None,
    flags: str | None,
    expected: Incoming | None,
) -> None:
    assert parse_b3(trace, span, sampled, flags) == expected


def test_w3c_is_preferred_over_b3_and_bad_w3c_falls_back_to_b3() -> None:
    other = "a" * 32
    headers = {
        "traceparent": f"00-{TRACE}-{SPAN}-01",
        "tracestate": "vendor=x",
        "x-b3-traceid": other,
        "x-b3-spanid": "b" * 16,
    }
    got = read_incoming(headers.get)
    assert got == Incoming(TRACE, SPAN, True, False, "vendor=x")
    headers["traceparent"] = "junk"
    got = read_incoming(headers.get)
    assert got is not None and (got.trace_id, got.b3) == (other, True)


def test_child_span_keeps_trace_id_and_parent_and_carries_both_header_sets() -> None:
    rng = random.Random(1)
    span = new_span(Incoming(TRACE, SPAN, True, True, "k=v"), 0.0, rng)
    assert (span.trace_id, span.parent_id, span.sampled) == (TRACE, SPAN, True)
    assert len(span.span_id) == 16 and span.span_id != SPAN
    headers = dict(span.headers())
    assert headers[b"traceparent"] == f"00-{TRACE}-{span.span_id}-01".encode()
    assert headers[b"x-b3-traceid"] == TRACE.encode()
    assert headers[b"x-b3-spanid"] == span.span_id.encode()
    assert headers[b"x-b3-parentspanid"] == SPAN.encode()
    assert headers[b"x-b3-sampled"] == b"1"


def test_w3c_only_request_gets_no_b3_headers_and_a_64_bit_b3_id_is_padded_in_w3c() -> None:
    span = new_span(Incoming(TRACE, SPAN, False, False), 1.0, random.Random(2))
    assert [k for k, _ in span.headers()] == [b"traceparent"]
    assert span.headers()[0][1].endswith(b"-00")  # the caller said "not sampled"
    short = new_span(Incoming(TRACE[:16], SPAN, True, True), 0.0, random.Random(2))
    assert dict(short.headers())[b"traceparent"].startswith(f"00-{'0' * 16}{TRACE[:16]}-".encode())


def test_sampling_honours_the_caller_else_the_rate() -> None:
    rng = random.Random(42)
    assert new_span(Incoming(TRACE, SPAN, True, False), 0.0, rng).sampled is True
    assert new_span(Incoming(TRACE, SPAN, False, False), 1.0, rng).sampled is False
    assert all(new_span(None, 1.0, rng).sampled for _ in range(50))
    assert not any(new_span(None, 0.0, rng).sampled for _ in range(50))
    undecided = Incoming(TRACE, SPAN, None, True)
    decisions = [new_span(undecided, 0.25, random.Random(i)).sampled for i in range(400)]
    assert 60 <= sum(decisions) <= 140  # about a quarter
    # the same seed gives the same decisions and ids (rng passed in)
    a = [new_span(None, 0.5, random.Random(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]


def test_new_trace_ids_are_valid_w3c_ids() -> None:
    span = new_span(None, 0.0, random.Random(3))
    assert parse_traceparent(span.headers()[0][1].decode()) == Incoming(
        span.trace_id, span.span_id, False, False
    )
    assert len(span.trace_id) == 32 and span.parent_id is None


class _Draws(random.Random):
    """Hands out the given getrandbits values first, then behaves normally."""

    def __init__(self, *values: int) -> None:
        super().__init__(7)
        self.values = list(values)

    def getrandbits(self, k: int) -> int:
        return self.values.pop(0) if self.values else super().getrandbits(k)


def test_a_new_trace_takes_both_ids_from_one_draw_and_never_an_all_zero_id() -> None:
    span = new_span(None, 0.0, _Draws((0xAB << 64) | 0xCD))
    assert (span.trace_id, span.span_id) == ("0" * 30 + "ab", "0" * 14 + "cd")
    assert span.parent_id is None and not span.sampled
    # A draw whose span half is zero is not used: ids are drawn one by one instead.
    span = new_span(None, 0.0, _Draws(0xAB << 64, 0, 0x12, 0x34))
    assert (span.trace_id, span.span_id) == ("0" * 30 + "12", "0" * 14 + "34")


@pytest.mark.parametrize(
    "span",
    [
        SpanContext(TRACE, SPAN, None, True, False),
        SpanContext(TRACE, SPAN, "b7ad6b7169203331", False, False, "k=v"),
        SpanContext(TRACE[:16], SPAN, None, True, False),  # a short id is padded
        SpanContext(TRACE, SPAN, None, False, True),
        SpanContext(TRACE[:16], SPAN, "b7ad6b7169203331", True, True),
    ],
)
def test_upstream_headers_are_the_headers_as_a_tuple(span: SpanContext) -> None:
    assert span.upstream_headers() == tuple(span.headers())
