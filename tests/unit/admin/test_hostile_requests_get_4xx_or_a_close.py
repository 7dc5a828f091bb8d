"""Any bytes to the admin and telemetry ports get one well-formed answer or a close.

The fuzzed property (``tests.support.fuzz_admin``): mutated requests through the real
endpoint tables and ``httpmini.serve_connection``, in memory. Bounded and
derandomized here; ``scripts/fuzz --target admin`` runs it for as long as it is given.
The case table holds what the fuzzer found: Content-Length values that ``isdigit``
accepts and ``int`` refuses, which ended the connection's task with a ValueError.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings

from tests.support import fuzz_admin


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(fuzz_admin.inputs())
def test_any_request_gets_an_answer_or_a_close(request: tuple[bool, bytes]) -> None:
    assert fuzz_admin.verdict(*request) is None


@pytest.mark.parametrize(
    "length",
    [b"\xb9", b"1\xb2", b"\xb3" * 10, b"9" * 5000],
    ids=["superscript one", "one squared", "superscript threes", "5000 digits"],
)
def test_what_the_fuzzer_found_is_answered(length: bytes) -> None:
    admin, _, drains = fuzz_admin.ports()
    request = b"POST /drain HTTP/1.1\r\nContent-Length: " + length + b"\r\n\r\n"
    answer, closed = asyncio.run(fuzz_admin.serve(admin, request))
    assert closed and drains == []
    status = 413 if length.isdigit() else 400  # 5,000 digits is over any body limit
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer
    assert fuzz_admin.check_answer(request, answer) is None


def test_the_checker_refuses_what_is_not_one_answer() -> None:
    check = fuzz_admin.check_answer
    assert check(b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")
    assert check(b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
    assert check(b"GET / HTTP/1.1\r\n\r\n", b"garbage")
    assert check(b"GET / HTTP/1.1\r\n\r\n", b"") is None
