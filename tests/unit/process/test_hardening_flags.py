"""The run flags of the hardening work: flag or MESH_ env var, validated, into RunOptions."""

from __future__ import annotations

import pytest

from proxy.cli import parse_run
from proxy.core.errors import UsageError
from proxy.http import Limits


def test_defaults_follow_envoy_and_carry_big_configs() -> None:
    opts = parse_run(["run"], {})
    assert opts.request_headers_timeout == 10.0 == Limits().request_headers_timeout
    assert opts.stream_idle_timeout == 300.0 == Limits().stream_idle_timeout  # Envoy's 5 min
    assert opts.admin_max_body == 64 * 1024 * 1024


def test_flags_and_env_vars_set_them() -> None:
    opts = parse_run(
        ["run", "--request-headers-timeout", "2s", "--admin-max-body", "16Mi"],
        {"MESH_STREAM_IDLE_TIMEOUT": "1m", "MESH_ADMIN_MAX_BODY": "1Ki"},
    )
    assert (opts.request_headers_timeout, opts.stream_idle_timeout) == (2.0, 60.0)
    assert opts.admin_max_body == 16 * 1024 * 1024  # the flag wins over the env var
    assert parse_run(["run"], {"MESH_ADMIN_MAX_BODY": "1Ki"}).admin_max_body == 1024


@pytest.mark.parametrize(
    ("argv", "env", "needle"),
    [
        (["--request-headers-timeout", "0s"], {}, "--request-headers-timeout 0.0s: must be"),
        ([], {"MESH_STREAM_IDLE_TIMEOUT": "soon"}, "MESH_STREAM_IDLE_TIMEOUT: 'soon'"),
        (["--admin-max-body", "lots"], {}, "--admin-max-body: 'lots' is not a size"),
    ],
)
def test_bad_values_name_their_origin(argv: list[str], env: dict[str, str], needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        parse_run(["run", *argv], env)
