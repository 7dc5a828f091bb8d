"""Mutated HTTP/1 streams get the same verdict from every codec, and always a verdict.

Hypothesis edits corpus cases (``tests.support.http1_fuzz``) and both codecs judge the
result in three chunkings; a difference, or any exception that is not a verdict,
fails. Bounded and derandomized here so the suite stays quick and repeatable;
``scripts/fuzz`` runs the same check for as long as it is given.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.http1_fuzz import (
    DELETE,
    INSERT,
    OVERWRITE,
    REPEAT_LINE,
    SPECIAL,
    SPLICE,
    Edit,
    apply,
    disagreement,
    load_corpus,
    seeds,
)

SEEDS = seeds(load_corpus())
_payload = st.one_of(
    st.lists(st.sampled_from(list(SPECIAL)), min_size=1, max_size=3).map(bytes),
    st.binary(min_size=1, max_size=3),
)
_edit = st.tuples(
    st.sampled_from([OVERWRITE, INSERT, DELETE, SPLICE, REPEAT_LINE]),
    st.integers(0, 1 << 16),
    _payload,
)


@settings(max_examples=400, derandomize=True, deadline=None, database=None)
@given(st.integers(0, len(SEEDS) - 1), st.lists(_edit, min_size=1, max_size=3))
def test_both_codecs_agree_on_a_mutated_stream(seed: int, edits: list[Edit]) -> None:
    case = apply(SEEDS[seed], edits, SEEDS)
    assert disagreement(case) is None


def test_the_mutations_change_the_bytes() -> None:
    case = SEEDS[0]
    assert apply(case, [(INSERT, 3, b"\r")], SEEDS)["data"] != case["data"]
    assert apply(case, [(DELETE, 0, b"x")], SEEDS)["data"] != case["data"]
