"""Bounds on a decoded document's shape, checked before anything walks it.

Every later step (YAML construction, the line map, the parser) walks the document
recursively and once per alias use, so a hostile document could exhaust the stack
(``[[[[...``) or expand a few hundred bytes of aliases into billions of nodes (the
"billion laughs"). A configuration is a dozen levels deep at most and a YAML anchor
saves a few lines, so both are bounded here, iteratively, with generous margins.
"""

from __future__ import annotations

import yaml

from proxy.config.errors import ConfigError

MAX_DEPTH = 64  # mappings and lists inside each other; a real config uses about 8
# Nodes after alias expansion, per character of the document: a document without
# aliases has fewer nodes than characters, so this only stops alias amplification.
NODES_PER_CHAR = 10
MIN_NODE_BUDGET = 10_000


def node_budget(text: str) -> int:
    return NODES_PER_CHAR * len(text) + MIN_NODE_BUDGET


def check_yaml(root: yaml.Node, text: str, source: str) -> None:
    """Raise ``ConfigError`` if ``root`` nests too deep or expands past the budget.

    Aliases are the same node object reached twice, so counting visits counts the
    expanded document; a recursive alias is caught by the depth bound.
    """
    budget = node_budget(text)
    visited = 0
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        visited += 1
        if visited > budget:
            raise ConfigError(
                [
                    f"{source}: the document expands to more than {budget} nodes "
                    "through aliases (an alias bomb?)"
                ]
            )
        if depth > MAX_DEPTH:
            mark = node.start_mark
            raise ConfigError(
                [f"{source}:{mark.line + 1}:{mark.column + 1}: nested deeper than {MAX_DEPTH}"]
            )
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)


def check_depth(doc: object, source: str) -> None:
    """Raise ``ConfigError`` if decoded data (JSON has no aliases) nests too deep."""
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError([f"{source}: nested deeper than {MAX_DEPTH}"])
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
