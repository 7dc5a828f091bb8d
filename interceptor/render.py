"""Rule model -> ``iptables-restore`` text, deterministically (pure; no I/O).

One table per text: declare each of our chains (``:MESH_X - [0:0]``, which also empties it
under ``--noflush``), append every rule in plan order, ``COMMIT``. Arguments are quoted the
way iptables-restore's tokenizer reads them: inside double quotes, ``\\`` escapes the next
character; nothing else is special.
"""

from __future__ import annotations

from interceptor.model import RuleSet
from interceptor.plan import Plan

_NEEDS_QUOTES = frozenset(" \t\"\\'")
RESTORE_TOOL = {4: "iptables-restore", 6: "ip6tables-restore"}


def quote(arg: str) -> str:
    """``arg`` as one token of a restore file (comments with spaces get double quotes)."""
    if "\n" in arg or "\r" in arg:
        raise ValueError(f"{arg!r}: a restore file argument cannot span lines")
    if arg and not _NEEDS_QUOTES.intersection(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_restore(ruleset: RuleSet) -> str:
    """Full restore text for the ruleset's table, meant for ``iptables-restore --noflush``."""
    lines = [f"*{ruleset.table}"]
    lines += [f":{chain} - [0:0]" for chain in ruleset.chains]
    lines += [" ".join(["-A", rule.chain, *map(quote, rule.to_args())]) for rule in ruleset.rules]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def render_plan(plan: Plan) -> str:
    """What ``mesh-interceptor plan`` prints: per family a header, then its restore text."""
    parts = [
        f"# IPv{rs.family} ({RESTORE_TOOL[rs.family]})\n{render_restore(rs)}"
        for rs in plan.rulesets
    ]
    return "\n".join(parts)
