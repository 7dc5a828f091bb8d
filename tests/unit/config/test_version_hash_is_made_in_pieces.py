"""The config version hashes the canonical JSON made in pieces (a service at a time, so
a reload's hashing thread lets the event loop in between): the pieces join to exactly
the text one ``json.dumps`` call gives, so versions are what they always were."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.config import loads_config
from proxy.config.canonical import SEPARATORS, canonical_chunks
from tests.support.config_docs import mesh_doc

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        | st.dictionaries(st.integers(), inner, max_size=3)
    ),  # keys json.dumps makes text
    max_leaves=30,
)


def one_call(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=SEPARATORS)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_the_pieces_join_to_the_one_call_text(data: Any) -> None:
    for depth in (0, 1, 2, 3):
        assert "".join(canonical_chunks(data, depth)) == one_call(data)


def test_a_mesh_version_is_the_sha256_of_the_one_call_text() -> None:
    config = loads_config(mesh_doc(40, generation=3), "forty")
    pieces = list(canonical_chunks(config.to_dict()))
    assert len(pieces) > 40  # at least a piece per service
    assert max(len(p) for p in pieces) < len(one_call(config.to_dict())) / 10
    assert config.version == hashlib.sha256(one_call(config.to_dict()).encode()).hexdigest()
