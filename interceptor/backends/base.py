"""What every backend offers: read a family's nat table, apply a ``Change``, in one step.

Backends are deliberately dumb. The engine reads the live table, decides (purely, in
``interceptor.diff``) which of our chains to flush, which rules and jumps to add and
which stale jumps and chains to delete, and hands that ``Change`` to the backend, which
applies it as ONE atomic restore / commit per table. Live rules keep their raw
``iptables-save`` arguments and counters so foreign rules can be shown and our stale
jumps deleted exactly as the kernel spells them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from interceptor.model import PREFIX, Family, Rule


@dataclass(frozen=True)
class LiveRule:
    """One rule as the kernel holds it: parsed, plus its raw arguments and counters."""

    rule: Rule
    args: tuple[str, ...]  # everything after ``-A <chain>`` as iptables-save wrote it
    position: int  # 1-based index within its chain (``--line-numbers``)
    packets: int = 0
    bytes: int = 0

    @property
    def ours(self) -> bool:
        return self.rule.chain.startswith(PREFIX) or self.rule.target.startswith(PREFIX)


@dataclass(frozen=True)
class LiveChain:
    name: str
    policy: str  # "ACCEPT"/"DROP" for built-in chains, "-" for user chains
    packets: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class LiveTable:
    """A table of one family as read from the kernel (empty when it does not exist)."""

    family: Family
    table: str
    chains: tuple[LiveChain, ...]
    rules: tuple[LiveRule, ...]

    def chain_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.chains)

    def our_chains(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.chains if c.name.startswith(PREFIX))

    def chain_rules(self, chain: str) -> tuple[LiveRule, ...]:
        return tuple(r for r in self.rules if r.rule.chain == chain)


@dataclass(frozen=True)
class Change:
    """One atomic edit of one table, in the order it is applied.

    1. ``delete_jumps``: rules in built-in chains jumping into our chains that must go;
    2. ``flush_chains``: our chains, created if missing, emptied otherwise;
    3. ``add_rules``: appended in order (our chains' rules, then missing jumps);
    4. ``delete_chains``: our chains that are no longer planned (emptied, then deleted).
    """

    family: Family
    table: str
    delete_jumps: tuple[LiveRule, ...] = ()
    flush_chains: tuple[str, ...] = ()
    add_rules: tuple[Rule, ...] = ()
    delete_chains: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.delete_jumps or self.flush_chains or self.add_rules or self.delete_chains)


class Backend(Protocol):
    """A way to reach the kernel's nat tables (legacy libiptc, iptables-nft, a fake)."""

    @property
    def name(self) -> str:
        """``iptc``, ``legacy``, ``nft`` (or ``fake``), as shown in messages."""
        ...

    def read(self, family: Family, table: str = "nat") -> LiveTable:
        """The table as the kernel holds it, foreign rules and counters included."""
        ...

    def apply(self, change: Change) -> None:
        """Apply ``change`` atomically (all or nothing); raise ``BackendError`` on failure."""
        ...
