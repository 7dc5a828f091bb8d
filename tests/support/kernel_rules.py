"""Shared helpers for the interceptor's network-namespace tests (imported, not run).

They run ``python -m interceptor`` inside a namespace, read the kernel's nat tables
with ``iptables-*-save`` and compare them with a plan by canonical form, written
independently of the engine's own diff so a bug there cannot hide here.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from interceptor.backends.base import LiveTable
from interceptor.backends.saveparse import parse_save
from interceptor.model import PREFIX, Family, RuleSet
from tests.support.netns import PYTHON, Netns, python_env

__all__ = ["PYTHON"]

BACKENDS = ("iptc", "legacy", "nft")
PROGRAMS = Path(__file__).resolve().parent / "programs"
VARIANT = {"iptc": "legacy", "legacy": "legacy", "nft": "nft"}


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in python_env().items() if not k.startswith("MESH_")}
    base.update(extra)
    return base


def cli(ns: Netns, *args: str, extra_env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = ns.run(PYTHON, "-m", "interceptor", *args, check=False, env=env(**(extra_env or {})))
    return done.returncode, done.stdout, done.stderr


def iptables(ns: Netns, backend: str, family: Family, *args: str) -> None:
    binary = f"{'ip6' if family == 6 else 'ip'}tables-{VARIANT[backend]}"
    ns.run(binary, "-t", "nat", *args)


def save_text(ns: Netns, backend: str, family: Family, counters: bool = False) -> str:
    """The nat table as iptables-save prints it, minus the timestamped comment lines."""
    binary = f"{'ip6' if family == 6 else 'ip'}tables-{VARIANT[backend]}-save"
    out = ns.run(binary, *(["-c"] if counters else []), "-t", "nat").stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith("#"))


def live(ns: Netns, backend: str, family: Family) -> LiveTable:
    return parse_save(save_text(ns, backend, family, counters=True), family)


def assert_holds_exactly(table: LiveTable, rs: RuleSet) -> None:
    """Our part of ``table`` is ``rs``: same chains, same rules per chain in order, jumps."""
    fam = rs.family
    assert sorted(table.our_chains()) == sorted(rs.chains)
    for chain in rs.chains:
        have = [r.rule.canonical(fam) for r in table.chain_rules(chain)]
        want = [r.canonical(fam) for r in rs.chain_rules(chain)]
        assert have == want, f"chain {chain} differs"
    have_jumps = Counter(
        r.rule.canonical(fam)
        for r in table.rules
        if not r.rule.chain.startswith(PREFIX) and r.rule.target.startswith(PREFIX)
    )
    assert have_jumps == Counter(r.canonical(fam) for r in rs.jumps())


def assert_none_of_ours(table: LiveTable) -> None:
    assert table.our_chains() == ()
    assert [r for r in table.rules if PREFIX in r.rule.chain + r.rule.target] == []


def dial(ns: Netns, *todo: tuple[int, str, int]) -> list[dict[str, object]]:
    done = ns.run(PYTHON, str(PROGRAMS / "dial_as_uid.py"), json.dumps(todo), env=env())
    result: list[dict[str, object]] = json.loads(done.stdout)
    return result


def start_listener(ns: Netns, name: str, ports: str) -> None:
    p = ns.python(str(PROGRAMS / "origdst_listener.py"), name, ports)
    assert p.stdout is not None
    line = p.stdout.readline()
    assert line == b"ready\n", p.stderr.read() if p.stderr else line
