"""scripts/lib/oci-runtime-norlimits: the bundle's ``process.rlimits`` go, nothing else
changes, and runc gets the very same arguments (here ``echo`` stands in for runc)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
WRAPPER = REPO / "scripts" / "lib" / "oci-runtime-norlimits"


def _bundle(tmp: Path) -> dict[str, object]:
    config = {
        "ociVersion": "1.0.2-dev",
        "process": {
            "args": ["sh"],
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}],
            "user": {"uid": 1337, "gid": 1337},
        },
        "root": {"path": "rootfs", "readonly": True},
    }
    (tmp / "config.json").write_text(json.dumps(config))
    return config


def _run(tmp: Path, *args: str) -> str:
    env = {**os.environ, "MESH_OCI_RUNC": "echo"}
    r = subprocess.run([str(WRAPPER), *args], capture_output=True, text=True, env=env, cwd="/")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_create_with_a_bundle_loses_the_rlimits_and_keeps_the_rest(tmp_path: Path) -> None:
    config = _bundle(tmp_path)
    out = _run(tmp_path, "--root", "/run/runc", "create", "--bundle", str(tmp_path), "ctr")
    assert out == f"--root /run/runc create --bundle {tmp_path} ctr"
    after = json.loads((tmp_path / "config.json").read_text())
    process = dict(config["process"])  # type: ignore[call-overload]
    del process["rlimits"]
    assert after == {**config, "process": process}


def test_other_commands_leave_the_bundle_alone(tmp_path: Path) -> None:
    _bundle(tmp_path)
    before = (tmp_path / "config.json").read_text()
    assert _run(tmp_path, "state", "ctr") == "state ctr"
    assert (tmp_path / "config.json").read_text() == before
