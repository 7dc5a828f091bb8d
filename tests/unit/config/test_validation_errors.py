"""Every validation rule, as a case table: document → the exact error lines reported."""

from __future__ import annotations

import pytest
import yaml

from proxy.config import ConfigError, loads_config, parse_config

# A valid service that route cases extend with their ``routes``.
SERVICE = """
name: reviews
port: 9080
endpoints:
  - {address: 10.244.1.5, labels: {version: v1}}
  - {address: 10.244.2.7, labels: {version: v2}}
subsets: {v1: {version: v1}, v2: {version: v2}}
"""
R = "services[0].routes[0]"

DOC_CASES: list[tuple[str, list[str]]] = [
    # mesh settings
    (
        "mesh: {outbound_policy: deny}",
        ["mesh.outbound_policy: unknown value string 'deny' (valid: allow_any, registry_only)"],
    ),
    (
        "mesh: {protocol_detect_timeout: 100}",
        [
            "mesh.protocol_detect_timeout: bad duration integer 100: "
            "use a number and ms, s or m (e.g. 15s)"
        ],
    ),
    (
        "mesh: {protocol_detect_timeout: 10 ms}",
        [
            "mesh.protocol_detect_timeout: bad duration string '10 ms': "
            "use a number and ms, s or m (e.g. 15s)"
        ],
    ),
    (
        "mesh: {protocol_detect_timeout: 0ms}",
        ["mesh.protocol_detect_timeout: must be > 0, got 0ms"],
    ),
    (
        "mesh: {tracing: {zipkin_url: 'zipkin:9411', sample_rate: 2}}",
        [
            "mesh.tracing.zipkin_url: not an http(s) URL: 'zipkin:9411'",
            "mesh.tracing.sample_rate: must be <= 1, got 2.0",
        ],
    ),
    ("mesh: {tracing: {sample_rate: 0.5}}", ["mesh.tracing.zipkin_url: required"]),
    (
        "mesh: {access_log: maybe}",
        ["mesh.access_log: expected a boolean (true/false, on/off), got string 'maybe'"],
    ),
    ("mesh: {acess_log: true}", ["mesh.acess_log: unknown key (did you mean 'access_log'?)"]),
    ("mesh: [1]", ["mesh: expected a mapping, got a list"]),
    ("servces: []", ["servces: unknown key (did you mean 'services'?)"]),
    # defaults (policy)
    (
        "defaults: {timeout: 15sec}",
        ["defaults.timeout: bad duration string '15sec': use a number and ms, s or m (e.g. 15s)"],
    ),
    (
        "defaults: {load_balancer: fastest}",
        [
            "defaults.load_balancer: unknown value string 'fastest' "
            "(valid: peak_ewma, round_robin, least_request, random)"
        ],
    ),
    (
        "defaults: {retries: {attempts: -1, retry_on: [connect-failure, resets, 600, 503]}}",
        [
            "defaults.retries.attempts: must be >= 0, got -1",
            "defaults.retries.retry_on[1]: unknown retry condition string 'resets' (valid: "
            "connect-failure, refused, reset, 5xx, gateway-error, timeout, per-try-timeout, "
            'refused-stream, or a status code like "503")',
            "defaults.retries.retry_on[2]: unknown retry condition integer 600 (valid: "
            "connect-failure, refused, reset, 5xx, gateway-error, timeout, per-try-timeout, "
            'refused-stream, or a status code like "503")',
        ],
    ),
    (
        "defaults: {retries: {budget: {ratio: 1.5}}}",
        ["defaults.retries.budget.ratio: must be <= 1, got 1.5"],
    ),
    (
        "defaults: {retries: {attempts: yes}}",
        ["defaults.retries.attempts: expected an integer, got boolean true"],
    ),
    (
        "defaults: {outlier_detection: {base_ejection_time: 400s}}",
        [
            "defaults.outlier_detection.base_ejection_time: base_ejection_time (400s) "
            "must not exceed max_ejection_time (300s)"
        ],
    ),
    (
        "defaults: {circuit_breaker: {max_connections: 0}}",
        ["defaults.circuit_breaker.max_connections: must be >= 1, got 0"],
    ),
    (
        "defaults: {retries: {backoff: {base: 1s, max: 100ms}}}",
        ["defaults.retries.backoff.base: base (1s) must not exceed max (0.1s)"],
    ),
    ("defaults: {retries: 3}", ["defaults.retries: expected a mapping, got integer 3"]),
    # services
    ("services: {name: x}", ["services: expected a list, got a mapping"]),
    ("services: [reviews]", ["services[0]: expected a mapping, got string 'reviews'"]),
    (
        "services: [{name: a, port: 70000, endpoints: []}]",
        ["services[0].port: must be <= 65535, got 70000"],
    ),
    (
        "services: [{name: a, port: '80', endpoints: []}]",
        ["services[0].port: expected an integer, got string '80'"],
    ),
    ("services: [{name: a, port: 0, endpoints: []}]", ["services[0].port: must be >= 1, got 0"]),
    ("services: [{port: 80, endpoints: []}]", ["services[0].name: required"]),
    (
        "services: [{name: 'a b', port: 80, endpoints: []}]",
        ["services[0].name: not a valid name: 'a b' (letters, digits, '.', '_', '-')"],
    ),
    ("services: [{name: a, port: 80}]", ["services[0]: needs endpoints or dns"]),
    (
        "services: [{name: a, port: 80, endpoints: [], dns: a.example}]",
        ["services[0]: set either endpoints or dns, not both"],
    ),
    (
        "services: [{name: a, port: 80, endpoints: [{address: 10.0.0.300}]}]",
        ["services[0].endpoints[0].address: not an IP address: string '10.0.0.300'"],
    ),
    (
        "services: [{name: a, port: 80, endpoints: [{port: 80}]}]",
        ["services[0].endpoints[0].address: required"],
    ),
    (
        "services: [{name: a, port: 80, endpoints: [{address: 10.0.0.1}, "
        "{address: 10.0.0.1, port: 80}]}]",
        ["services[0].endpoints[1]: duplicate endpoint 10.0.0.1:80"],
    ),
    (
        "services: [{name: a, port: 80, endpoints: [{address: 10.0.0.1, weight: 0}]}]",
        ["services[0].endpoints[0].weight: must be >= 1, got 0"],
    ),
    (
        "services: [{name: a, port: 80, endpoints: [{address: 10.0.0.1, labels: {version: 1}}]}]",
        [
            "services[0].endpoints[0].labels.version: expected a string, got integer 1 "
            "(quote it in YAML)"
        ],
    ),
    (
        "services: [{name: a, port: 80, dns: {hostname: 'bad_host!', refresh: 1h}}]",
        [
            "services[0].dns.hostname: not a valid host name: 'bad_host!'",
            "services[0].dns.refresh: bad duration string '1h': "
            "use a number and ms, s or m (e.g. 15s)",
        ],
    ),
    (
        "services: [{name: a, port: 80, addresses: [10.0.0.1, 'fd77::zz'], endpoints: []}]",
        ["services[0].addresses[1]: not an IP address: string 'fd77::zz'"],
    ),
    (
        "services: [{name: a, port: 80, hosts: ['-bad'], endpoints: []}]",
        ["services[0].hosts[0]: not a valid host name: '-bad'"],
    ),
    (
        "services: [{name: a, port: 80, hosts: ['*.', '*.ok.example', 'a.*.b'], endpoints: []}]",
        [
            "services[0].hosts[0]: not a valid host name: '*.'",
            "services[0].hosts[2]: not a valid host name: 'a.*.b'",
        ],
    ),
    (
        "services: [{name: a, port: 80, protocol: udp, endpoints: []}]",
        ["services[0].protocol: unknown value string 'udp' (valid: http, tcp, auto)"],
    ),
    (
        "services: [{name: a, port: 80, protocol: tcp, endpoints: [], routes: []}]",
        ["services[0].routes: a tcp service has no HTTP routes (protocol is tcp)"],
    ),
    (
        "services: [{name: a, port: 80, endpoints: [{address: 10.0.0.1, labels: {v: a}}], "
        "subsets: {b: {v: b}}}]",
        ["services[0].subsets.b: selects no endpoint (v=b)"],
    ),
    (
        "services: [{name: a, port: 80, endpoints: [], addresses: [10.0.0.1], hosts: [a]},"
        " {name: a, port: 80, endpoints: [], addresses: ['::ffff:10.0.0.1'], hosts: [A]}]",
        [
            "services[1].name: duplicate service name 'a' (also services[0])",
            "services[1].addresses[0]: 10.0.0.1:80 is already claimed by service 'a' (services[0])",
            "services[1].hosts[0]: a:80 is already claimed by service 'a' (services[0])",
        ],
    ),
    (
        "services: [{name: a, port: 80, endpoints: [], addresses: ['fd77::1']},"
        " {name: b, port: 80, endpoints: [], addresses: ['FD77:0::1']}]",
        ["services[1].addresses[0]: [fd77::1]:80 is already claimed by service 'a' (services[0])"],
    ),
    (
        "services: [{name: a, port: 80, endpoints: [], routes: [{destinations: [{subset: v9}]}]}]",
        [f"{R}.destinations[0].subset: unknown subset 'v9' (no subsets defined)"],
    ),
    (
        "services: [{name: a, port: 80, endpoints: [], policy: {retries: {attemps: 3}}}]",
        ["services[0].policy.retries.attemps: unknown key (did you mean 'attempts'?)"],
    ),
]

ROUTE_CASES: list[tuple[str, list[str]]] = [
    # fault injection
    ("[{fault: {}, destinations: [{}]}]", [f"{R}.fault: set delay, abort or both"]),
    (
        "[{fault: {delay: {fixed: soon, percent: 101}}, destinations: [{}]}]",
        [
            f"{R}.fault.delay.fixed: bad duration string 'soon': use a number and ms, s or m "
            "(e.g. 15s)",
            f"{R}.fault.delay.percent: must be <= 100.0, got 101.0",
        ],
    ),
    (
        "[{fault: {abort: {http_status: 99}}, destinations: [{}]}]",
        [
            f"{R}.fault.abort.http_status: must be >= 200, got 99",
            f"{R}.fault.abort.percent: required",
        ],
    ),
    (
        "[{fault: {abort: {status: 503, percent: 1}}, destinations: [{}]}]",
        [
            f"{R}.fault.abort.status: unknown key (did you mean 'http_status'?)",
            f"{R}.fault.abort.http_status: required",
        ],
    ),
    (
        "[{destinations: [{subset: v1, weight: -5}]}]",
        [f"{R}.destinations[0].weight: must be >= 0, got -5"],
    ),
    (
        "[{destinations: [{subset: v1, weight: 0}, {subset: v2, weight: 0}]}]",
        [f"{R}.destinations: at least one weight must be > 0"],
    ),
    (
        "[{destinations: [{subset: v1, weight: 90}, {subset: v2}]}]",
        [f"{R}.destinations[1].weight: required when another destination sets a weight"],
    ),
    (
        "[{destinations: [{subset: v1, weight: 1.5}]}]",
        [f"{R}.destinations[0].weight: expected an integer, got number 1.5"],
    ),
    ("[{destinations: []}]", [f"{R}.destinations: must not be empty"]),
    ("[{match: {}}]", [f"{R}.destinations: required"]),
    (
        "[{destinations: [{subset: v3}]}]",
        [f"{R}.destinations[0].subset: unknown subset 'v3' (known: v1, v2)"],
    ),
    (
        "[{destinations: [{subst: v1}]}]",
        [f"{R}.destinations[0].subst: unknown key (did you mean 'subset'?)"],
    ),
    (
        "[{match: {path: {regex: '/api/(['}}, destinations: [{subset: v1}]}]",
        [f"{R}.match.path.regex: bad regex '/api/([': unterminated character set at position 6"],
    ),
    (
        "[{match: {path: {prefix: api}}, destinations: [{subset: v1}]}]",
        [f"{R}.match.path.prefix: a path must start with '/', got 'api'"],
    ),
    (
        "[{match: {path: {exact: /a, prefix: /b}}, destinations: [{subset: v1}]}]",
        [f"{R}.match.path: set exactly one of: exact, prefix, regex"],
    ),
    (
        "[{match: {path: {}}, destinations: [{subset: v1}]}]",
        [f"{R}.match.path: expected one of: exact, prefix, regex"],
    ),
    (
        "[{match: {path: {glob: /a}}, destinations: [{subset: v1}]}]",
        [f"{R}.match.path.glob: unknown key (valid: exact, prefix, regex)"],
    ),
    (
        "[{match: {method: []}, destinations: [{subset: v1}]}]",
        [f"{R}.match.method: must not be empty (leave method out to match any)"],
    ),
    (
        "[{match: {method: [GET, 'B D']}, destinations: [{subset: v1}]}]",
        [f"{R}.match.method[1]: not an HTTP method: string 'B D'"],
    ),
    (
        "[{match: {headers: {x-env: {exact: staging, regex: a}}}, destinations: [{subset: v1}]}]",
        [f"{R}.match.headers.x-env: set exactly one of: exact, prefix, regex, present, absent"],
    ),
    (
        "[{match: {headers: {'bad header': {exact: a}}}, destinations: [{subset: v1}]}]",
        [f'{R}.match.headers["bad header"]: not a valid header name'],
    ),
    (
        "[{match: {headers: {x-env: {present: maybe}}}, destinations: [{subset: v1}]}]",
        [
            f"{R}.match.headers.x-env.present: "
            "expected a boolean (true/false, on/off), got string 'maybe'"
        ],
    ),
    (
        "[{match: {headers: {x-env: {regex: '*'}}}, destinations: [{subset: v1}]}]",
        [f"{R}.match.headers.x-env.regex: bad regex '*': nothing to repeat at position 0"],
    ),
    (
        "[{match: {query: {debug: {prefix: a}}}, destinations: [{subset: v1}]}]",
        [f"{R}.match.query.debug.prefix: unknown key (valid: exact, regex, present)"],
    ),
    (
        "[{match: {headers: {x-v: {exact: 1}}}, destinations: [{subset: v1}]}]",
        [f"{R}.match.headers.x-v.exact: expected a string, got integer 1 (quote it in YAML)"],
    ),
    (
        "[{destinations: [{subset: v1}], policy: {timeout: fast}}]",
        [f"{R}.policy.timeout: bad duration string 'fast': use a number and ms, s or m (e.g. 15s)"],
    ),
    (
        "[{destinations: [{subset: v1}], policy: {outlier_detection: {max_ejection_time: 10s}}}]",
        [
            f"{R}.policy.outlier_detection.max_ejection_time: "
            "base_ejection_time (30s) must not exceed max_ejection_time (10s)"
        ],
    ),
    (
        "[{destinations: [{subset: v1}], metch: {}}]",
        [f"{R}.metch: unknown key (did you mean 'match'?)"],
    ),
]


def _errors(doc: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(doc)
    assert str(caught.value) == "\n".join(caught.value.errors)
    return caught.value.errors


@pytest.mark.parametrize(("text", "expected"), DOC_CASES, ids=[c[0][:60] for c in DOC_CASES])
def test_document_errors(text: str, expected: list[str]) -> None:
    assert _errors(yaml.safe_load(text)) == expected


@pytest.mark.parametrize(("routes", "expected"), ROUTE_CASES, ids=[c[0][:60] for c in ROUTE_CASES])
def test_route_errors(routes: str, expected: list[str]) -> None:
    service = yaml.safe_load(SERVICE)
    service["routes"] = yaml.safe_load(routes)
    assert _errors({"services": [service]}) == expected


def test_every_error_of_a_document_is_reported_together() -> None:
    text = """
mesh: {outbound_policy: open, protocol_detect_timeout: soon}
defaults: {timeout: 1h, load_balancer: fastest}
services:
  - {name: a, port: 99999, endpoints: [{address: nowhere}]}
  - name: b
    port: 80
    dns: b.example
    endpoints: []
    routes: [{destinations: [{weight: -1}]}]
"""
    with pytest.raises(ConfigError) as caught:
        loads_config(text, "mesh.yaml")
    assert caught.value.errors == [
        "mesh.yaml:2: mesh.outbound_policy: unknown value string 'open' "
        "(valid: allow_any, registry_only)",
        "mesh.yaml:2: mesh.protocol_detect_timeout: bad duration string 'soon': "
        "use a number and ms, s or m (e.g. 15s)",
        "mesh.yaml:3: defaults.timeout: bad duration string '1h': "
        "use a number and ms, s or m (e.g. 15s)",
        "mesh.yaml:3: defaults.load_balancer: unknown value string 'fastest' "
        "(valid: peak_ewma, round_robin, least_request, random)",
        "mesh.yaml:5: services[0].port: must be <= 65535, got 99999",
        "mesh.yaml:5: services[0].endpoints[0].address: not an IP address: string 'nowhere'",
        "mesh.yaml:6: services[1]: set either endpoints or dns, not both",
        "mesh.yaml:10: services[1].routes[0].destinations[0].weight: must be >= 0, got -1",
    ]


def test_the_design_error_example_reads_as_documented() -> None:
    doc = {
        "services": [
            {"name": "a", "port": 80, "endpoints": []},
            {
                "name": "b",
                "port": 80,
                "endpoints": [{"address": "10.0.0.1"}],
                "routes": [{"destinations": [{"weight": -1}]}],
            },
        ]
    }
    (line,) = _errors(doc)
    assert line.startswith("services[1].routes[0].destinations[0].weight: must be >= 0")


def test_an_empty_document_is_rejected() -> None:
    assert _errors(None) == ["(document): empty (expected a mapping with mesh, defaults, services)"]
    assert _errors(["services"]) == ["(document): expected a mapping, got a list"]
