"""Proof that the real ``iptables-restore`` of both backends and both families accepts
the rendered text verbatim, and that ``iptables-save`` reads back every rule in order
with its comment (the golden files themselves are checked in tests/unit/interceptor)."""

from __future__ import annotations

import shlex

import pytest

from interceptor.model import Rule, RuleSet
from interceptor.options import Options
from interceptor.plan import CHAINS, build_plan
from interceptor.render import render_restore
from tests.support import netns
from tests.support.plan_cases import CASES, V4_POD

TOOLS = {
    ("legacy", 4): ("iptables-legacy-restore", "iptables-legacy-save"),
    ("legacy", 6): ("ip6tables-legacy-restore", "ip6tables-legacy-save"),
    ("nft", 4): ("iptables-nft-restore", "iptables-nft-save"),
    ("nft", 6): ("ip6tables-nft-restore", "ip6tables-nft-save"),
}


def _contains(tokens: list[str], part: list[str]) -> bool:
    return any(tokens[i : i + len(part)] == part for i in range(len(tokens) - len(part) + 1))


def assert_saved_matches(saved: str, rs: RuleSet) -> None:
    """Every chain and every rule of ``rs`` is in ``saved``, in order, with its comment."""
    for chain in CHAINS:
        assert f":{chain} - [0:0]" in saved
    lines = [shlex.split(line) for line in saved.splitlines() if line.startswith("-A ")]
    ours = [t for t in lines if "--comment" in t and t[t.index("--comment") + 1].startswith("mesh")]
    assert len(ours) == len(rs.rules)
    for rule in rs.rules:
        found = [t for t in ours if t[t.index("--comment") + 1] == rule.comment]
        assert len(found) == 1, rule.comment
        tokens = found[0]
        assert tokens[1] == rule.chain
        assert _contains(tokens, ["-j", rule.target, *rule.target_args]), tokens
        for m in rule.matches:
            if m.option in ("-s", "-d") and m.value.endswith("/0"):
                continue  # save omits a match on everything
            assert _contains(tokens, m.to_args()), (m, tokens)
    for chain in ("PREROUTING", "OUTPUT", *CHAINS):
        saved_order = [t[t.index("--comment") + 1] for t in ours if t[1] == chain]
        assert saved_order == [r.comment for r in rs.chain_rules(chain)]


@pytest.mark.netns
@pytest.mark.parametrize("backend", ["legacy", "nft"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_accepts_restore_text(backend: str, case: str) -> None:
    options, pod = CASES[case]
    plan = build_plan(options, pod)
    with netns.netns("ic") as ns:
        for rs in plan.rulesets:
            restore, save = TOOLS[(backend, rs.family)]
            if not netns.have(restore):
                pytest.skip(f"{restore} not installed")
            done = ns.run(restore, "--noflush", input=render_restore(rs).encode(), check=False)
            assert done.returncode == 0, done.stderr
            assert_saved_matches(ns.run(save, "-t", "nat").stdout, rs)


@pytest.mark.netns
def test_saved_rules_check_detects_a_missing_rule() -> None:
    """The kernel check above can fail: a plan with a rule dropped does not match."""
    rs = build_plan(Options(), V4_POD).rulesets[0]
    with netns.netns("ic") as ns:
        ns.run("iptables-legacy-restore", "--noflush", input=render_restore(rs).encode())
        saved = ns.run("iptables-legacy-save", "-t", "nat").stdout
    assert_saved_matches(saved, rs)
    short = RuleSet(4, rs.table, rs.chains, rs.rules[:-1])
    with pytest.raises(AssertionError):
        assert_saved_matches(saved, short)


@pytest.mark.netns
@pytest.mark.parametrize("backend", ["legacy", "nft"])
def test_kernel_reads_quoted_arguments_as_one_token(backend: str) -> None:
    """quote() matches iptables-restore's tokenizer: quotes, backslashes, apostrophes survive."""
    comment = 'say "hi" to C:\\dir, it\'s  fine'
    rs = RuleSet(4, "nat", ("MESH_T",), (Rule("MESH_T", (), "RETURN", comment=comment),))
    restore, save = TOOLS[(backend, 4)]
    with netns.netns("ic") as ns:
        done = ns.run(restore, "--noflush", input=render_restore(rs).encode(), check=False)
        assert done.returncode == 0, done.stderr
        saved = ns.run(save, "-t", "nat").stdout
    line = next(x for x in saved.splitlines() if x.startswith("-A MESH_T"))
    # iptables-save escapes " and \ and ' with a backslash inside double quotes
    assert (
        line
        == '-A MESH_T -m comment --comment "say \\"hi\\" to C:\\\\dir, it\\\'s  fine" -j RETURN'
    )
