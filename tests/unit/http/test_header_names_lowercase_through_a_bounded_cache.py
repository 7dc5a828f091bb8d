"""``lowered``: a header name lowercased, from a cache bounded in count and name size."""

from __future__ import annotations

import pytest

from proxy.http.codec import base


def test_lowered_is_lower_and_remembers_names_seen() -> None:
    assert base.lowered(b"X-Lowered-Test") == b"x-lowered-test"
    assert base._LOWER[b"X-Lowered-Test"] == b"x-lowered-test"
    assert base.lowered(b"X-Lowered-Test") == b"x-lowered-test"  # from the cache
    assert base.lowered(b"already-lower") == b"already-lower"


def test_long_names_are_lowered_but_not_kept() -> None:
    name = b"X-" + b"A" * base._LOWER_NAME_MAX
    assert base.lowered(name) == name.lower()
    assert name not in base._LOWER


def test_the_cache_stops_growing_at_its_bound() -> None:
    for i in range(base._LOWER_MAX + 50):
        assert base.lowered(b"X-Bound-%d" % i) == b"x-bound-%d" % i
    assert len(base._LOWER) == base._LOWER_MAX
    base._LOWER.clear()  # the names of other tests come back as they are used


@pytest.mark.parametrize("name", [b"Content-Length", b"HOST", b"\xc3\x89tag", b""])
def test_any_bytes_lower_as_bytes_lower_does(name: bytes) -> None:
    assert base.lowered(name) == name.lower()
