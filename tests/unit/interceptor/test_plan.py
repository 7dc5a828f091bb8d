"""build_plan: which families, which rules in which order, and the properties every rule keeps."""

from __future__ import annotations

import pytest

from interceptor.model import BUILTIN_CHAINS, Match, Rule, RuleSet
from interceptor.options import Options
from interceptor.plan import (
    CHAINS,
    MESH_IN_REDIRECT,
    MESH_INBOUND,
    MESH_OUTPUT,
    MESH_REDIRECT,
    Plan,
    PodFacts,
    build_plan,
)

V4 = PodFacts(addresses4=("10.77.0.2",))
V6 = PodFacts(addresses4=("10.77.0.2/24",), addresses6=("fd77:0::2/64", "fe80::1/64"))


@pytest.mark.parametrize(
    ("addresses6", "expected"),
    [
        ((), False),
        (("fe80::1",), False),  # link-local only: no IPv6 service address
        (("::1",), False),
        (("fe80::1/64", "fd77::2/64"), True),  # ULA has global scope for the kernel
        (("2001:db8::5",), True),
    ],
)
def test_has_global_ipv6(addresses6: tuple[str, ...], expected: bool) -> None:
    assert PodFacts(addresses6=addresses6).has_global_ipv6 is expected


@pytest.mark.parametrize(
    ("facts", "bad"), [({"addresses4": ("fd77::2",)}, "fd77::2"), ({"addresses6": ("x",)}, "x")]
)
def test_pod_facts_reject_bad_addresses(facts: dict[str, tuple[str, ...]], bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        PodFacts(**facts)


@pytest.mark.parametrize(
    ("ipv6", "pod", "families"),
    [
        ("auto", V4, [4]),
        ("auto", V6, [4, 6]),
        ("auto", PodFacts(addresses6=("fe80::1",)), [4]),
        ("on", V4, [4, 6]),
        ("off", V6, [4]),
    ],
)
def test_families(ipv6: str, pod: PodFacts, families: list[int]) -> None:
    plan = build_plan(Options(ipv6=ipv6), pod)
    assert [rs.family for rs in plan.rulesets] == families
    assert (plan.for_family(6) is not None) is (6 in families)
    assert plan.for_family(4) is plan.rulesets[0]


def test_plan_rejects_wrong_family_order() -> None:
    v6 = build_plan(Options(ipv6="on"), V4).rulesets[1]
    with pytest.raises(ValueError):
        Plan((v6,))


def _args(rs: RuleSet, chain: str) -> list[str]:
    """Rules of a chain as ``match... -j target`` strings, without comments."""
    out = []
    for r in rs.chain_rules(chain):
        args = r.to_args()
        i = args.index("comment") - 1
        out.append(" ".join(args[:i] + args[i + 4 :]))
    return out


def test_default_v4_layout_follows_istio() -> None:
    rs = build_plan(Options(), V4).rulesets[0]
    assert rs.table == "nat" and rs.chains == CHAINS
    assert [
        (r.chain, " ".join(m for x in r.matches for m in x.to_args()), r.target) for r in rs.jumps()
    ] == [("PREROUTING", "-p tcp", MESH_INBOUND), ("OUTPUT", "-p tcp", MESH_OUTPUT)]
    assert _args(rs, MESH_INBOUND) == [
        "-p tcp -m tcp --dport 15000 -j RETURN",
        "-p tcp -m tcp --dport 15020 -j RETURN",
        "-p tcp -m tcp --dport 15021 -j RETURN",
        "-p tcp -m tcp --dport 15090 -j RETURN",
        "-p tcp -j MESH_IN_REDIRECT",
    ]
    assert _args(rs, MESH_IN_REDIRECT) == ["-p tcp -j REDIRECT --to-ports 15006"]
    assert _args(rs, MESH_OUTPUT) == [
        "-o lo -s 127.0.0.6/32 -j RETURN",
        "-o lo ! -d 127.0.0.1/32 -m owner --uid-owner 1337 -j MESH_IN_REDIRECT",
        "-o lo -m owner ! --uid-owner 1337 -j RETURN",
        "-m owner --uid-owner 1337 -j RETURN",
        "-o lo ! -d 127.0.0.1/32 -m owner --gid-owner 1337 -j MESH_IN_REDIRECT",
        "-o lo -m owner ! --gid-owner 1337 -j RETURN",
        "-m owner --gid-owner 1337 -j RETURN",
        "-d 127.0.0.1/32 -j RETURN",
        "-j MESH_REDIRECT",
    ]
    assert _args(rs, MESH_REDIRECT) == ["-p tcp -j REDIRECT --to-ports 15001"]


def test_v6_uses_v6_loopback_and_passthrough() -> None:
    rs = build_plan(Options(ipv6="on"), V4).rulesets[1]
    out = _args(rs, MESH_OUTPUT)
    assert out[0] == "-o lo -s ::6/128 -j RETURN"
    assert out[1] == "-o lo ! -d ::1/128 -m owner --uid-owner 1337 -j MESH_IN_REDIRECT"
    assert "-d ::1/128 -j RETURN" in out
    assert rs.canonical()  # every address is valid for the family (canonical() checks it)


def test_custom_values_reach_the_rules() -> None:
    o = Options(
        proxy_uid=2000,
        proxy_gid=3000,
        outbound_port=16001,
        inbound_port=16006,
        exclude_outbound_ports=(22,),
        exclude_inbound_ports=(8443, 15020),
        exclude_outbound_cidrs=("10.96.0.0/12", "fd00:10::/64"),
        ipv6="on",
    )
    v4, v6 = build_plan(o, V4).rulesets
    out4, in4 = _args(v4, MESH_OUTPUT), _args(v4, MESH_INBOUND)
    assert "-m owner --uid-owner 2000 -j RETURN" in out4
    assert "-m owner --gid-owner 3000 -j RETURN" in out4
    assert _args(v4, MESH_REDIRECT) == ["-p tcp -j REDIRECT --to-ports 16001"]
    assert _args(v4, MESH_IN_REDIRECT) == ["-p tcp -j REDIRECT --to-ports 16006"]
    # exclusions come after the loop guards and before the final jump
    assert out4[-4:] == [
        "-d 127.0.0.1/32 -j RETURN",
        "-p tcp -m tcp --dport 22 -j RETURN",
        "-d 10.96.0.0/12 -j RETURN",
        "-j MESH_REDIRECT",
    ]
    assert "-d fd00:10::/64 -j RETURN" in _args(v6, MESH_OUTPUT)
    assert "-d fd00:10::/64 -j RETURN" not in out4
    # 15020 is reserved anyway: listed once
    assert in4.count("-p tcp -m tcp --dport 15020 -j RETURN") == 1
    assert in4[-2:] == ["-p tcp -m tcp --dport 8443 -j RETURN", "-p tcp -j MESH_IN_REDIRECT"]


def test_include_lists_redirect_only_what_is_listed_per_family() -> None:
    o = Options(
        include_outbound_cidrs=("10.0.0.0/8",), include_inbound_ports=("8080", "9090"), ipv6="on"
    )
    v4, v6 = build_plan(o, V4).rulesets
    assert _args(v4, MESH_OUTPUT)[-1] == "-d 10.0.0.0/8 -j MESH_REDIRECT"
    assert "-j MESH_REDIRECT" not in _args(v4, MESH_OUTPUT)
    # no IPv6 range listed: IPv6 redirects nothing outbound, and a comment says so
    last6 = v6.chain_rules(MESH_OUTPUT)[-1]
    assert (last6.matches, last6.target) == ((), "RETURN")
    assert "no IPv6 range" in last6.comment
    assert not [r for r in v6.chain_rules(MESH_OUTPUT) if r.target == MESH_REDIRECT]
    assert _args(v4, MESH_INBOUND)[-2:] == [
        "-p tcp -m tcp --dport 8080 -j MESH_IN_REDIRECT",
        "-p tcp -m tcp --dport 9090 -j MESH_IN_REDIRECT",
    ]


def test_empty_includes_capture_nothing() -> None:
    rs = build_plan(Options(include_outbound_cidrs=(), include_inbound_ports=()), V4).rulesets[0]
    assert not [r for r in rs.rules if r.target == MESH_REDIRECT]
    assert not [r for r in rs.chain_rules(MESH_INBOUND) if r.target == MESH_IN_REDIRECT]
    assert "no inbound port is captured" in rs.chain_rules(MESH_INBOUND)[-1].comment


ALL_OPTIONS = [
    Options(),
    Options(
        ipv6="on",
        proxy_uid=0,
        proxy_gid=4294967294,
        exclude_outbound_ports=(1, 65535),
        exclude_outbound_cidrs=("2001:db8:aaaa:bbbb:cccc:dddd:eeee:0/112", "0.0.0.0/0"),
        include_outbound_cidrs=("ffff:ffff:ffff:ffff:ffff:ffff:ffff:0/112",),
        include_inbound_ports=("65535",),
        exclude_inbound_ports=(1,),
    ),
    Options(include_outbound_cidrs=(), include_inbound_ports=(), ipv6="on"),
]


@pytest.mark.parametrize("options", ALL_OPTIONS)
def test_every_rule_explains_itself_safely(options: Options) -> None:
    for rs in build_plan(options, V4).rulesets:
        comments = [r.comment for r in rs.rules]
        assert len(set(comments)) == len(comments), "comments identify rules: keep them unique"
        for r in rs.rules:
            assert r.comment.startswith("mesh: ")
            assert len(r.comment.encode()) <= 255  # xt_comment's limit
            assert not set(r.comment) & set("\"'\\\n"), r.comment  # save prints it back as is
            # only the two jumps sit in built-in chains
            if r.chain in BUILTIN_CHAINS:
                assert r.target in (MESH_INBOUND, MESH_OUTPUT)
                assert r.matches == (Match("-p", "tcp"),)


def test_dport_always_follows_protocol() -> None:
    o = Options(exclude_outbound_ports=(22,), include_inbound_ports=("80",))
    for r in build_plan(o, V4).rulesets[0].rules:
        args = r.to_args()
        if "--dport" in args:
            assert args[: args.index("--dport")][-4:] == ["-p", "tcp", "-m", "tcp"]


def test_plan_is_pure_and_deterministic() -> None:
    o = Options(exclude_outbound_cidrs=("10.0.0.0/8", "fd00::/8"), ipv6="auto")
    assert build_plan(o, V6) == build_plan(o, V6)
    assert isinstance(build_plan(o, V6).rulesets[0].rules[0], Rule)
