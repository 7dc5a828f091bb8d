"""Decoding a configuration file (YAML, or JSON) and handing it to the parser.

JSON is YAML, but PyYAML rejects tabs that JSON allows, so a document that starts
with ``{`` is tried as JSON first. Duplicate keys, which both decoders would silently
collapse into the last one, are errors; so is a file that cannot be read, named.
Errors are prefixed ``source:line:`` (the line when known) like a compiler's.
Whatever the text, the outcome is a config or a ``ConfigError``: the document's depth
and alias expansion are bounded first (``shape``), and a value a YAML constructor or
the JSON decoder cannot build (a 13th month, a 5,000-digit integer) is an error too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from proxy.config.errors import ConfigError
from proxy.config.model import MeshConfig
from proxy.config.parse import parse_config
from proxy.config.positions import locate, node_lines
from proxy.config.shape import MAX_DEPTH, check_depth, check_yaml

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """A safe loader that records duplicate mapping keys instead of dropping them."""

    duplicates: list[str]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool):
            continue  # a list or mapping as a key: construct_mapping reports it below
        if key in seen:
            line = key_node.start_mark.line + 1
            loader.duplicates.append(f"{line}: duplicate key {key!r}")
        seen.add(key)
    return dict(loader.construct_mapping(node, deep=True))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

# A decoded document: the data, duplicate-key errors, and the line of every path.
_Decoded = tuple[object, list[str], dict[str, int]]


def _decode_yaml(text: str, source: str) -> _Decoded:
    loader = _Loader(text)
    loader.duplicates = []
    try:
        node = loader.get_single_node()
        if node is None:
            return None, [], {}
        check_yaml(node, text, source)
        doc = loader.construct_document(node)
        return doc, [f"{source}:{d}" for d in loader.duplicates], node_lines(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        context = f" ({exc.context})" if exc.context else ""
        raise ConfigError([f"{where}: YAML syntax error: {exc.problem or exc}{context}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: YAML error: {exc}"]) from exc
    except (ValueError, OverflowError) as exc:  # a constructor's own check (dates, ints)
        raise ConfigError([f"{source}: YAML value error: {exc}"]) from exc
    finally:
        loader.dispose()


def _decode_json(text: str, source: str) -> _Decoded:
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(items)
        if len(found) < len(items):  # a set, not a scan per key: objects may be huge
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    duplicates.append(f"{source}: duplicate key {key!r}")
                seen.add(key)
        return found

    try:
        doc = json.loads(text, object_pairs_hook=pairs)
    except RecursionError as exc:
        raise ConfigError([f"{source}: nested deeper than {MAX_DEPTH}"]) from exc
    except json.JSONDecodeError as exc:
        try:  # a YAML flow mapping ("{services: []}") is not JSON, but is fine
            return _decode_yaml(text, source)
        except ConfigError:
            pass  # neither: the JSON error is the one to show for a document opening with {
        where = f"{source}:{exc.lineno}:{exc.colno}"
        raise ConfigError([f"{where}: JSON syntax error: {exc.msg}"]) from exc
    except ValueError as exc:  # past the decoder's grammar: a 5,000-digit integer
        raise ConfigError([f"{source}: JSON value error: {exc}"]) from exc
    check_depth(doc, source)
    return doc, duplicates, {}


def loads_config(text: str, source: str = "<config>") -> MeshConfig:
    """Parse a YAML or JSON document; ``source`` (a file name) prefixes every error."""
    decode = _decode_json if text.lstrip().startswith("{") else _decode_yaml
    doc, duplicates, lines = decode(text, source)
    try:
        config = parse_config(doc)
    except ConfigError as exc:
        raise ConfigError(duplicates + locate(exc.errors, lines, source)) from None
    if duplicates:
        raise ConfigError(duplicates)
    return config


def load_config(path: str | Path) -> MeshConfig:
    """Read and parse a file; unreadable files raise ``ConfigError`` naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text: {exc.reason}"]) from exc
    return loads_config(text, str(path))
