"""Valid documents load and mean what they say: the DESIGN.md example, every feature, JSON."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from proxy.config import (
    Destination,
    DnsDiscovery,
    Endpoint,
    MeshConfig,
    Policy,
    ValueMatch,
    empty_config,
    load_config,
    loads_config,
)
from proxy.config.canonical import to_jsonable
from proxy.config.model import Fault, FaultAbort, FaultDelay

DATA = Path(__file__).resolve().parents[2] / "data" / "configs"


@pytest.fixture(scope="module")
def design() -> MeshConfig:
    return load_config(DATA / "design.yaml")


@pytest.fixture(scope="module")
def full() -> MeshConfig:
    return load_config(DATA / "full.yaml")


def test_design_example_mesh_and_defaults(design: MeshConfig) -> None:
    assert design.mesh.outbound_policy == "allow_any"
    assert design.mesh.protocol_detect_timeout == pytest.approx(0.1)
    assert design.mesh.tracing is not None
    assert design.mesh.tracing.zipkin_url == "http://zipkin:9411/api/v2/spans"
    assert design.mesh.tracing.sample_rate == 0.01
    assert design.mesh.access_log is True
    d = design.defaults
    assert d.timeout == 15.0
    assert d.retries.attempts == 2
    assert d.retries.per_try_timeout == 0.0
    assert d.retries.retry_on == ("connect-failure", "reset", "refused", "503")
    assert d.retries.status_codes == frozenset({503})
    assert (d.retries.budget.ratio, d.retries.budget.min_per_second) == (0.2, 10)
    assert d.load_balancer == "peak_ewma"
    od = d.outlier_detection
    assert (od.consecutive_errors, od.interval, od.base_ejection_time) == (5, 10.0, 30.0)
    assert (od.max_ejection_time, od.max_ejection_percent) == (300.0, 50)
    cb = d.circuit_breaker
    assert (cb.max_connections, cb.max_pending_requests, cb.max_requests) == (1024, 1024, 1024)


def test_design_example_service_and_routes(design: MeshConfig) -> None:
    (svc,) = design.services
    assert (svc.name, svc.port, svc.protocol) == ("reviews", 9080, "http")
    assert svc.addresses == ("10.96.0.20",)
    assert svc.hosts == ("reviews", "reviews.default.svc.cluster.local")
    assert svc.endpoints == (
        Endpoint("10.244.1.5", 9080, {"version": "v1"}),
        Endpoint("10.244.2.7", 9080, {"version": "v2"}),
    )
    assert svc.dns is None
    assert svc.subset_members["v1"] == (svc.endpoints[0],)
    assert svc.subset_members["v2"] == (svc.endpoints[1],)
    staging, api, fallback = svc.routes
    assert staging.match.headers == (("x-env", ValueMatch("exact", "staging")),)
    assert staging.destinations == (Destination("v2", 1),)
    assert api.match.path == ValueMatch("prefix", "/api/")
    assert api.destinations == (Destination("v1", 90), Destination("v2", 10))
    assert api.policy.values == {"timeout": 2.0}
    assert api.resolved_policy.timeout == 2.0
    assert api.resolved_policy.retries == design.defaults.retries
    assert staging.resolved_policy.timeout == 15.0
    assert fallback.match.path is None and fallback.match.headers == ()
    assert fallback.destinations == (Destination("v1", 1),)


def test_every_feature_loads(full: MeshConfig) -> None:
    assert full.mesh.outbound_policy == "registry_only"
    assert full.mesh.protocol_detect_timeout == pytest.approx(0.25)
    assert full.mesh.access_log is False
    assert full.mesh.tracing is None
    reviews, ratings, details = full.services
    assert reviews.addresses == ("10.96.0.20", "fd00:96::20")
    assert reviews.hosts == ("reviews", "reviews.default.svc.cluster.local")
    assert reviews.endpoints[1] == Endpoint("10.244.2.7", 9081, {"version": "v2", "zone": "b"}, 3)
    assert reviews.subset_members["zone-b"] == (reviews.endpoints[1],)
    staging, api, _ = reviews.routes
    assert staging.name == "staging"
    assert staging.match.methods == frozenset({"GET", "HEAD"})
    assert staging.match.headers == (
        ("x-env", ValueMatch("exact", "staging")),
        ("x-debug", ValueMatch("present")),
        ("cookie", ValueMatch("absent")),
    )
    assert api.match.path is not None and api.match.path.kind == "regex"
    assert isinstance(api.match.path.pattern, re.Pattern)
    assert api.match.path.pattern.pattern == "/api/v[0-9]+/.*"
    assert api.match.query == (
        ("tenant", ValueMatch("exact", "acme")),
        ("trace", ValueMatch("present")),
    )
    assert ratings.protocol == "tcp" and ratings.endpoints == ()
    assert ratings.dns == DnsDiscovery("ratings-headless.default.svc.cluster.local", 6379, 30.0)
    assert details.dns == DnsDiscovery("details.default.svc.cluster.local", 9080, 5.0)
    assert details.protocol == "auto"


def test_policy_merges_field_by_field(full: MeshConfig) -> None:
    reviews, ratings, _ = full.services
    staging, api, _ = reviews.routes
    # defaults over built-in
    assert full.defaults.timeout == 10.0
    assert full.defaults.retries.retry_on == ("5xx", "502")
    assert full.defaults.retries.budget.ratio == 0.2  # built-in, untouched by defaults
    assert full.defaults.outlier_detection.max_ejection_percent == 50
    assert full.defaults.outlier_detection.consecutive_errors == 5  # built-in
    # service over defaults
    assert reviews.resolved_policy.timeout == 5.0
    assert reviews.resolved_policy.load_balancer == "round_robin"
    assert reviews.resolved_policy.retries.per_try_timeout == 1.0
    assert reviews.resolved_policy.retries.attempts == 3  # from defaults
    # route over service
    assert api.resolved_policy.timeout == 2.0
    assert api.resolved_policy.retries.attempts == 1
    assert api.resolved_policy.retries.per_try_timeout == 1.0  # from the service
    assert api.resolved_policy.retries.retry_on == ("5xx", "502")  # from defaults
    assert api.resolved_policy.retries.backoff.base == pytest.approx(0.01)  # from defaults
    assert api.resolved_policy.load_balancer == "round_robin"
    assert staging.resolved_policy == reviews.resolved_policy
    assert ratings.resolved_policy == full.defaults


def test_builtin_defaults_follow_envoy_and_istio() -> None:
    p = Policy()
    assert p.timeout == 15.0
    assert p.retries.attempts == 2
    assert p.retries.retry_on == ("connect-failure", "reset", "refused", "503")
    assert (p.retries.budget.ratio, p.retries.budget.min_per_second) == (0.2, 10)
    assert (p.retries.backoff.base, p.retries.backoff.max) == (0.025, 0.25)
    assert p.load_balancer == "peak_ewma"
    assert p.outlier_detection.max_ejection_percent == 50
    assert p.circuit_breaker.max_retries == 3
    assert loads_config("services: []").defaults == p


def test_json_and_yaml_of_the_same_document_are_the_same_config(design: MeshConfig) -> None:
    from_json = load_config(DATA / "design.json")
    assert (DATA / "design.json").read_text().count("\t") > 10  # tabs: not YAML-parseable
    assert from_json == design
    assert from_json.version == design.version


def test_version_is_a_stable_content_hash(design: MeshConfig) -> None:
    again = load_config(DATA / "design.yaml")
    assert re.fullmatch(r"[0-9a-f]{64}", design.version)
    assert again.version == design.version
    changed = (DATA / "design.yaml").read_text().replace("timeout: 2s", "timeout: 3s")
    assert loads_config(changed).version != design.version
    # Same meaning, different spelling: same version.
    respelled = (DATA / "design.yaml").read_text().replace("timeout: 2s", "timeout: 2000ms")
    assert loads_config(respelled).version == design.version
    assert design.to_dict()["services"][0]["routes"][1]["policy"] == {"timeout": 2.0}


def test_model_objects_can_key_state(full: MeshConfig) -> None:
    reviews = full.services[0]
    again = load_config(DATA / "full.yaml").services[0]
    state = {reviews: 1, reviews.endpoints[0]: 2, reviews.routes[1]: 3, full: 4}
    assert state[again] == 1
    assert state[again.endpoints[0]] == 2
    assert state[again.routes[1]] == 3
    assert state[load_config(DATA / "full.yaml")] == 4
    assert reviews.endpoints[0] != reviews.endpoints[1]
    assert len({*reviews.endpoints, *again.endpoints}) == 2


def test_empty_config_relays_everything() -> None:
    config = empty_config()
    assert config.services == ()
    assert config.mesh.outbound_policy == "allow_any"
    assert config.defaults == Policy()
    assert loads_config("{}") == config


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("1.5s", 1.5), ("2m", 120.0), ("0s", 0.0), (" 3s ", 3.0)],
)
def test_duration_units(text: str, seconds: float) -> None:
    config = loads_config(f"defaults: {{timeout: '{text}'}}")
    assert config.defaults.timeout == pytest.approx(seconds)


def test_lenient_spellings_users_expect() -> None:
    config = loads_config(
        """
mesh: {access_log: "off"}
defaults: {retries: {retry_on: [503, "503", reset, gateway-error]}}
services:
  - name: s
    port: 80
    endpoints: [{address: "::ffff:10.0.0.1"}, {address: "FD77:0::2"}]
    routes:
      - match: {method: post, headers: {X-A: {present: false}}}
        destinations: [{}]
"""
    )
    assert config.mesh.access_log is False
    assert config.defaults.retries.retry_on == ("503", "reset", "gateway-error")
    (svc,) = config.services
    assert [e.address for e in svc.endpoints] == ["10.0.0.1", "fd77::2"]
    assert svc.routes[0].match.methods == frozenset({"POST"})
    assert svc.routes[0].match.headers == (("x-a", ValueMatch("absent")),)
    assert svc.routes[0].destinations == (Destination(None, 1),)


def test_every_retry_condition_the_config_accepts_is_known_to_the_retry_policy() -> None:
    from proxy.config.policy import RETRY_CONDITIONS
    from proxy.policy.retry import parse_retry_on

    conditions, codes = parse_retry_on([*RETRY_CONDITIONS, "503"])
    assert codes == frozenset({503})
    assert len(conditions) >= 5


def test_a_route_fault_loads_with_seconds_and_percent() -> None:
    config = loads_config(
        """
services:
  - name: ratings
    port: 9080
    endpoints: [{address: 10.0.0.1}]
    routes:
      - fault: {delay: {fixed: 50ms, percent: 1}, abort: {http_status: 503, percent: 0.5}}
        destinations: [{}]
      - destinations: [{}]
"""
    )
    faulty, plain = config.services[0].routes
    assert faulty.fault == Fault(FaultDelay(0.05, 1.0), FaultAbort(503, 0.5))
    assert plain.fault is None
    assert to_jsonable(faulty)["fault"] == {
        "delay": {"fixed": 0.05, "percent": 1.0},
        "abort": {"http_status": 503, "percent": 0.5},
    }
