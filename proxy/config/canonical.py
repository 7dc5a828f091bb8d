"""Turning the frozen model into plain JSON data, for ``/config_dump`` and the version hash.

Dataclasses become objects (fields excluded from comparison, which are derived, are
left out; a ``__json__`` method overrides), tuples lists, regexes their pattern text.
The output depends only on the content, never on object identity, so the hash is
stable across loads.

``canonical_chunks`` is ``json.dumps(data, sort_keys=True, separators=(",", ":"))``,
the text the version hashes, in pieces: one ``dumps`` call per service instead of one
for the whole mesh. A single call holds the interpreter lock throughout (0.23 s for
10,000 services), and the event loop waited on it while a reload hashed in its thread.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

SEPARATORS = (",", ":")


def to_jsonable(obj: object) -> Any:
    as_json = getattr(obj, "__json__", None)
    if as_json is not None:
        return to_jsonable(as_json())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.compare
        }
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list | frozenset):
        items = [to_jsonable(v) for v in obj]
        return sorted(items) if isinstance(obj, frozenset) else items
    if isinstance(obj, re.Pattern):
        return obj.pattern
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    raise TypeError(f"cannot render {type(obj).__name__} as JSON")


def canonical_chunks(data: Any, depth: int = 2) -> Iterator[str]:
    """The canonical JSON text of ``data`` (as ``to_jsonable`` makes it), in pieces
    that join to exactly what one ``json.dumps`` call would give; objects and arrays
    ``depth`` levels deep are dumped whole."""
    if depth == 0 or not isinstance(data, dict | list) or not data:
        yield json.dumps(data, sort_keys=True, separators=SEPARATORS)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield "," if i else "["
            yield from canonical_chunks(item, depth - 1)
        yield "]"
    elif not all(isinstance(key, str) for key in data):
        yield json.dumps(data, sort_keys=True, separators=SEPARATORS)  # keys made text
    else:
        for i, key in enumerate(sorted(data)):
            yield ("," if i else "{") + json.dumps(key) + ":"
            yield from canonical_chunks(data[key], depth - 1)
        yield "}"
