"""``HttpLines`` (the real log's renderer, with cached runs of text) writes the bytes of
``http_line`` (the field-by-field template, itself compared with ``json.dumps``), for
hostile strings, IPv6, odd numbers, and connections whose requests change what is cached.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random

import pytest

from proxy.core.flags import Flag
from proxy.l4.conn import Direction, Intercepted
from proxy.observe.httplines import HttpLines
from proxy.observe.logline import http_line
from proxy.observe.tracecontext import SpanContext
from tests.support.telemetry import record

PID = 4242
STAMP = "2026-11-29T19:00:00.123Z"
AWKWARD = [
    '/a"b\\c',  # a quote and a backslash
    "/caf\u00e9/\u65e5\u672c/\U0001f600",
    "/ctl\x00\x01\x1f\x7f\t\n\r",
    "/\u2028\u2029</script>",
    "",
    "GET",
]
SPAN = SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", None, True, False)
B3_SPAN = SpanContext('0af7651916cd43dd"\n', "b7ad6b7169203331", "x", False, True)


def _check(lines: HttpLines, rec: object, service: str, span: SpanContext | None) -> None:
    got = lines.line(STAMP, rec, service, span)  # type: ignore[arg-type]
    assert got == http_line(STAMP, rec, service, span, PID)  # type: ignore[arg-type]
    assert json.loads(got)["worker"] == PID


@pytest.mark.parametrize("text", AWKWARD)
def test_awkward_strings_in_every_field_match_the_template(text: str) -> None:
    lines = HttpLines(PID)
    for field in ("path", "authority", "method", "request_id", "version"):
        rec = dataclasses.replace(record(), **{field: text})
        _check(lines, rec, "reviews", SPAN)
    _check(lines, record(), f"svc{text}", B3_SPAN)
    _check(lines, dataclasses.replace(record(), http_version=text), "reviews", None)


def test_ipv6_missing_endpoint_flags_and_upgrades_match() -> None:
    lines = HttpLines(PID)
    v6 = Intercepted(Direction.INBOUND, ("fd77::2", 41000), ("fd00::1", 9080), 6)
    cases = [
        dataclasses.replace(record(endpoint=("fd00::5", 9080)), conn=v6),
        dataclasses.replace(record(endpoint=None), upstream_latency=None, upgraded=True),
        record(status=0, flag=Flag.DOWNSTREAM_DISCONNECT, attempts=3),
        record(status=503, flag=Flag.UPSTREAM_RESET, version=""),
    ]
    for rec, span in itertools.product(cases, (SPAN, B3_SPAN, None)):
        _check(lines, rec, "reviews", span)


def test_durations_match_the_template_at_every_magnitude() -> None:
    rng = random.Random(11)
    values = [0.0, -0.0, -0.0125, 1e-9, 0.0005, 0.0015, 1e12, 1e13, 2e13, -3e15, 7.25]
    values += [rng.uniform(0, 2) for _ in range(500)]
    values += [rng.randrange(0, 10**7) / 1e6 for _ in range(500)]
    lines = HttpLines(PID)
    for seconds in values:
        rec = dataclasses.replace(record(), duration=seconds, upstream_latency=seconds / 3)
        _check(lines, rec, "reviews", SPAN)


def test_one_connection_whose_requests_change_what_is_cached() -> None:
    lines = HttpLines(PID)
    rec = record()
    changes = [
        {"method": "POST"}, {"authority": "ratings"}, {"http_version": "1.0"},
        {"upgraded": True}, {"status": 404}, {"flag": Flag.NO_ROUTE}, {"version": "v2"},
        {"endpoint": ("10.244.2.7", 9080)}, {"attempts": 2}, {"method": "GET"},
    ]  # fmt: skip
    for change in changes:  # one field at a time, all on the same connection
        _check(lines, rec, "reviews", SPAN)
        rec = dataclasses.replace(rec, **change)
        _check(lines, rec, "reviews", SPAN)
    _check(lines, rec, "ratings", SPAN)


def test_a_recycled_connection_id_is_not_taken_for_the_old_connection() -> None:
    lines = HttpLines(PID)
    old = record(peer=("10.0.0.1", 1111))
    new = record(peer=("10.0.0.2", 2222))
    lines.line(STAMP, old, "reviews", SPAN)
    # As if ``old.conn`` were freed and ``new.conn`` allocated at its address.
    lines._conns[id(new.conn)] = lines._conns[id(old.conn)]
    _check(lines, new, "reviews", SPAN)
    assert json.loads(lines.line(STAMP, new, "reviews", SPAN))["downstream_peer"] == "10.0.0.2:2222"
