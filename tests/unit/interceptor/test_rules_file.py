"""``--rules-file`` / ``MESH_RULES_FILE``: install leaves a copy of what it applied, remove
deletes it; driven through the CLI against the recording fake backend (no kernel)."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from interceptor import rulescopy
from interceptor.backends.fake import FakeBackend
from interceptor.options import Options, UsageError
from interceptor.plan import build_plan
from interceptor.render import render_restore
from tests.support.interceptor_cli import V4, run


def test_install_writes_the_applied_rules_and_remove_deletes_them(
    backend: FakeBackend, tmp_path: Path
) -> None:
    path = tmp_path / "run" / "mesh" / "rules.json"  # the directory is created
    code, out, err = run("install", "--exclude-outbound-ports", "53", "--rules-file", str(path))
    assert code == 0, err
    assert f"rules copy written to {path}" in out
    doc = json.loads(path.read_text())
    plan = build_plan(Options(exclude_outbound_ports=(53,)), V4)
    assert doc["rules"] == {
        "ipv4": {"tool": "iptables-restore", "restore": render_restore(plan.rulesets[0])}
    }
    assert "--dport 53" in doc["rules"]["ipv4"]["restore"]
    assert doc["backend"] == "legacy"
    assert doc["options"]["exclude_outbound_ports"] == [53]
    assert doc["options"]["rules_file"] == str(path)
    written = datetime.fromisoformat(doc["written_at"])
    assert abs((datetime.now(UTC) - written).total_seconds()) < 60
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the proxy reads it as uid 1337
    assert os.listdir(path.parent) == ["rules.json"]  # no temporary file left behind

    code, out, _ = run("remove", env={"MESH_RULES_FILE": str(path)})
    assert code == 0 and f"rules copy {path} deleted" in out
    assert not path.exists()
    code, out, _ = run("remove", "--rules-file", str(path))  # nothing left: still fine
    assert code == 0 and "deleted" not in out


def test_a_reinstall_replaces_the_copy(backend: FakeBackend, tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    env = {"MESH_RULES_FILE": str(path)}
    assert run("install", "--ipv6", "off", env=env)[0] == 0
    assert "--dport 5432" not in path.read_text()
    assert run("install", "--exclude-outbound-ports", "5432", env=env)[0] == 0
    assert "--dport 5432" in json.loads(path.read_text())["rules"]["ipv4"]["restore"]


def test_ipv6_rules_get_their_own_section(backend: FakeBackend, tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    assert run("install", "--ipv6", "on", "--rules-file", str(path))[0] == 0
    rules = json.loads(path.read_text())["rules"]
    assert sorted(rules) == ["ipv4", "ipv6"]
    assert rules["ipv6"]["tool"] == "ip6tables-restore"
    assert "MESH_OUTPUT" in rules["ipv6"]["restore"]


def test_without_the_option_no_copy_is_written(
    backend: FakeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("install")[0] == 0
    assert backend.applied and os.listdir(tmp_path) == []


def test_a_failed_install_leaves_no_copy(backend: FakeBackend, tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    backend.fail_family = 4
    code, _, err = run("install", "--rules-file", str(path))
    assert code == 3 and "rolled back" in err
    assert not path.exists()


def test_an_unwritable_place_fails_before_any_rule(backend: FakeBackend, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    code, out, err = run("install", "--rules-file", str(tmp_path / "file" / "rules.json"))
    assert code == 2 and out == ""
    assert str(tmp_path / "file") in err
    assert backend.applied == []


@pytest.mark.parametrize(
    ("argv", "env", "needle"),
    [
        (["plan", "--rules-file", "rules.json"], {}, "--rules-file: 'rules.json'"),
        (["plan"], {"MESH_RULES_FILE": "var/run/x"}, "MESH_RULES_FILE: 'var/run/x'"),
        (["plan", "--rules-file", "/var/run/mesh/"], {}, "'/var/run/mesh/'"),
    ],
)
def test_bad_paths_are_named(argv: list[str], env: dict[str, str], needle: str) -> None:
    code, out, err = run(*argv, env=env)
    assert code == 2 and out == "" and needle in err


def test_empty_env_means_no_copy_and_plan_ignores_the_option() -> None:
    assert run("plan", env={"MESH_RULES_FILE": ""}) == run("plan", "--rules-file", "/x/r.json")
    with pytest.raises(UsageError, match="'relative'"):
        Options(rules_file="relative")


def test_write_copy_is_atomic_over_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text("old")
    old_inode = path.stat().st_ino
    rulescopy.write_copy(str(path), {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    assert path.stat().st_ino != old_inode  # renamed into place, not rewritten in place
    assert os.listdir(tmp_path) == ["rules.json"]
