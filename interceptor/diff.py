"""Pure comparison of a planned ``RuleSet`` with a live table, and the ``Change`` between them.

"Ours" in a live table is every ``MESH_`` chain with its rules plus every rule outside
them that jumps into one. Rules compare by canonical form (iptables-save rewrites
text). The change replaces our chains wholesale (declare = flush, then re-add), adds
a jump only when it is missing, and deletes stale jumps and chains; applying the
change computed for the *old* ours is how a failed install is rolled back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from interceptor.backends.base import Change, LiveRule, LiveTable
from interceptor.model import BUILTIN_CHAINS, PREFIX, Family, Rule, RuleSet
from interceptor.render import quote


def _is_jump(rule: Rule) -> bool:
    return not rule.chain.startswith(PREFIX) and rule.target.startswith(PREFIX)


def live_jumps(live: LiveTable) -> tuple[LiveRule, ...]:
    return tuple(r for r in live.rules if _is_jump(r.rule))


def ours(live: LiveTable) -> RuleSet | None:
    """Our part of a live table as a ``RuleSet`` (None when we hold nothing there)."""
    chains = live.our_chains()
    rules = [r.rule for r in live.rules if r.rule.chain in chains]
    rules += [r.rule for r in live_jumps(live) if r.rule.chain in BUILTIN_CHAINS]
    if not chains and not rules:
        return None
    return RuleSet(live.family, live.table, chains, tuple(rules))


def show(rule: Rule) -> str:
    """A rule for humans, in the ``-A chain ...`` form (not for restore input)."""
    return " ".join(["-A", rule.chain, *(quote(a) for a in rule.to_args())])


def drift(desired: RuleSet | None, live: LiveTable) -> list[str]:
    """Readable differences between plan and kernel; empty when they are the same."""
    fam = live.family
    want_chains = desired.chains if desired else ()
    lines = [f"missing chain: {c}" for c in want_chains if c not in live.chain_names()]
    stale = [c for c in live.our_chains() if c not in want_chains]
    lines += [f"unexpected chain: {c}" for c in stale]
    for c in stale:
        lines += [f"unexpected: {show(r.rule)}" for r in live.chain_rules(c)]
    for c in want_chains:
        want = list(desired.chain_rules(c)) if desired else []
        have = [r.rule for r in live.chain_rules(c)]
        if [r.canonical(fam) for r in want] != [r.canonical(fam) for r in have]:
            found = _multiset_diff(want, have, fam)
            lines += found or [f"order differs in chain {c}"]
    want_jumps = desired.jumps() if desired else ()
    lines += _multiset_diff(want_jumps, [r.rule for r in live_jumps(live)], fam)
    return lines


def _multiset_diff(want: Iterable[Rule], have: Iterable[Rule], fam: Family) -> list[str]:
    want_l, have_l = list(want), list(have)
    w = Counter(r.canonical(fam) for r in want_l)
    h = Counter(r.canonical(fam) for r in have_l)
    lines: list[str] = []
    for rules, extra, label in ((want_l, w - h, "missing"), (have_l, h - w, "unexpected")):
        for r in rules:
            key = r.canonical(fam)
            if extra[key] > 0:
                extra[key] -= 1
                lines.append(f"{label}: {show(r)}")
    return lines


def change_for(desired: RuleSet | None, live: LiveTable) -> Change:
    """The atomic edit turning ``live``'s part that is ours into ``desired``."""
    fam = live.family
    table = desired.table if desired else live.table
    want = Counter(r.canonical(fam) for r in (desired.jumps() if desired else ()))
    delete: list[LiveRule] = []
    for jump in live_jumps(live):
        key = jump.rule.canonical(fam)
        if want[key] > 0:
            want[key] -= 1  # already there: keep it, and its position and counters
        else:
            delete.append(jump)
    missing: list[Rule] = []
    for rule in desired.jumps() if desired else ():
        key = rule.canonical(fam)
        if want[key] > 0:
            want[key] -= 1
            missing.append(rule)
    chains = desired.chains if desired else ()
    body = [r for r in desired.rules if r.chain in chains] if desired else []
    return Change(
        family=fam,
        table=table,
        delete_jumps=tuple(delete),
        flush_chains=chains,
        add_rules=(*body, *missing),
        delete_chains=tuple(c for c in live.our_chains() if c not in chains),
    )
