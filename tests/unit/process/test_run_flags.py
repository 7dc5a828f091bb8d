"""Flag parsing for ``mesh-proxy run``: flags, env fallbacks, and exit 2 on bad values."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from proxy.cli import parse_run
from proxy.core.errors import UsageError
from proxy.l4.detect import DEFAULT_OPAQUE_PORTS
from proxy.process.options import RunOptions, parse_duration
from tests.support import netns as nt


def test_defaults_are_istio_like() -> None:
    o = parse_run(["run"], {})
    assert (o.outbound_port, o.inbound_port, o.admin_port, o.telemetry_port) == (
        15001,
        15006,
        15000,
        15020,
    )
    assert o.workers == 1 and o.protocol_detect_timeout == 0.1 and o.drain_timeout == 5.0
    assert o.opaque_ports == DEFAULT_OPAQUE_PORTS and o.uid is None


def test_flags_and_env_fallbacks() -> None:
    env = {"MESH_WORKERS": "3", "MESH_OUTBOUND_PORT": "16001", "MESH_IDLE_TIMEOUT": "2m"}
    o = parse_run(
        [
            "run",
            "--workers",
            "2",
            "--uid",
            "1337",
            "--gid",
            "1337",
            "--protocol-detect-timeout",
            "250ms",
            "--opaque-ports",
            "8086,9000",
        ],
        env,
    )
    assert o.workers == 2  # the flag wins over the env var
    assert o.outbound_port == 16001 and o.idle_timeout == 120.0
    assert (o.uid, o.gid, o.protocol_detect_timeout) == (1337, 1337, 0.25)
    assert {8086, 9000, 3306} <= o.opaque_ports


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["run", "--workers", "zero"], {}, "--workers: 'zero' is not a worker count"),
        (["run"], {"MESH_INBOUND_PORT": "70000"}, "MESH_INBOUND_PORT: '70000' is not a port"),
        (["run", "--drain-timeout", "5 parsecs"], {}, "'5 parsecs' is not a duration"),
        (["run", "--uid", "1337"], {}, "--uid and --gid go together"),
        (["run", "--admin-port", "15001"], {}, "--admin-port 15001 is the same port"),
        (["run", "--bogus"], {}, "unrecognized arguments: --bogus"),
    ],
)
def test_bad_values_are_named(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_run(argv, env)


@pytest.mark.parametrize(
    ("raw", "seconds"), [("100ms", 0.1), ("5s", 5.0), ("1m", 60.0), ("2", 2.0)]
)
def test_durations(raw: str, seconds: float) -> None:
    assert parse_duration(raw) == seconds


def test_bad_flag_exits_2_naming_the_value() -> None:
    proc = subprocess.run(
        [nt.PYTHON, "-m", "proxy", "run", "--outbound-port", "abc"],
        capture_output=True,
        text=True,
        env=nt.python_env(),
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "--outbound-port: 'abc' is not a port" in proc.stderr


def test_run_options_reject_same_port_twice() -> None:
    with pytest.raises(UsageError, match="--inbound-port 15001"):
        RunOptions(inbound_port=15001)


def test_validate_subcommand_is_dispatched(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  - name: a\n    port: 99999\n")
    proc = subprocess.run(
        [nt.PYTHON, "-m", "proxy", "validate", str(bad)],
        capture_output=True,
        text=True,
        env=nt.python_env(),
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2 and "services[0].port" in proc.stderr
