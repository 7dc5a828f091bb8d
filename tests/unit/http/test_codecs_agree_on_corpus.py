"""Every HTTP/1 codec gives each corpus case its recorded verdict, however the bytes arrive.

The corpus (tests/data/http1_corpus.json, written by ``tests.support.corpus_gen``)
holds valid, edge and hostile request and response streams with the verdict both
codecs agreed on: the heads, bodies, trailers and bytes written, the keep-alive
decisions, or the status refused with. A change of verdict in either codec fails here.
"""

from __future__ import annotations

import collections
from typing import Any

import pytest

from proxy.http.codec import CODECS
from tests.support.corpus_gen import expected
from tests.support.http1_fuzz import load_corpus
from tests.support.http1_verdict import unesc, verdict

CASES = load_corpus()


@pytest.mark.parametrize("how", ["whole", "bytes", "random"])
@pytest.mark.parametrize("name", sorted(CODECS))
@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_each_codec_gives_the_recorded_verdict(case: dict[str, Any], name: str, how: str) -> None:
    assert verdict(CODECS[name], case, how) == expected(case, how)


def test_the_corpus_covers_every_class_with_both_outcomes() -> None:
    assert len(CASES) >= 500
    outcomes = collections.defaultdict(set)
    for case in CASES:
        outcomes[case["class"]].add(case["expect"]["end"] == "error")
    assert len(outcomes) >= 12
    mixed = [klass for klass, seen in outcomes.items() if seen == {True, False}]
    assert len(mixed) >= 8  # most classes hold both accepted and refused streams
    statuses = {case["expect"].get("status") for case in CASES}
    assert {400, 431, 501} <= statuses


def test_the_corpus_bytes_round_trip_through_its_escaping() -> None:
    from tests.support.http1_verdict import esc

    for case in CASES:
        assert esc(unesc(case["data"])) == case["data"]
