"""The ``iptc`` backend: python-iptables (libiptc) on the legacy tables, one commit per table.

The only module importing ``iptc``. The handle works on a private copy of the table
(autocommit off) and ``commit()`` swaps the whole table into the kernel at once; any
error before it just drops the copy. python-iptables silently skips fields it cannot
encode, so reading goes through ``iptables-legacy-save`` (an independent path to the
same kernel tables) and the engine compares what it reads back with the plan. Each
apply runs in a forked child (see ``apply``).
"""

from __future__ import annotations

import os
from typing import Any

from interceptor.backends.base import Change, LiveTable
from interceptor.backends.restore import read_table
from interceptor.errors import BackendError, BackendUnavailable
from interceptor.model import MODULE_OF, Family, Rule

# Options that are fields of the rule itself rather than of a match module.
_RULE_FIELDS = {
    "-p": "protocol",
    "-s": "src",
    "-d": "dst",
    "-i": "in_interface",
    "-o": "out_interface",
}


def _load() -> Any:
    try:
        import iptc
    except (ImportError, OSError) as e:  # OSError: libiptc / libxtables missing
        raise BackendUnavailable(f"backend iptc: python-iptables unusable: {e}") from e
    return iptc


class IptcBackend:
    name = "iptc"

    def __init__(self) -> None:
        self._iptc = _load()

    def read(self, family: Family, table: str = "nat") -> LiveTable:
        return read_table("legacy", family, table)

    def apply(self, change: Change) -> None:
        """Run the libiptc work in a forked child and wait for its verdict.

        libxtables registers an extension (REDIRECT, owner, ...) for ONE family per
        process: once loaded for IPv4 it cannot be found for IPv6. A fresh child per
        table keeps each family's extensions apart; this process never loads any.
        """
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns
            os.close(read_fd)
            code = 0
            try:
                self._commit(change)
            except BaseException as e:  # everything goes back to the parent as text
                os.write(write_fd, str(e).encode() or repr(e).encode())
                code = 1
            os._exit(code)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            message = pipe.read().decode(errors="replace")
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise BackendError(
                f"iptc: {change.table} IPv{change.family}: {message or 'child failed'}"
            )

    def _commit(self, change: Change) -> None:
        cls = self._iptc.Table6 if change.family == 6 else self._iptc.Table
        tbl = cls(change.table, autocommit=False)
        tbl.refresh()  # start from the kernel's current table, not a cached copy
        self._edit(tbl, change)
        tbl.commit()  # the one moment the kernel sees anything: the whole table at once

    def _edit(self, tbl: Any, change: Change) -> None:
        ip = self._iptc
        # Highest positions first, so earlier deletions do not shift later ones.
        for live in sorted(change.delete_jumps, key=lambda r: (r.rule.chain, -r.position)):
            rules = ip.Chain(tbl, live.rule.chain).rules
            found = rules[live.position - 1] if live.position <= len(rules) else None
            if found is None or found.target.name != live.rule.target:
                raise BackendError(f"{live.rule.chain} changed while we worked; retry")
            ip.Chain(tbl, live.rule.chain).delete_rule(found)
        for name in (*change.flush_chains, *change.delete_chains):
            if tbl.is_chain(name):
                tbl.flush_entries(name)
            elif name in change.flush_chains:
                tbl.create_chain(name)
        for rule in change.add_rules:
            ip.Chain(tbl, rule.chain).append_rule(self._encode(rule, change.family))
        for name in change.delete_chains:
            tbl.delete_chain(name)

    def _encode(self, rule: Rule, family: Family) -> Any:
        ip = self._iptc
        out = ip.Rule6() if family == 6 else ip.Rule()
        modules: dict[str, Any] = {}
        for m in rule.matches:
            value = ("!" if m.negate else "") + m.value
            if m.option in _RULE_FIELDS:
                setattr(out, _RULE_FIELDS[m.option], value)
                continue
            module = MODULE_OF.get(m.option)
            if module is None:
                raise BackendError(f"iptc backend cannot encode match {m.option}")
            if module not in modules:
                modules[module] = out.create_match(module)
            modules[module].parse(m.option.lstrip("-"), value)
        if rule.comment:
            out.create_match("comment").comment = rule.comment
        target = out.create_target(rule.target)
        args = list(rule.target_args)
        if len(args) % 2:
            raise BackendError(f"iptc backend cannot encode target args {args}")
        for opt, value in zip(args[::2], args[1::2], strict=True):
            target.parse(opt.lstrip("-"), value)
        return out
