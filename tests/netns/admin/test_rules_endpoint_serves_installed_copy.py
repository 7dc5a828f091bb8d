"""``GET /rules`` end to end in a pod namespace: the real interceptor installs with
``--rules-file``, the real proxy (uid 1337) serves that copy on 127.0.0.1:15000, and
after ``remove`` (which deletes the copy) answers 404."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import netns as nt
from tests.support import nsock
from tests.support import sidecar as capture

pytestmark = pytest.mark.netns


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """Like the pod's emptyDir: written by root (the init step), read by uid 1337."""
    path = Path(tempfile.mkdtemp(prefix="pj-rules-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def interceptor(pod: nt.Netns, *args: str) -> str:
    r = pod.run(nt.PYTHON, "-m", "interceptor", *args, env=nt.python_env(), timeout=30, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_proxy_serves_the_rules_the_interceptor_applied(tmp_path: Path, shared_dir: Path) -> None:
    rules = shared_dir / "rules.json"
    with nt.netns("pj") as pod:
        out = interceptor(
            pod, "install", "--backend", "legacy", "--exclude-outbound-ports", "5432",
            "--rules-file", str(rules),
        )  # fmt: skip
        assert f"rules copy written to {rules}" in out
        proxy = capture.start_proxy(pod, tmp_path, "--rules-file", str(rules))
        assert os.stat(rules).st_uid == 0  # written by root, read by the proxy as 1337

        status, body = nsock.http_get(pod.name, "127.0.0.1", 15000, "/rules")
        assert status == 200, body
        doc = json.loads(body)
        assert doc["backend"] == "legacy"
        assert doc["options"]["exclude_outbound_ports"] == [5432]
        restore = doc["rules"]["ipv4"]["restore"]
        assert "-A MESH_OUTPUT" in restore and "--dport 5432" in restore
        # exactly what `plan` renders for the same options, i.e. what the kernel was given
        plan = interceptor(pod, "plan", "--exclude-outbound-ports", "5432", "--ipv6", "off")
        assert restore in plan
        # and the kernel still holds it
        assert "match the plan" in interceptor(
            pod, "verify", "--backend", "legacy", "--exclude-outbound-ports", "5432"
        )

        out = interceptor(pod, "remove", "--backend", "legacy", "--rules-file", str(rules))
        assert f"rules copy {rules} deleted" in out and not rules.exists()
        status, body = nsock.http_get(pod.name, "127.0.0.1", 15000, "/rules")
        assert status == 404
        assert f"no rules copy at {rules}".encode() in body
        assert proxy.proc.poll() is None, proxy.log()
