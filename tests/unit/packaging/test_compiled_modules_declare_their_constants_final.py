"""Module constants of the compiled modules are ``Final``.

mypyc reads a module-level name that is not ``Final`` from the module's dict on every
use: in the per-request loops (a head's header names checked against a frozenset, a
separator appended per header) that was over a hundred dict lookups per request,
about 4% of its instructions. A ``Final`` one is a C static, or inlined.
"""

from __future__ import annotations

import ast
from pathlib import Path

from proxy.compiled import MODULES

ROOT = Path(__file__).resolve().parents[3]
# Switches tests flip to compare paths, names for types, and type variables; the
# request-id state a forked worker draws again.
NOT_CONSTANTS = frozenset(
    {"FAST", "_new", "_set", "_Head", "_Outcome", "_Data", "_EndOfMessage", "_prefix", "_counter"}
)


def _not_final(tree: ast.Module) -> list[str]:
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple):
            # ``A, B = 1, 2`` cannot be Final: one per line.
            names = [e.id for e in node.targets[0].elts if isinstance(e, ast.Name)]
            found += [n for n in names if n not in NOT_CONSTANTS]
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
            if not isinstance(target, ast.Name) or target.id in NOT_CONSTANTS:
                continue
            if isinstance(value, ast.Call) and ast.unparse(value.func) == "TypeVar":
                continue
            if target.id.lstrip("_").isupper() or target.id.startswith("_"):
                found.append(target.id)
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.value is not None
            and "Final" not in ast.unparse(node.annotation)
        ):
            found.append(node.target.id)
    return found


def test_the_check_sees_a_constant_without_final() -> None:
    source = "from typing import Final\nA = 1\n_b: int = 2\nC: Final = 3\nT = TypeVar('T')\n"
    assert _not_final(ast.parse(source)) == ["A", "_b"]
    assert _not_final(ast.parse("_X, _Y = 1, 2\n")) == ["_X", "_Y"]


def test_every_compiled_module_constant_is_final() -> None:
    found = {m: _not_final(ast.parse((ROOT / m).read_text())) for m in MODULES}
    assert {m: names for m, names in found.items() if names} == {}
