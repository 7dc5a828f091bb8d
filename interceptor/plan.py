"""Options -> which capture rules, as data: one pure function, ``build_plan``.

It follows Istio's proven nat layout with our ``MESH_`` chains: ``MESH_INBOUND`` returns the
proxy's own and excluded ports, then jumps to ``MESH_IN_REDIRECT`` (REDIRECT to the inbound
port); ``MESH_OUTPUT`` returns the proxy's own traffic, loopback and exclusions, then jumps to
``MESH_REDIRECT`` (REDIRECT to the outbound port). Every rule's comment says why it exists;
comments never contain quotes or backslashes, so ``iptables-save`` prints them back verbatim.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from interceptor.model import Family, Match, Rule, RuleSet
from interceptor.options import ANY, RESERVED_INBOUND_PORTS, Options

TABLE = "nat"
MESH_INBOUND = "MESH_INBOUND"
MESH_IN_REDIRECT = "MESH_IN_REDIRECT"
MESH_OUTPUT = "MESH_OUTPUT"
MESH_REDIRECT = "MESH_REDIRECT"
CHAINS = (MESH_INBOUND, MESH_IN_REDIRECT, MESH_OUTPUT, MESH_REDIRECT)
# Source the proxy uses to forward inbound traffic to the app (Envoy's choice, kept).
PASSTHROUGH: dict[Family, str] = {4: "127.0.0.6/32", 6: "::6/128"}
LOOPBACK: dict[Family, str] = {4: "127.0.0.1/32", 6: "::1/128"}
_WHY_RESERVED = {
    15000: "admin port",
    15020: "telemetry and health port",
    15021: "health port kept free for Istio-style probes",
    15090: "metrics port kept free for Istio-style scrapes",
}
TCP = Match("-p", "tcp")


@dataclass(frozen=True)
class PodFacts:
    """What the pod's interfaces hold (read with pyroute2 elsewhere); addresses may carry /len."""

    addresses4: tuple[str, ...] = ()
    addresses6: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for family, addresses in ((4, self.addresses4), (6, self.addresses6)):
            for a in addresses:
                if ipaddress.ip_interface(a).version != family:
                    raise ValueError(f"{a!r} is not an IPv{family} address")

    @property
    def has_global_ipv6(self) -> bool:
        """True for any address of global scope in the kernel's sense (ULA fd00::/8 included:
        ``ipaddress.is_global`` would wrongly say no), i.e. not loopback/link-local/multicast."""
        for a in self.addresses6:
            ip = ipaddress.ip_interface(a).ip
            if not (ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified):
                return True
        return False


@dataclass(frozen=True)
class Plan:
    """The rule sets to install: one per address family (nat table), IPv4 first."""

    rulesets: tuple[RuleSet, ...]

    def __post_init__(self) -> None:
        families = [rs.family for rs in self.rulesets]
        if families not in ([4], [4, 6]):
            raise ValueError(f"a plan holds IPv4 then optionally IPv6 rules, not {families}")

    def for_family(self, family: Family) -> RuleSet | None:
        return next((rs for rs in self.rulesets if rs.family == family), None)


def wants_ipv6(options: Options, pod: PodFacts) -> bool:
    return options.ipv6 == "on" or (options.ipv6 == "auto" and pod.has_global_ipv6)


def build_plan(options: Options, pod: PodFacts) -> Plan:
    families: tuple[Family, ...] = (4, 6) if wants_ipv6(options, pod) else (4,)
    return Plan(tuple(build_ruleset(options, f) for f in families))


def build_ruleset(options: Options, family: Family) -> RuleSet:
    rules = (
        Rule(
            "PREROUTING",
            (TCP,),
            MESH_INBOUND,
            comment="mesh: inbound TCP goes through MESH_INBOUND",
        ),
        *_inbound(options, family),
        Rule(
            MESH_IN_REDIRECT,
            (TCP,),
            "REDIRECT",
            ("--to-ports", str(options.inbound_port)),
            comment=f"mesh: inbound TCP goes to the proxy inbound port {options.inbound_port}",
        ),
        Rule("OUTPUT", (TCP,), MESH_OUTPUT, comment="mesh: outbound TCP goes through MESH_OUTPUT"),
        *_outbound(options, family),
        Rule(
            MESH_REDIRECT,
            (TCP,),
            "REDIRECT",
            ("--to-ports", str(options.outbound_port)),
            comment=f"mesh: outbound TCP goes to the proxy outbound port {options.outbound_port}",
        ),
    )
    return RuleSet(family, TABLE, CHAINS, rules)


def _dport(port: int | str) -> tuple[Match, ...]:
    return (TCP, Match("--dport", str(port)))


def _inbound(o: Options, family: Family) -> Iterator[Rule]:
    for port in RESERVED_INBOUND_PORTS:
        yield Rule(
            MESH_INBOUND,
            _dport(port),
            "RETURN",
            comment=f"mesh: port {port} is the proxy {_WHY_RESERVED[port]}, never captured",
        )
    for port in o.exclude_inbound_ports:
        if port not in RESERVED_INBOUND_PORTS:
            yield Rule(
                MESH_INBOUND,
                _dport(port),
                "RETURN",
                comment=f"mesh: inbound port {port} excluded by --exclude-inbound-ports",
            )
    if o.include_inbound_ports == (ANY,):
        yield Rule(
            MESH_INBOUND,
            (TCP,),
            MESH_IN_REDIRECT,
            comment="mesh: all other inbound TCP is captured by the proxy",
        )
    elif not o.include_inbound_ports:
        # A visible no-op says why nothing is captured, instead of a silently short chain.
        yield Rule(
            MESH_INBOUND,
            (),
            "RETURN",
            comment="mesh: --include-inbound-ports is empty, no inbound port is captured",
        )
    for included in (p for p in o.include_inbound_ports if p != ANY):
        yield Rule(
            MESH_INBOUND,
            _dport(included),
            MESH_IN_REDIRECT,
            comment=f"mesh: inbound port {included} is captured (--include-inbound-ports)",
        )


def _owner_rules(option: str, ident: int, family: Family) -> Iterator[Rule]:
    kind = option.removeprefix("--").removesuffix("-owner")  # uid / gid
    yield Rule(
        MESH_OUTPUT,
        (Match("-o", "lo"), Match("-d", LOOPBACK[family], negate=True), Match(option, str(ident))),
        MESH_IN_REDIRECT,
        comment=f"mesh: proxy ({kind} {ident}) calling a pod address over lo goes to "
        "the inbound listener, so inbound policy applies",
    )
    yield Rule(
        MESH_OUTPUT,
        (Match("-o", "lo"), Match(option, str(ident), negate=True)),
        "RETURN",
        comment=f"mesh: app (not {kind} {ident}) talking to its own pod over lo is not captured",
    )
    yield Rule(
        MESH_OUTPUT,
        (Match(option, str(ident)),),
        "RETURN",
        comment=f"mesh: traffic of the proxy ({kind} {ident}) is never redirected (loop guard)",
    )


def _of_family(cidrs: tuple[str, ...], family: Family) -> list[str]:
    nets = (ipaddress.ip_network(c, strict=False) for c in cidrs if c != ANY)
    return [str(n) for n in nets if n.version == family]


def _outbound(o: Options, family: Family) -> Iterator[Rule]:
    name = f"IPv{family}"
    yield Rule(
        MESH_OUTPUT,
        (Match("-o", "lo"), Match("-s", PASSTHROUGH[family])),
        "RETURN",
        comment=f"mesh: proxy inbound passthrough to the app (source "
        f"{PASSTHROUGH[family].split('/')[0]}) is never redirected",
    )
    yield from _owner_rules("--uid-owner", o.proxy_uid, family)
    yield from _owner_rules("--gid-owner", o.proxy_gid, family)
    yield Rule(
        MESH_OUTPUT,
        (Match("-d", LOOPBACK[family]),),
        "RETURN",
        comment=f"mesh: {name} loopback destination is never redirected",
    )
    for port in o.exclude_outbound_ports:
        yield Rule(
            MESH_OUTPUT,
            _dport(port),
            "RETURN",
            comment=f"mesh: outbound port {port} excluded by --exclude-outbound-ports",
        )
    for cidr in _of_family(o.exclude_outbound_cidrs, family):
        yield Rule(
            MESH_OUTPUT,
            (Match("-d", cidr),),
            "RETURN",
            comment=f"mesh: {cidr} excluded by --exclude-outbound-cidrs",
        )
    if o.include_outbound_cidrs == (ANY,):
        yield Rule(
            MESH_OUTPUT,
            (),
            MESH_REDIRECT,
            comment="mesh: all other outbound TCP is redirected to the proxy",
        )
        return
    included = _of_family(o.include_outbound_cidrs, family)
    for cidr in included:
        yield Rule(
            MESH_OUTPUT,
            (Match("-d", cidr),),
            MESH_REDIRECT,
            comment=f"mesh: outbound TCP to {cidr} is redirected (--include-outbound-cidrs)",
        )
    if not included:
        # A visible no-op says why this family captures nothing, instead of a short chain.
        yield Rule(
            MESH_OUTPUT,
            (),
            "RETURN",
            comment=f"mesh: --include-outbound-cidrs has no {name} range, "
            f"{name} outbound is not captured",
        )
