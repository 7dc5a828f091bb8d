"""Parse ``iptables-save [-c]`` output into live tables of ``Rule`` objects.

iptables-save rewrites what it was given (adds ``-m tcp``, ``/32``, reorders), so we
parse its lines into the rule model and compare canonical forms, never text. Every
``[!] --option value...`` becomes a ``Match``; ``-m <module>`` loads are dropped (the
model re-derives them), the comment becomes ``Rule.comment``, and everything after
``-j`` is the target and its arguments. Quoting follows xtables: double quotes, with
a backslash escaping the next character.
"""

from __future__ import annotations

import re

from interceptor.backends.base import LiveChain, LiveRule, LiveTable
from interceptor.model import Family, Match, Rule

_COUNTERS = re.compile(r"^\[(\d+):(\d+)\]$")


class SaveParseError(ValueError):
    """A line of iptables-save output we cannot make sense of (names the line)."""


def split_args(line: str) -> list[str]:
    """Split one iptables-save line into arguments (xtables quoting rules)."""
    args: list[str] = []
    cur: list[str] = []
    in_arg = quoted = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            cur.append(line[i + 1])
            in_arg = True
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
            in_arg = True
        elif ch.isspace() and not quoted:
            if in_arg:
                args.append("".join(cur))
                cur, in_arg = [], False
        else:
            cur.append(ch)
            in_arg = True
        i += 1
    if quoted:
        raise SaveParseError(f"unterminated quote in: {line}")
    if in_arg:
        args.append("".join(cur))
    return args


def _is_option(token: str) -> bool:
    return token.startswith("-") and len(token) > 1 and not token[1:].isdigit()


def parse_rule_args(chain: str, args: list[str]) -> Rule:
    """Turn the arguments after ``-A <chain>`` into a ``Rule``."""
    matches: list[Match] = []
    comment = ""
    negate = False
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "!":
            negate = True
            i += 1
            continue
        if tok in ("-j", "-g"):
            if i + 1 >= len(args):
                raise SaveParseError(f"{tok} without a target in chain {chain}")
            extra = ("--goto",) if tok == "-g" else ()
            return Rule(chain, tuple(matches), args[i + 1], extra + tuple(args[i + 2 :]), comment)
        if not _is_option(tok):
            raise SaveParseError(f"unexpected {tok!r} in rule of chain {chain}: {args}")
        j = i + 1
        while j < len(args) and not _is_option(args[j]) and args[j] != "!":
            j += 1
        value = " ".join(args[i + 1 : j])
        if tok == "-m":
            pass  # a module load: the model derives it from the options that follow
        elif tok == "--comment":
            comment = value
        else:
            matches.append(Match(tok, value, negate))
        negate = False
        i = j
    # A rule without -j only counts packets; keep it visible with an empty target.
    return Rule(chain, tuple(matches), "", (), comment)


def parse_save(text: str, family: Family, table: str = "nat") -> LiveTable:
    """The ``table`` section of iptables-save output (empty table when absent)."""
    chains: list[LiveChain] = []
    rules: list[LiveRule] = []
    positions: dict[str, int] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = line[1:]
            continue
        if current != table:
            continue
        if line == "COMMIT":
            current = None
            continue
        if line.startswith(":"):
            parts = line[1:].split()
            pk, by = _counters(parts[2]) if len(parts) > 2 else (0, 0)
            chains.append(LiveChain(parts[0], parts[1] if len(parts) > 1 else "-", pk, by))
            continue
        args = split_args(line)
        pk = by = 0
        if args and _COUNTERS.match(args[0]):
            pk, by = _counters(args.pop(0))
        if len(args) < 2 or args[0] != "-A":
            raise SaveParseError(f"not a rule line: {raw}")
        chain = args[1]
        positions[chain] = positions.get(chain, 0) + 1
        rule = parse_rule_args(chain, args[2:])
        rules.append(LiveRule(rule, tuple(args[2:]), positions[chain], pk, by))
    return LiveTable(family, table, tuple(chains), tuple(rules))


def _counters(token: str) -> tuple[int, int]:
    m = _COUNTERS.match(token)
    if not m:
        raise SaveParseError(f"bad counters {token!r}")
    return int(m.group(1)), int(m.group(2))
