"""Any document gives a config or a ``ConfigError`` naming the problem, quickly.

The fuzzed property (``tests.support.fuzz_config``): mutated and value-swapped
documents through ``loads_config`` and, as file bytes, ``load_config``. Bounded and
derandomized here; ``scripts/fuzz --target config`` runs it for as long as it is given.
The case table holds what the fuzzer found, each once an unhandled exception, a
stack overflow or an unbounded walk.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings

from proxy.config import ConfigError, loads_config
from tests.support import fuzz_config


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(fuzz_config.inputs())
def test_any_document_gets_a_config_or_a_config_error(data: bytes) -> None:
    assert fuzz_config.verdict(data) is None


def _bomb(levels: int) -> str:
    text = "services:\n- &x0 [a, a, a, a, a, a, a, a, a, a]\n"
    for i in range(1, levels):
        text += f"- &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]\n"
    return text


TRACING = '{"mesh": {"tracing": {"zipkin_url": %s, "sample_rate": %s}}}'

FOUND = [
    ("? [a, b]\n: c\n", "1:3: YAML syntax error: found unhashable key"),
    ("services: 2001-13-45\n", "YAML value error: month must be in 1..12"),
    ("services: " + "9" * 5000 + "\n", "YAML value error: Exceeds the limit (4300 digits)"),
    ('{"services": ' + "9" * 5000 + "}", "JSON value error: Exceeds the limit (4300 digits)"),
    ('{"services": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper than 64"),
    ('{"services": ' + "[" * 300 + "]" * 300 + "}", "nested deeper than 64"),
    ("services: " + "[" * 500 + "]" * 500 + "\n", "1:74: nested deeper than 64"),
    ("services: " + "{a: " * 500 + "}" * 500 + "\n", "nested deeper than 64"),
    ("services: &a [*a]\n", "nested deeper than 64"),
    (_bomb(7), "expands to more than"),
    (TRACING % ('"http://z/"', "NaN"), "sample_rate: must be a finite number, got number nan"),
    (TRACING % ('"http://z/"', "Infinity"), "sample_rate: must be a finite number"),
    (TRACING % ('"http://z]k:9411/"', "0.1"), "zipkin_url: not an http(s) URL"),
    (TRACING % ('"http://z:99999/"', "0.1"), "zipkin_url: not an http(s) URL"),
    (
        "services: [{name: a, port: 80, endpoints: [{address: 10.0.0.1, port: 80}], "
        'routes: [{match: {path: {regex: "' + "(" * 3000 + ")" * 3000 + '"}}}]}]\n',
        "regex: bad regex",
    ),
]


@pytest.mark.parametrize(("text", "error"), FOUND, ids=[e for _, e in FOUND])
def test_what_the_fuzzer_found_is_a_config_error(text: str, error: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        loads_config(text, "doc")
    assert time.monotonic() - started < 1.0
    assert any(error in line for line in caught.value.errors), caught.value.errors
    assert fuzz_config.verdict(text.encode()) is None


def test_duplicate_keys_in_a_huge_json_object_are_found_in_linear_time() -> None:
    keys = ", ".join(f'"k{i}": 1' for i in range(100_000))
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        loads_config('{"services": [], "x": {' + keys + ', "k7": 2}}', "doc")
    assert time.monotonic() - started < 2.0  # a scan per key took minutes
    assert "doc: duplicate key 'k7'" in caught.value.errors


def test_a_regex_sre_warns_about_still_loads() -> None:
    # re.compile warns "Possible nested set" (a FutureWarning, an error under -W error)
    text = "services: [{name: a, port: 80, endpoints: [{address: 10.0.0.1, port: 80}], "
    config = loads_config(
        text + 'routes: [{match: {path: {regex: "/[[a]"}}, destinations: [{}]}]}]\n'
    )
    match = config.services[0].routes[0].match.path
    assert match is not None and match.matches("/[") and not match.matches("/b")


def test_anchors_used_as_intended_still_load() -> None:
    service = "{{name: s{i}, port: 80, addresses: [10.96.0.{i}], endpoints: *eps}}"
    text = "services:\n" + "\n".join(
        f"- {service.format(i=i)}"
        if i
        else "- {name: s0, port: 80, addresses: [10.96.0.250], "
        "endpoints: &eps [{address: 10.0.0.1, port: 80}, {address: 10.0.0.2, port: 80}]}"
        for i in range(50)
    )
    config = loads_config(text)
    assert len(config.services) == 50
    assert all(len(s.endpoints) == 2 for s in config.services)
