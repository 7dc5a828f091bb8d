"""A compiled function binds each ``except ... as name`` to one exception type.

mypyc gives a local one type: in a coroutine it becomes a typed attribute of the
frame object, and an ``except B as exc`` after an ``except A as exc`` then fails with
``TypeError: A object expected; got B`` when A is a compiled class, which only the
compiled build shows (the fuzzing rig found it in ``HttpProxy.__call__``).
"""

from __future__ import annotations

import ast
from pathlib import Path

from proxy.compiled import MODULES

ROOT = Path(__file__).resolve().parents[3]


def _rebound(tree: ast.AST) -> list[str]:
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        types: dict[str, set[str]] = {}
        for node in ast.walk(fn):
            if isinstance(node, ast.ExceptHandler) and node.name and node.type is not None:
                types.setdefault(node.name, set()).add(ast.unparse(node.type))
        found += [f"{fn.name}:{fn.lineno} {n} {sorted(t)}" for n, t in types.items() if len(t) > 1]
    return found


def test_the_check_sees_a_name_bound_to_two_types() -> None:
    source = "async def f():\n    try: pass\n    except A as e: pass\n    except B as e: pass\n"
    assert _rebound(ast.parse(source)) == ["f:1 e ['A', 'B']"]
    same = "def g():\n    try: pass\n    except A as e: pass\n"
    same += "    try: pass\n    except A as e: pass\n"
    assert _rebound(ast.parse(same)) == []


def test_no_compiled_module_rebinds_an_except_name_to_another_type() -> None:
    found = {m: _rebound(ast.parse((ROOT / m).read_text())) for m in MODULES}
    assert {m: f for m, f in found.items() if f} == {}
