"""``mesh.overload``: documented defaults, values read as given, and errors that name the
field path, as every other section of the document."""

from __future__ import annotations

import pytest

from proxy.config import ConfigError, loads_config
from proxy.config.model import Overload
from proxy.policy.overload import OverloadLimits
from proxy.process.overload import overload_limits


def test_the_defaults_are_the_documented_ones() -> None:
    settings = loads_config("services: []\n", "mesh.yaml").mesh.overload
    assert settings == Overload(8192, 4096, 64 * 1024, 256 * 1024 * 1024)
    # One source of truth for the numbers: the schema and the guard agree.
    assert overload_limits(settings) == OverloadLimits()


def test_values_are_read_as_given() -> None:
    text = (
        "mesh:\n  overload: {max_downstream_connections: 100, max_pending_requests: 7,\n"
        "             per_connection_buffer_bytes: 32768, max_buffered_bytes: 1048576}\n"
    )
    settings = loads_config(text, "mesh.yaml").mesh.overload
    assert settings == Overload(100, 7, 32768, 1048576)
    assert loads_config(text, "mesh.yaml").to_dict()["mesh"]["overload"] == {
        "max_downstream_connections": 100,
        "max_pending_requests": 7,
        "per_connection_buffer_bytes": 32768,
        "max_buffered_bytes": 1048576,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "mesh: {overload: {max_downstream_connections: 0}}",
            "mesh.overload.max_downstream_connections: must be >= 1",
        ),
        (
            "mesh: {overload: {max_pending_requests: many}}",
            "mesh.overload.max_pending_requests: expected an integer",
        ),
        ("mesh: {overload: {max_buffered: 1}}", "mesh.overload.max_buffered: unknown key"),
        ("mesh: {overload: 5}", "mesh.overload: expected a mapping"),
    ],
)
def test_errors_name_the_field(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        loads_config(text, "mesh.yaml")
    assert any(line.startswith(f"mesh.yaml:1: {expected}") for line in caught.value.errors), (
        caught.value.errors
    )
