"""Pointing an error at the line of the YAML file it is about.

Parse errors carry document paths (``services[1].port``). Walking the composed YAML
node tree with the same path spelling gives each path its line, so ``validate``
can print ``file:12: services[1].port: ...`` like a compiler. A path with no line of
its own (a missing key) borrows the line of the nearest enclosing one.
"""

from __future__ import annotations

import re

import yaml

from proxy.config.errors import index_path, key_path

# The last step of a path: ``.key``, ``["odd key"]`` or ``[3]``.
_LAST_STEP = re.compile(r'(\.[A-Za-z0-9_-]+|\["(?:[^"\\]|\\.)*"\]|\[\d+\])$')


def node_lines(node: yaml.Node) -> dict[str, int]:
    """Every path in the document → its 1-based line (a mapping entry: its key's line)."""
    lines: dict[str, int] = {}
    _walk(node, "", lines)
    return lines


def _walk(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                sub = key_path(path, str(key.value))
                lines.setdefault(sub, key.start_mark.line + 1)
                _walk(value, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, index_path(path, i), lines)


def line_of(path: str, lines: dict[str, int]) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        shorter = _LAST_STEP.sub("", path)
        if shorter == path:
            return None
        path = shorter
    return None


def locate(errors: list[str], lines: dict[str, int], source: str) -> list[str]:
    """``path: reason`` → ``source:line: path: reason`` where the line is known."""
    out = []
    for error in errors:
        path = error.split(": ", 1)[0]
        line = line_of(path, lines)
        out.append(f"{source}:{line}: {error}" if line is not None else f"{source}: {error}")
    return out
