"""The option sets every rendered plan is checked for: golden files (unit) and the real
``iptables-restore`` of both backends (netns) walk the same table, so a case added
for one is proven by both."""

from __future__ import annotations

from interceptor.options import Options
from interceptor.plan import PodFacts

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
