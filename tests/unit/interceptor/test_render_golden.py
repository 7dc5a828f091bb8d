"""Rendering: quoting, golden plans (``MESH_UPDATE_GOLDEN=1`` rewrites them), and proof that
the real ``iptables-restore`` of both backends and both families accepts the text verbatim."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from interceptor.model import Match, Rule, RuleSet
from interceptor.options import Options
from interceptor.plan import CHAINS, PodFacts, build_plan
from interceptor.render import quote, render_plan, render_restore
from tests.support import netns

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "interceptor"
V4_POD = PodFacts(addresses4=("10.77.0.2",))
V6_POD = PodFacts(addresses4=("10.77.0.2",), addresses6=("fd77:0::2", "fe80::2"))
LL_POD = PodFacts(addresses4=("10.77.0.2",), addresses6=("fe80::2",))

CASES: dict[str, tuple[Options, PodFacts]] = {
    "defaults_v4_only": (Options(), V4_POD),
    "defaults_ipv6_on": (Options(ipv6="on"), V4_POD),
    "auto_global_ipv6": (Options(), V6_POD),
    "auto_link_local_ipv6_only": (Options(), LL_POD),
    "ipv6_off_despite_global": (Options(ipv6="off"), V6_POD),
    "custom_uid_gid": (Options(proxy_uid=2000, proxy_gid=3000), V4_POD),
    "custom_capture_ports": (Options(outbound_port=16001, inbound_port=16006), V4_POD),
    "exclude_outbound_ports": (Options(exclude_outbound_ports=(22, 3306)), V4_POD),
    "exclude_outbound_cidrs_mixed": (
        Options(exclude_outbound_cidrs=("10.96.0.0/12", "169.254.169.254/32", "fd00:10::/64")),
        V6_POD,
    ),
    "exclude_inbound_ports": (Options(exclude_inbound_ports=(8443, 15020, 9000)), V4_POD),
    "include_outbound_cidrs_v4": (
        Options(include_outbound_cidrs=("10.0.0.0/8", "172.16.0.0/12"), ipv6="on"),
        V4_POD,
    ),
    "include_outbound_cidrs_v6": (Options(include_outbound_cidrs=("fd77::/16",)), V6_POD),
    "include_outbound_cidrs_mixed": (
        Options(include_outbound_cidrs=("10.77.0.0/16", "fd77::/16")),
        V6_POD,
    ),
    "include_outbound_with_carve_out": (
        Options(include_outbound_cidrs=("10.0.0.0/8",), exclude_outbound_cidrs=("10.96.0.0/12",)),
        V4_POD,
    ),
    "include_outbound_none": (Options(include_outbound_cidrs=()), V6_POD),
    "include_inbound_ports": (Options(include_inbound_ports=("8080", "9090")), V4_POD),
    "include_inbound_none": (Options(include_inbound_ports=()), V6_POD),
    "everything_combined": (
        Options(
            proxy_uid=2000,
            proxy_gid=2001,
            outbound_port=16001,
            inbound_port=16006,
            include_outbound_cidrs=("10.0.0.0/8", "fd77::/16"),
            exclude_outbound_cidrs=("10.96.0.0/12", "fd77:ffff::/32"),
            exclude_outbound_ports=(22, 5432),
            include_inbound_ports=("8080", "8443"),
            exclude_inbound_ports=(9100,),
            backend="nft",
            ipv6="auto",
            validate=True,
        ),
        V6_POD,
    ),
}


# --- quoting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("RETURN", "RETURN"),
        ("127.0.0.1/32", "127.0.0.1/32"),
        ("mesh: a b", '"mesh: a b"'),
        ("tab\there", '"tab\there"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("it's", '"it\'s"'),
        ("", '""'),
    ],
)
def test_quote(arg: str, expected: str) -> None:
    assert quote(arg) == expected


def test_quote_refuses_newlines() -> None:
    with pytest.raises(ValueError, match="a\\\\nb"):
        quote("a\nb")


def test_render_restore_shape() -> None:
    rs = RuleSet(
        4,
        "nat",
        ("MESH_T",),
        (
            Rule(
                "MESH_T", (Match("-p", "tcp"), Match("--dport", "80")), "RETURN", comment="why so"
            ),
            Rule("OUTPUT", (), "MESH_T"),
        ),
    )
    assert render_restore(rs) == (
        "*nat\n"
        ":MESH_T - [0:0]\n"
        '-A MESH_T -p tcp -m tcp --dport 80 -m comment --comment "why so" -j RETURN\n'
        "-A OUTPUT -j MESH_T\n"
        "COMMIT\n"
    )


def test_render_plan_headers_per_family() -> None:
    text = render_plan(build_plan(Options(ipv6="on"), V4_POD))
    headers = [line for line in text.splitlines() if line.startswith("# ")]
    assert headers == ["# IPv4 (iptables-restore)", "# IPv6 (ip6tables-restore)"]
    assert text.count("COMMIT\n") == 2 and text.count("*nat\n") == 2


# --- golden files -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    options, pod = CASES[case]
    text = render_plan(build_plan(options, pod))
    assert text == render_plan(build_plan(options, pod)), "rendering must be deterministic"
    path = GOLDEN / f"{case}.txt"
    if os.environ.get("MESH_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with MESH_UPDATE_GOLDEN=1 and review it"
    assert path.read_text() == text


def test_no_stale_golden_files() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.txt")) == sorted(CASES)


# --- the real kernel accepts it ---------------------------------------------------------------

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
