"""tests/support/pod_spec: the example pod's containers become the podman flags the
image test runs them with, and a field it cannot translate is an error, not a drop."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import pod_spec

REPO = Path(__file__).resolve().parents[3]
MANIFEST = REPO / "docker" / "k8s" / "meshed-pod.yaml"


def test_the_sidecar_runs_as_1337_without_capabilities_on_a_read_only_root(
    tmp_path: Path,
) -> None:
    pod = pod_spec.load(MANIFEST, tmp_path)
    proxy = pod.container("mesh-proxy")
    flags = set(proxy.run_args)
    assert {
        "--user=1337:1337", "--cap-drop=all", "--read-only", "--read-only-tmpfs=false",
        "--security-opt=no-new-privileges",
    } <= flags  # fmt: skip
    assert not any(f.startswith("--cap-add") for f in flags)
    assert "--env=POD_NAME=productpage" in flags
    assert "--env=MESH_WORKLOAD_APP=productpage" in flags  # metadata.labels['app']
    assert f"--volume={tmp_path / 'mesh-config'}:/etc/mesh:ro" in flags
    assert (tmp_path / "mesh-config" / "mesh.yaml").read_text().startswith("mesh:")
    assert proxy.args == ("--config", "/etc/mesh/mesh.yaml")
    assert proxy.probes["readiness"].path == "/healthz/ready"
    assert proxy.probes["startup"].failures == 60


def test_the_init_container_gets_exactly_its_four_capabilities(tmp_path: Path) -> None:
    init = pod_spec.load(MANIFEST, tmp_path).container("mesh-init")
    caps = sorted(f for f in init.run_args if f.startswith("--cap-"))
    assert caps == [
        "--cap-add=NET_ADMIN", "--cap-add=NET_RAW", "--cap-add=SETGID", "--cap-add=SETUID",
        "--cap-drop=all",
    ]  # fmt: skip
    assert "--user=0" in init.run_args
    assert "--env=MESH_RULES_FILE=/var/run/mesh/rules.json" in init.run_args


@pytest.mark.parametrize(
    "context",
    [{"privileged": True}, {"seccompProfile": {"type": "Unconfined"}}, {"runAsNonRoot": True}],
    ids=str,
)
def test_what_cannot_be_translated_is_an_error(context: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        pod_spec.security_args("c", context)
