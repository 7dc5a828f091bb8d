"""Routing as a case table: which service, which route, which destination, which policy.

The policy in force is what the config resolved at load (``resolved_policy``), which
the mesh reads; these tests pin its precedence.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping

import pytest

from proxy.config import MeshConfig, Policy, Route, Service, loads_config
from proxy.routing import RequestInfo, ServiceIndex, match_route, pick_destination

CONFIG = """
defaults: {timeout: 10s, retries: {attempts: 4}}
services:
  - name: reviews
    port: 9080
    addresses: [10.96.0.20, "fd00:96::20"]
    hosts: [reviews, Reviews.Default.svc.cluster.local]
    endpoints:
      - {address: 10.244.1.5, labels: {version: v1}}
      - {address: 10.244.2.7, labels: {version: v2}}
      - {address: 10.244.3.9, labels: {version: v2, canary: "yes"}}
    subsets: {v1: {version: v1}, v2: {version: v2}, canary: {canary: "yes"}}
    policy: {timeout: 5s, load_balancer: round_robin}
    routes:
      - name: exact-path
        match: {path: {exact: /health}}
        destinations: [{subset: v1}]
        policy: {timeout: 1s}
      - name: regex-path
        match: {path: {regex: "/items/[0-9]+"}}
        destinations: [{subset: v2}]
      - name: delete
        match: {method: [DELETE, PATCH]}
        destinations: [{subset: canary}]
      - name: hdr-exact
        match: {headers: {x-env: {exact: staging}}}
        destinations: [{subset: v2}]
      - name: hdr-prefix
        match: {headers: {user-agent: {prefix: "curl/"}}}
        destinations: [{subset: v1}]
      - name: hdr-regex
        match: {headers: {x-tenant: {regex: "t-[a-z]+"}}}
        destinations: [{subset: v1}]
      - name: hdr-present
        match: {headers: {x-debug: {present: true}}}
        destinations: [{subset: canary}]
      - name: query
        match: {query: {tenant: {exact: "acme corp"}, v: {regex: "[0-9]"}, trace: {present: true}}}
        destinations: [{subset: v2}]
      - name: api-split
        match: {path: {prefix: /api/}}
        destinations: [{subset: v1, weight: 90}, {subset: v2, weight: 10}]
        policy: {retries: {attempts: 1}}
      - name: no-cookie
        match: {headers: {cookie: {absent: true}}, method: GET}
        destinations: [{subset: v1}]
  - name: ratings
    port: 9080
    hosts: [ratings]
    endpoints: [{address: 10.244.4.1}]
  - name: wild
    port: 8080
    hosts: ["*.example.com", api.example.com]
    endpoints: [{address: 10.244.5.1}]
  - name: wild-eu
    port: 8080
    hosts: ["*.eu.example.com"]
    endpoints: [{address: 10.244.5.2}]
  - name: ratings-admin
    port: 15000
    hosts: [ratings]
    endpoints: [{address: 10.244.4.1, port: 15000}]
    routes: [{match: {path: {exact: /only}}, destinations: [{}]}]
"""


@pytest.fixture(scope="module")
def config() -> MeshConfig:
    return loads_config(CONFIG)


@pytest.fixture(scope="module")
def reviews(config: MeshConfig) -> Service:
    return config.services[0]


def req(
    path: str = "/", method: str = "GET", headers: Mapping[str, str] | None = None, query: str = ""
) -> RequestInfo:
    return RequestInfo(method, path, query, {"cookie": "c=1"} if headers is None else headers, None)


@pytest.mark.parametrize(
    ("dst_ip", "dst_port", "host", "expected"),
    [
        ("10.96.0.20", 9080, None, "reviews"),
        ("10.96.0.20", 9080, "ratings", "reviews"),  # the address the app dialled wins
        ("fd00:96::20", 9080, None, "reviews"),
        ("FD00:96:0::20", 9080, None, "reviews"),
        ("::ffff:10.96.0.20", 9080, None, "reviews"),
        ("10.96.0.20", 80, None, None),  # right address, wrong port
        ("10.0.0.1", 9080, "reviews", "reviews"),
        ("10.0.0.1", 9080, "REVIEWS:9080", "reviews"),
        ("10.0.0.1", 80, "reviews:9080", "reviews"),  # Host's port names the service port
        ("10.0.0.1", 9080, "reviews.default.svc.cluster.local.", "reviews"),
        ("10.0.0.1", 9080, "reviews:1234", "reviews"),  # unknown Host port: the dialled one
        ("10.0.0.1", 80, "reviews", None),
        ("10.0.0.1", 9080, "ratings", "ratings"),
        ("10.0.0.1", 15000, "ratings", "ratings-admin"),
        ("10.0.0.1", 9080, "ratings:15000", "ratings-admin"),
        ("10.0.0.1", 9080, "details", None),
        ("10.0.0.1", 9080, "", None),
        ("10.0.0.1", 80, "[fd00:96::20]:9080", "reviews"),  # an IP literal Host is an address
        ("10.0.0.1", 8080, "shop.example.com", "wild"),
        ("10.0.0.1", 8080, "a.b.Example.com:8080", "wild"),
        ("10.0.0.1", 8080, "shop.eu.example.com", "wild-eu"),  # the longer wildcard wins
        ("10.0.0.1", 8080, "example.com", None),  # "*." needs a subdomain
        ("10.0.0.1", 9080, "shop.example.com", None),
    ],
)
def test_service_lookup(
    config: MeshConfig, dst_ip: str, dst_port: int, host: str | None, expected: str | None
) -> None:
    found = ServiceIndex(config).lookup(dst_ip, dst_port, host)
    assert (found.name if found else None) == expected


@pytest.mark.parametrize(
    ("request_info", "expected"),
    [
        (req("/health"), "exact-path"),
        (
            req("/health/x", headers={}),
            "no-cookie",
        ),  # exact is exact; falls to the catch-all GET route
        (req("/items/42"), "regex-path"),
        (req("/items/42/x", headers={}), "no-cookie"),  # regexes match the whole path
        (req("/x", method="DELETE"), "delete"),
        (req("/x", method="PATCH"), "delete"),
        (req("/x", headers={"x-env": "staging"}), "hdr-exact"),
        (req("/x", headers={"x-env": "staging2", "cookie": "1"}), None),
        (req("/x", headers={"user-agent": "curl/8.1", "cookie": "1"}), "hdr-prefix"),
        (req("/x", headers={"user-agent": "wget", "cookie": "1"}), None),
        (req("/x", headers={"x-tenant": "t-abc", "cookie": "1"}), "hdr-regex"),
        (req("/x", headers={"x-tenant": "t-ab1", "cookie": "1"}), None),
        (req("/x", headers={"x-debug": "", "cookie": "1"}), "hdr-present"),
        (req("/x", query="tenant=acme%20corp&v=3&trace"), "query"),
        (req("/x", query="tenant=acme+corp&v=3&trace="), "query"),
        (req("/x", query="tenant=acme&v=3&trace", headers={"cookie": "1"}), None),
        (req("/x", query="tenant=acme+corp&v=33&trace", headers={"cookie": "1"}), None),
        (req("/x", query="tenant=acme+corp&v=3", headers={"cookie": "1"}), None),
        (req("/api/v1"), "api-split"),
        (req("/api/v1", method="DELETE"), "delete"),  # first match wins
        (req("/health", headers={"x-env": "staging"}), "exact-path"),  # first match wins
        (req("/other", headers={}), "no-cookie"),
        (req("/other", method="POST", headers={}), None),  # no route: 404 NR
    ],
)
def test_match_route(reviews: Service, request_info: RequestInfo, expected: str | None) -> None:
    route = match_route(reviews, request_info)
    assert (route.name if route else None) == expected


def test_service_without_routes_has_an_implicit_route_to_all_endpoints(config: MeshConfig) -> None:
    ratings = config.services[1]
    route = match_route(ratings, req("/anything", method="PUT"))
    assert route is not None
    (dest,) = route.destinations
    assert dest.subset is None
    assert route is ratings.default_route
    assert route.resolved_policy == ratings.resolved_policy == config.defaults


def test_weighted_split_follows_the_weights(reviews: Service) -> None:
    route = match_route(reviews, req("/api/x"))
    assert route is not None
    rng = random.Random(1234)
    counts = Counter(pick_destination(route, rng).subset for _ in range(20_000))
    assert set(counts) == {"v1", "v2"}
    assert counts["v1"] / 20_000 == pytest.approx(0.9, abs=0.01)
    # Same seed, same sequence: the split is reproducible.
    again = random.Random(1234)
    first = [pick_destination(route, again).subset for _ in range(50)]
    rng = random.Random(1234)
    assert first == [pick_destination(route, rng).subset for _ in range(50)]


def test_zero_weight_destination_is_never_picked() -> None:
    config = loads_config(
        """
services:
  - name: s
    port: 80
    endpoints: [{address: 10.0.0.1, labels: {v: a}}, {address: 10.0.0.2, labels: {v: b}}]
    subsets: {a: {v: a}, b: {v: b}}
    routes: [{destinations: [{subset: a, weight: 0}, {subset: b, weight: 1}]}]
"""
    )
    route = config.services[0].routes[0]
    rng = random.Random(7)
    assert {pick_destination(route, rng).subset for _ in range(2000)} == {"b"}


def test_single_destination_uses_no_randomness(reviews: Service) -> None:
    route = match_route(reviews, req("/health"))
    assert route is not None
    rng = random.Random(5)
    state = rng.getstate()
    assert pick_destination(route, rng).subset == "v1"
    assert rng.getstate() == state


def _route(service: Service, name: str) -> Route:
    return next(r for r in service.routes if r.name == name)


def test_policy_precedence(config: MeshConfig, reviews: Service) -> None:
    exact = _route(reviews, "exact-path").resolved_policy
    split = _route(reviews, "api-split").resolved_policy
    plain = _route(reviews, "delete").resolved_policy
    # route > service > defaults > built-in, field by field
    assert (exact.timeout, exact.retries.attempts, exact.load_balancer) == (1.0, 4, "round_robin")
    assert (split.timeout, split.retries.attempts, split.load_balancer) == (5.0, 1, "round_robin")
    assert (plain.timeout, plain.retries.attempts, plain.load_balancer) == (5.0, 4, "round_robin")
    assert reviews.resolved_policy == reviews.default_route.resolved_policy == plain
    passthrough = config.defaults  # traffic to no service
    assert (passthrough.timeout, passthrough.retries.attempts) == (10.0, 4)
    assert passthrough.load_balancer == Policy().load_balancer == "peak_ewma"
    assert passthrough.retries.retry_on == Policy().retries.retry_on
