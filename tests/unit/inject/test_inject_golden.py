"""``mesh-proxy inject``: golden outputs, every workload kind, schema validity, idempotency.

Golden files live in ``tests/data/inject/`` (``<case>.out.yaml`` next to its input);
``MESH_UPDATE_GOLDEN=1`` rewrites them. Every output is checked against the Kubernetes
1.30 schema with ``kubernetes-validate --strict`` (unknown fields are errors).
"""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.inject import TEMPLATE_PATHS, InjectOptions, inject_text
from tests.support.manifest_tools import K8S_VERSION, tool

DATA = Path(__file__).resolve().parents[2] / "data" / "inject"
CUSTOM = InjectOptions("registry.local/mesh-init:dev", "registry.local/mesh-proxy:dev", "shop-mesh")
# case -> (input file, options)
CASES: dict[str, tuple[str, InjectOptions]] = {
    "pod": ("pod.in.yaml", InjectOptions()),
    "pod_custom_flags": ("pod.in.yaml", CUSTOM),
    "workloads": ("workloads.in.yaml", InjectOptions()),
    "cronjob": ("cronjob.in.yaml", InjectOptions()),
    "list": ("list.in.yaml", InjectOptions()),
    "annotations": ("annotations.in.yaml", InjectOptions()),
}
MESH_CONTAINERS = ["mesh-init", "mesh-proxy"]


def _inject(case: str) -> str:
    source, opts = CASES[case]
    return inject_text((DATA / source).read_text(), source, opts)[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_output(case: str) -> None:
    got = _inject(case)
    path = DATA / f"{case}.out.yaml"
    if os.environ.get("MESH_UPDATE_GOLDEN") == "1":
        path.write_text(got)
    assert path.exists(), f"{path} missing: run with MESH_UPDATE_GOLDEN=1 and review it"
    assert got == path.read_text()


def _flatten(docs: list[Any]) -> list[Any]:
    """List items as documents: kubernetes-validate has no schema for ``List``."""
    out: list[Any] = []
    for d in docs:
        out += _flatten(d["items"]) if d.get("kind") == "List" else [d]
    return out


def test_every_output_passes_the_kubernetes_schema(tmp_path: Path) -> None:
    files = []
    for case in sorted(CASES):
        path = tmp_path / f"{case}.yaml"
        path.write_text(yaml.safe_dump_all(_flatten(list(yaml.safe_load_all(_inject(case))))))
        files.append(str(path))
    r = subprocess.run(
        [tool("kubernetes-validate"), "-k", K8S_VERSION, "--strict", *files],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    # one "passed" per object: 1 + 1 + 5 + 1 + 3 + 3
    assert (r.stdout + r.stderr).count(" passed ") == 14, r.stdout + r.stderr


def test_schema_check_catches_a_broken_sidecar(tmp_path: Path) -> None:
    """The check above can fail: a field the schema does not know is reported."""
    doc = yaml.safe_load(_inject("pod"))
    doc["spec"]["initContainers"][1]["restartPolicyy"] = "Always"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(doc))
    r = subprocess.run(
        [tool("kubernetes-validate"), "-k", K8S_VERSION, "--strict", str(path)],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "restartPolicyy" in r.stdout + r.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_injecting_twice_is_injecting_once(case: str) -> None:
    once = _inject(case)
    assert inject_text(once, "once", CASES[case][1])[0] == once


def _workload(kind: str) -> dict[str, Any]:
    pod_spec = {"containers": [{"name": "app", "image": "app:1", "ports": [{"containerPort": 80}]}]}
    obj: dict[str, Any] = {"apiVersion": "x/v1", "kind": kind, "metadata": {"name": "w"}}
    node: dict[str, Any] = obj
    for key in TEMPLATE_PATHS[kind]:
        node = node.setdefault(key, {})
    node["spec"] = pod_spec
    return obj


def _at(obj: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


KIND_PATHS = [
    ("Pod", ("spec",)),
    ("Deployment", ("spec", "template", "spec")),
    ("StatefulSet", ("spec", "template", "spec")),
    ("DaemonSet", ("spec", "template", "spec")),
    ("ReplicaSet", ("spec", "template", "spec")),
    ("ReplicationController", ("spec", "template", "spec")),
    ("Job", ("spec", "template", "spec")),
    ("CronJob", ("spec", "jobTemplate", "spec", "template", "spec")),
]


@pytest.mark.parametrize(("kind", "path"), KIND_PATHS)
def test_each_kind_gets_the_mesh_at_its_pod_template(kind: str, path: tuple[str, ...]) -> None:
    original = _workload(kind)
    (out,) = yaml.safe_load_all(inject_text(yaml.safe_dump(original), "t", InjectOptions())[0])
    spec = _at(out, path)
    assert [c["name"] for c in spec["initContainers"]] == MESH_CONTAINERS
    assert [v["name"] for v in spec["volumes"]] == ["mesh-config", "mesh-rules"]
    assert spec["containers"] == _at(original, path)["containers"]
    assert spec["securityContext"]["sysctls"] == [
        {"name": "net.ipv4.ip_local_reserved_ports", "value": "15000,15001,15006,15020,15021,15090"}
    ]
    # nothing else moved: remove what injection added and the object is the original
    stripped = copy.deepcopy(out)
    del _at(stripped, path)["initContainers"], _at(stripped, path)["volumes"]
    del _at(stripped, path)["securityContext"]
    assert stripped == original


def test_a_pods_own_reserved_ports_are_kept_and_ours_added() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "securityContext": {
                "runAsUser": 1000,
                "sysctls": [
                    {"name": "net.ipv4.ip_local_reserved_ports", "value": "8080, 15020"},
                    {"name": "net.ipv4.tcp_syncookies", "value": "1"},
                ],
            },
            "containers": [{"name": "app", "image": "app:1"}],
        },
    }
    (out,) = yaml.safe_load_all(inject_text(yaml.safe_dump(pod), "t", InjectOptions())[0])
    security = out["spec"]["securityContext"]
    assert security["runAsUser"] == 1000
    assert security["sysctls"] == [
        {
            "name": "net.ipv4.ip_local_reserved_ports",
            "value": "8080,15020,15000,15001,15006,15021,15090",
        },
        {"name": "net.ipv4.tcp_syncookies", "value": "1"},
    ]


PASSTHROUGH = [
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}]},
    },
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}},
    {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}},
    {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"template": {"spec": {}}}},
]


@pytest.mark.parametrize("doc", PASSTHROUGH, ids=lambda d: d["kind"])
def test_other_kinds_pass_through_unchanged(doc: dict[str, Any]) -> None:
    out, notes = inject_text(yaml.safe_dump(doc), "t", InjectOptions())
    assert yaml.safe_load(out) == doc
    assert notes == []


def test_document_order_and_count_are_kept() -> None:
    docs = [PASSTHROUGH[0], _workload("Pod"), PASSTHROUGH[1], _workload("Deployment")]
    text = "---\n".join(yaml.safe_dump(d) for d in docs) + "---\n"  # a trailing empty doc
    out = list(yaml.safe_load_all(inject_text(text, "t", InjectOptions())[0]))
    assert [d["kind"] for d in out] == ["Service", "Pod", "ConfigMap", "Deployment"]
    assert out[0] == docs[0] and out[2] == docs[2]
    assert [c["name"] for c in out[1]["spec"]["initContainers"]] == MESH_CONTAINERS


def test_sidecar_shape_matches_the_example_pod() -> None:
    """The injected pod's mesh containers are the ones docker/k8s/meshed-pod.yaml shows."""
    example = Path(__file__).resolve().parents[3] / "docker" / "k8s" / "meshed-pod.yaml"
    pod = next(d for d in yaml.safe_load_all(example.read_text()) if d["kind"] == "Pod")
    bare = copy.deepcopy(pod)
    del bare["spec"]["initContainers"], bare["spec"]["volumes"]
    (out,) = yaml.safe_load_all(inject_text(yaml.safe_dump(bare), "t", InjectOptions())[0])
    want_init, want_proxy = pod["spec"]["initContainers"]
    got_init, got_proxy = out["spec"]["initContainers"]
    assert got_proxy == want_proxy
    # the example also excludes DNS (port 53) for illustration; the injector adds no such default
    want_env = [e for e in want_init["env"] if e["name"] != "MESH_EXCLUDE_OUTBOUND_PORTS"]
    assert sorted(got_init["env"], key=str) == sorted(
        [*want_env, {"name": "MESH_PROXY_GID", "value": "1337"}], key=str
    )
    assert {k: v for k, v in got_init.items() if k != "env"} == {
        k: v for k, v in want_init.items() if k != "env"
    }
    assert out["spec"]["volumes"] == pod["spec"]["volumes"]


def test_flags_choose_images_and_config_map() -> None:
    (pod,) = yaml.safe_load_all(_inject("pod_custom_flags"))
    init, proxy = pod["spec"]["initContainers"]
    assert init["image"] == "registry.local/mesh-init:dev"
    assert proxy["image"] == "registry.local/mesh-proxy:dev"
    assert pod["spec"]["volumes"][0] == {"name": "mesh-config", "configMap": {"name": "shop-mesh"}}


def test_the_rules_copy_is_shared_by_both_containers() -> None:
    (pod,) = yaml.safe_load_all(_inject("pod"))
    init, proxy = pod["spec"]["initContainers"]
    for c in (init, proxy):
        assert {"name": "MESH_RULES_FILE", "value": "/var/run/mesh/rules.json"} in c["env"]
    assert {"name": "mesh-rules", "mountPath": "/var/run/mesh"} in init["volumeMounts"]
    assert {"name": "mesh-rules", "mountPath": "/var/run/mesh", "readOnly": True} in proxy[
        "volumeMounts"
    ]
    assert proxy["restartPolicy"] == "Always" and proxy["securityContext"]["runAsUser"] == 1337
