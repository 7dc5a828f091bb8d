"""Any bytes a client sends the real engine on 127.0.0.1 get answers that are never a
500, then a clean close: no exception out of the engine, no ERROR logged, no hang,
for each HTTP/1 codec.

The fuzzed property (``tests.support.fuzz_engine``) over mutated request streams of
the HTTP/1 corpus, half-closed after sending; bounded and derandomized here,
``scripts/fuzz --target engine`` runs it longer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings

from tests.support import fuzz_engine


@pytest.fixture(scope="module")
def rig() -> Iterator[fuzz_engine.Rig]:
    rig = fuzz_engine.Rig()
    try:
        yield rig
    finally:
        rig.close()


@settings(max_examples=200, derandomize=True, deadline=None, database=None)
@given(data=fuzz_engine.inputs())
def test_any_bytes_get_4xx_or_upstream_answers_and_a_close(
    rig: fuzz_engine.Rig, codec: str, data: bytes
) -> None:
    assert rig.verdict(codec, data) is None


def test_the_rig_forwards_good_requests_and_refuses_ambiguous_ones(
    rig: fuzz_engine.Rig, codec: str
) -> None:
    port = rig.ports[codec]
    del rig.upstream.requests[:]
    good, ending = rig.thread.run(rig._exchange(port, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert good.startswith(b"HTTP/1.1 200 ") and ending == "close"
    assert [r.target for r in rig.upstream.requests] == ["/a"]
    both = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
    bad, ending = rig.thread.run(rig._exchange(port, both))
    assert bad.startswith(b"HTTP/1.1 400 ") and ending == "close"
    assert rig.verdict(codec, both) is None
