"""Hostile configuration documents, and what every one of them must get.

Two kinds of input, both starting from the valid documents in tests/data/configs:
text edits (``fuzz_edits``: YAML and JSON punctuation, anchors, tags, long runs) and
value swaps (a node of the decoded document replaced by a hostile value: NaN, huge
numbers, wrong types, long or odd strings; then written out as JSON or YAML, which
reaches the parser's type checks rather than the decoder's). ``verdict`` runs the
text through ``loads_config`` and, as bytes in a file, through ``load_config``: a
``MeshConfig`` that renders for /config_dump, or a ``ConfigError`` with at least one
line; anything else, a disagreement between the two paths, or a slow answer is a
finding (returned as text, not raised, so ``scripts/fuzz`` can go on).
"""

from __future__ import annotations

import json
import math
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from proxy.config import ConfigError, MeshConfig, load_config, loads_config
from tests.support import fuzz_edits
from tests.support.fuzz_edits import Edit

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"
SPECIAL = b"{}[],:-&*!|>?#'\"\n \t0123456789.e<%@`\\"
SLOW = 2.0  # seconds; any document of a few KiB is judged in milliseconds

HOSTILE: list[object] = [
    None, True, 0, -1, 65536, 2**63, 10**400, 1e308, -1e308, math.nan, math.inf, -math.inf,
    0.5, "", " ", "x" * 5000, "\x00", "\u202e", "\ud800", "10.0.0.1", "::1", "999.1.1.1",
    "1s", "0ms", "-1s", "1e9m", "99999999999999999999s", "*", "prefix*", "(", "a{99999}",
    "http://", "javascript:x", "..", "a" * 300 + ".example", [], [None], [{}], {}, {"": 1},
    {"name": "x"}, [1, 2, 3] * 100,
]  # fmt: skip


def seeds() -> list[bytes]:
    texts = [p.read_bytes() for p in sorted(CONFIGS.iterdir()) if p.suffix in (".yaml", ".json")]
    return [t for t in texts if len(t) < 20_000]


def seed_docs() -> list[Any]:
    # PyYAML refuses the tabs JSON allows, so JSON seeds go through json.
    return [json.loads(t) if t.lstrip().startswith(b"{") else yaml.safe_load(t) for t in seeds()]


SEEDS = seeds()
DOCS = seed_docs()

# A value swap: (seed doc, which node in preorder, which hostile value, JSON or YAML).
Swap = tuple[int, int, int, bool]


def _nodes(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in ``doc``, preorder: the places a value sits."""
    out: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            out.append((node, key))
            if isinstance(value, dict | list):
                stack.append(value)
    return out


def swapped(swap: Swap) -> bytes:
    seed, where, what, as_json = swap
    doc = json.loads(json.dumps(DOCS[seed % len(DOCS)]))  # a deep copy
    places = _nodes(doc)
    if places:
        container, key = places[where % len(places)]
        container[key] = HOSTILE[what % len(HOSTILE)]
    if as_json:
        return json.dumps(doc).encode("utf-8", "surrogatepass")
    return yaml.safe_dump(doc, allow_unicode=True).encode("utf-8", "surrogatepass")


def edited(seed: int, edits: list[Edit]) -> bytes:
    return fuzz_edits.mutate(SEEDS[seed % len(SEEDS)], edits, SEEDS)


def _outcome(run: Any) -> tuple[str, str]:
    """("ok", version) or ("error", first error); other exceptions propagate."""
    try:
        config = run()
    except ConfigError as exc:
        if not exc.errors or not all(isinstance(e, str) and e for e in exc.errors):
            raise AssertionError(f"ConfigError without messages: {exc.errors!r}") from exc
        return "error", exc.errors[0]
    assert isinstance(config, MeshConfig)
    json.dumps(config.to_dict(), allow_nan=False)  # what /config_dump renders
    return "ok", config.version


def verdict(data: bytes) -> str | None:
    """None when ``data`` got a config or a ConfigError on both paths; else the finding."""
    started = time.monotonic()
    try:
        try:
            text: str | None = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        by_text = _outcome(lambda: loads_config(text, "doc")) if text is not None else None
        with tempfile.NamedTemporaryFile(suffix=".yaml") as f:
            f.write(data)
            f.flush()
            by_file = _outcome(lambda: load_config(f.name))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    took = time.monotonic() - started
    if took > SLOW:
        return f"slow: {took:.1f}s"
    if by_text is not None and by_text[0] != by_file[0]:
        return f"text and file paths disagree: {by_text} vs {by_file}"
    if by_text is not None and by_text[0] == "ok" and by_text != by_file:
        return f"text and file paths give other configs: {by_text} vs {by_file}"
    return None


# -- drawing inputs ----------------------------------------------------------------------


def inputs() -> st.SearchStrategy[bytes]:
    edits = st.builds(
        edited,
        st.integers(0, len(SEEDS) - 1),
        fuzz_edits.strategy(SPECIAL, len(SEEDS)),
    )
    swaps = st.builds(
        swapped,
        st.tuples(
            st.integers(0, len(DOCS) - 1),
            st.integers(0, 1 << 12),
            st.integers(0, len(HOSTILE) - 1),
            st.booleans(),
        ),
    )
    return st.one_of(edits, swaps)


def random_input(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        swap = (rng.randrange(len(DOCS)), rng.randrange(1 << 12), rng.randrange(len(HOSTILE)))
        return swapped((*swap, rng.random() < 0.5))
    return edited(rng.randrange(len(SEEDS)), fuzz_edits.random_edits(rng, SPECIAL, len(SEEDS)))
