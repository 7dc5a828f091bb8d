"""A recording in-memory backend for engine tests: no kernel, every ``Change`` kept.

It applies a change the way the kernel would (so read-back works), and can be told
to misbehave like the real ones do: ``fail_family`` makes applies to that family
raise like a failed restore, ``drop_comments`` silently loses comments the way
python-iptables loses fields it cannot encode.
"""

from __future__ import annotations

from dataclasses import replace

from interceptor.backends.base import Change, LiveChain, LiveRule, LiveTable
from interceptor.errors import BackendError
from interceptor.model import BUILTIN_CHAINS, Family, Rule


class FakeBackend:
    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.applied: list[Change] = []
        self.fail_family: Family | None = None
        self.drop_comments = False
        self._rules: dict[Family, list[Rule]] = {4: [], 6: []}
        self._chains: dict[Family, list[str]] = {4: [], 6: []}

    def add_foreign(self, family: Family, rule: Rule, chain_is_new: bool = False) -> None:
        if chain_is_new and rule.chain not in self._chains[family]:
            self._chains[family].append(rule.chain)
        self._rules[family].append(rule)

    def read(self, family: Family, table: str = "nat") -> LiveTable:
        chains = [LiveChain(c, "ACCEPT") for c in BUILTIN_CHAINS]
        chains += [LiveChain(c, "-") for c in self._chains[family]]
        pos: dict[str, int] = {}
        live = []
        order = [c.name for c in chains]  # like iptables-save: grouped by chain
        for r in sorted(self._rules[family], key=lambda r: order.index(r.chain)):
            pos[r.chain] = pos.get(r.chain, 0) + 1
            live.append(LiveRule(r, tuple(r.to_args()), pos[r.chain]))
        return LiveTable(family, table, tuple(chains), tuple(live))

    def apply(self, change: Change) -> None:
        self.applied.append(change)
        if change.family == self.fail_family:
            raise BackendError(f"fake restore for IPv{change.family} failed")
        fam = change.family
        rules = list(self._rules[fam])
        for live in change.delete_jumps:
            rules.remove(live.rule)
        emptied = {*change.flush_chains, *change.delete_chains}
        rules = [r for r in rules if r.chain not in emptied]
        for c in change.flush_chains:
            if c not in self._chains[fam]:
                self._chains[fam].append(c)
        for r in change.add_rules:
            rules.append(replace(r, comment="") if self.drop_comments else r)
        self._chains[fam] = [c for c in self._chains[fam] if c not in change.delete_chains]
        self._rules[fam] = rules
