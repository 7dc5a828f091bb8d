"""Turning the frozen model into plain JSON data, for ``/config_dump`` and the version hash.

Dataclasses become objects (fields excluded from comparison, which are derived, are
left out; a ``__json__`` method overrides), tuples lists, regexes their pattern text.
The output depends only on the content, never on object identity, so the hash is
stable across loads.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any


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
