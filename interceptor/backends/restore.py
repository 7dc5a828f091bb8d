"""The ``legacy`` and ``nft`` backends: ``iptables-*-restore --noflush`` in, ``-save`` out.

A ``Change`` is rendered to one restore transaction per table (declare our chains —
which flushes them —, delete stale jumps, append rules, delete stale chains, COMMIT),
so the kernel swaps the whole table at once or keeps the old one. Reading uses
``iptables-*-save -c -t <table>``; for legacy we first look at
``/proc/net/ip*_tables_names`` so that merely reading never creates a table.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from interceptor.backends.base import Change, LiveTable
from interceptor.backends.saveparse import SaveParseError, parse_save
from interceptor.errors import BackendError, BackendUnavailable
from interceptor.model import Family
from interceptor.render import quote

VARIANTS = ("legacy", "nft")


def tool(variant: str, family: Family, kind: str) -> str:
    """``iptables-legacy-save``, ``ip6tables-nft-restore``, ..."""
    return f"{'ip6' if family == 6 else 'ip'}tables-{variant}-{kind}"


def render_change(change: Change) -> str:
    """The restore text applying ``change`` to a table that is not flushed as a whole."""
    lines = [f"*{change.table}"]
    lines += [f":{c} - [0:0]" for c in (*change.flush_chains, *change.delete_chains)]
    for live in change.delete_jumps:
        lines.append(" ".join(["-D", quote(live.rule.chain), *map(quote, live.args)]))
    for rule in change.add_rules:
        lines.append(" ".join(["-A", quote(rule.chain), *map(quote, rule.to_args())]))
    lines += [f"-X {c}" for c in change.delete_chains]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def run_tool(argv: list[str], stdin: str | None = None) -> str:
    """Run an iptables tool; a missing binary or a non-zero exit becomes a typed error."""
    try:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError as e:
        raise BackendUnavailable(f"{argv[0]} not found: install iptables") from e
    except subprocess.TimeoutExpired as e:
        raise BackendError(f"{argv[0]} did not finish within 60 s") from e
    if done.returncode != 0:
        detail = done.stderr.strip().replace("\n", "; ") or f"exit {done.returncode}"
        raise BackendError(f"{' '.join(argv)} failed: {detail}")
    return done.stdout


def legacy_table_exists(family: Family, table: str) -> bool:
    names = Path(f"/proc/net/{'ip6' if family == 6 else 'ip'}_tables_names")
    try:
        return table in names.read_text().split()
    except OSError:
        return False


def read_table(variant: str, family: Family, table: str) -> LiveTable:
    if variant == "legacy" and not legacy_table_exists(family, table):
        return LiveTable(family, table, (), ())
    out = run_tool([tool(variant, family, "save"), "-c", "-t", table])
    try:
        return parse_save(out, family, table)
    except SaveParseError as e:
        raise BackendError(f"{tool(variant, family, 'save')}: {e}") from e


@dataclass(frozen=True)
class RestoreBackend:
    """``iptables-<variant>-restore --noflush`` (``variant`` is ``legacy`` or ``nft``)."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in VARIANTS:
            raise ValueError(f"unknown iptables variant {self.name!r}")

    def read(self, family: Family, table: str = "nat") -> LiveTable:
        return read_table(self.name, family, table)

    def apply(self, change: Change) -> None:
        argv = [tool(self.name, change.family, "restore"), "--noflush"]
        if self.name == "legacy":
            argv.append("--wait")  # legacy takes the xtables lock; nft is transactional
        run_tool(argv, render_change(change))
