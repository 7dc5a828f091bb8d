"""The rule model: what a capture rule *is*, independent of how it is applied.

A ``Rule`` is one line of a chain (matches, target, a comment saying why). A ``RuleSet``
is everything we own in one table of one address family: our ``MESH_`` chains and
their rules, plus the jumps from the built-in chains. Rules compare by a canonical
form, because ``iptables-save`` rewrites what it was given (adds ``-m tcp``,
appends ``/32``, reorders matches): never compare rule text.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

Family = Literal[4, 6]
PREFIX = "MESH_"
BUILTIN_CHAINS = ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")

# Which iptables match module an option needs (``-m <module>`` before it).
MODULE_OF: dict[str, str] = {
    "--dport": "tcp",
    "--sport": "tcp",
    "--uid-owner": "owner",
    "--gid-owner": "owner",
}
_ADDRESS_OPTIONS = ("-s", "-d")


@dataclass(frozen=True)
class Match:
    """One condition, as iptables spells it: ``[!] <option> <value>``."""

    option: str
    value: str
    negate: bool = False

    def canonical(self, family: Family) -> Match:
        if self.option in _ADDRESS_OPTIONS:
            net = ipaddress.ip_network(self.value, strict=False)
            if net.version != family:
                raise ValueError(f"{self.value} is not an IPv{family} address")
            return Match(self.option, str(net), self.negate)
        return self

    def to_args(self) -> list[str]:
        return (["!"] if self.negate else []) + [self.option, self.value]


@dataclass(frozen=True)
class Rule:
    """One rule: ``-A <chain> <matches> -m comment --comment <why> -j <target> <args>``."""

    chain: str
    matches: tuple[Match, ...]
    target: str
    target_args: tuple[str, ...] = ()
    comment: str = ""

    def to_args(self) -> list[str]:
        """The arguments after ``-A <chain>``, in an order iptables accepts."""
        args: list[str] = []
        loaded: set[str] = set()
        for m in self.matches:
            module = MODULE_OF.get(m.option)
            if module and module not in loaded:
                args += ["-m", module]
                loaded.add(module)
            args += m.to_args()
        if self.comment:
            args += ["-m", "comment", "--comment", self.comment]
        args += ["-j", self.target, *self.target_args]
        return args

    def canonical(self, family: Family) -> tuple[object, ...]:
        """A hashable form equal for rules the kernel treats as the same."""
        matches = tuple(
            sorted(
                (m.canonical(family) for m in self.matches),
                key=lambda m: (m.option, m.value, m.negate),
            )
        )
        return (self.chain, matches, self.target, self.target_args, self.comment)


@dataclass(frozen=True)
class RuleSet:
    """All of our rules in one table of one family, in order.

    ``chains`` are our own chains (all ``MESH_``-prefixed), created empty then filled;
    rules whose ``chain`` is built-in are the jumps into them.
    """

    family: Family
    table: str
    chains: tuple[str, ...]
    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        for c in self.chains:
            if not c.startswith(PREFIX):
                raise ValueError(f"chain {c!r} lacks the {PREFIX} prefix")
        for r in self.rules:
            if r.chain not in self.chains and r.chain not in BUILTIN_CHAINS:
                raise ValueError(f"rule in unknown chain {r.chain!r}")

    def chain_rules(self, chain: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.chain == chain)

    def jumps(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.chain in BUILTIN_CHAINS)

    def canonical(self) -> tuple[object, ...]:
        return (
            self.family,
            self.table,
            tuple(sorted(self.chains)),
            tuple(r.canonical(self.family) for r in self.rules),
        )
