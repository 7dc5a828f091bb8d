"""``mesh-proxy inject``: annotations, bad input (exit 2, nothing printed), the CLI wiring."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.inject import PROXY_PORTS, InjectError, InjectOptions, inject_main, inject_text

REPO = Path(__file__).resolve().parents[3]
POD = """\
apiVersion: v1
kind: Pod
metadata: {name: web, annotations: {}}
spec:
  containers:
    - {name: web, image: "web:1", ports: [{containerPort: 8080}]}
"""


def _pod(annotations: dict[str, str] | None = None, **spec: Any) -> str:
    doc = yaml.safe_load(POD)
    doc["metadata"]["annotations"] = annotations or {}
    doc["spec"].update(spec)
    return yaml.safe_dump(doc)


def _init_env(text: str) -> dict[str, str]:
    (pod,) = yaml.safe_load_all(inject_text(text, "t", InjectOptions())[0])
    init = pod["spec"]["initContainers"][0]
    assert init["name"] == "mesh-init"
    return {e["name"]: e["value"] for e in init["env"]}


ANNOTATIONS = [
    ("excludeOutboundPorts", " 5432 ,53,5432", "MESH_EXCLUDE_OUTBOUND_PORTS", "5432,53"),
    ("excludeInboundPorts", "9100", "MESH_EXCLUDE_INBOUND_PORTS", "9100"),
    ("includeOutboundIPRanges", "10.96.0.0/12", "MESH_INCLUDE_OUTBOUND_CIDRS", "10.96.0.0/12"),
    ("includeOutboundIPRanges", "*", "MESH_INCLUDE_OUTBOUND_CIDRS", "*"),
    (
        "excludeOutboundIPRanges",
        "169.254.169.254",
        "MESH_EXCLUDE_OUTBOUND_CIDRS",
        "169.254.169.254/32",
    ),
    ("includeInboundPorts", "", "MESH_INCLUDE_INBOUND_PORTS", ""),
]


@pytest.mark.parametrize(("key", "value", "env", "want"), ANNOTATIONS)
def test_traffic_annotations_become_init_env(key: str, value: str, env: str, want: str) -> None:
    got = _init_env(_pod({f"traffic.mesh.io/{key}": value}))
    assert got[env] == want
    assert got["MESH_PROXY_UID"] == "1337" and got["MESH_RULES_FILE"] == "/var/run/mesh/rules.json"


def test_without_annotations_the_init_env_is_the_defaults() -> None:
    assert _init_env(_pod()) == {
        "MESH_PROXY_UID": "1337",
        "MESH_PROXY_GID": "1337",
        "MESH_RULES_FILE": "/var/run/mesh/rules.json",
    }


@pytest.mark.parametrize(
    ("annotations", "spec", "note"),
    [
        ({"mesh.io/inject": "false"}, {}, "skipped (mesh.io/inject: false)"),
        ({"mesh.io/inject": "False"}, {}, "skipped (mesh.io/inject: false)"),
        ({}, {"hostNetwork": True}, "skipped (hostNetwork)"),
    ],
)
def test_pods_left_alone(annotations: dict[str, str], spec: dict[str, Any], note: str) -> None:
    text = _pod(annotations, **spec)
    out, notes = inject_text(text, "t", InjectOptions())
    assert yaml.safe_load(out) == yaml.safe_load(text)
    assert notes == [f"Pod web (document 1): {note}"]


def test_explicit_inject_true_injects() -> None:
    assert "MESH_PROXY_UID" in _init_env(_pod({"mesh.io/inject": "true"}))


def _error(text: str) -> str:
    with pytest.raises(InjectError) as e:
        inject_text(text, "in.yaml", InjectOptions())
    return str(e.value)


@pytest.mark.parametrize(
    ("annotations", "words"),
    [
        ({"traffic.mesh.io/excludeOutboundPorts": "5432,pg"}, ["'pg'", "excludeOutboundPorts"]),
        ({"traffic.mesh.io/excludeInboundPorts": "70000"}, ["'70000'", "excludeInboundPorts"]),
        ({"traffic.mesh.io/includeOutboundIPRanges": "10.0.0.0/33"}, ["10.0.0.0/33"]),
        ({"traffic.mesh.io/excludeOutboundIPRanges": "example.com"}, ["example.com"]),
        ({"traffic.mesh.io/excludeOutboundPort": "53"}, ["unknown annotation", "OutboundPort "]),
        ({"mesh.io/inject": "maybe"}, ["mesh.io/inject", "'maybe'"]),
        (
            {
                "traffic.mesh.io/includeOutboundIPRanges": "10.96.0.0/16",
                "traffic.mesh.io/excludeOutboundIPRanges": "10.0.0.0/8",
            },
            ["10.96.0.0/16", "annotation traffic.mesh.io/excludeOutboundIPRanges", "never"],
        ),
    ],
)
def test_bad_annotations_name_the_value(annotations: dict[str, str], words: list[str]) -> None:
    message = _error(_pod(annotations))
    assert message.startswith("Pod web (document 1): ")
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("port", PROXY_PORTS)
def test_an_app_port_that_is_a_proxy_port_is_refused(port: int) -> None:
    message = _error(
        _pod(containers=[{"name": "app", "image": "a", "ports": [{"containerPort": port}]}])
    )
    assert f"container 'app' port {port}" in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: a\n", ["in.yaml", "not valid YAML"]),
        ("- just\n- a list\n", ["document 1 is not a Kubernetes object"]),
        ("apiVersion: v1\nmetadata: {name: a}\n", ["without a kind"]),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n",
            ["Deployment web (document 1)", "no pod template", "spec.template.spec.containers"],
        ),
        (
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec: {jobTemplate: {}}\n",
            ["CronJob c", "spec.jobTemplate.spec.template.spec.containers"],
        ),
        ("apiVersion: v1\nkind: List\nitems: [3]\n", ["items[0] is not a Kubernetes object"]),
        (
            _pod(volumes=[{"name": "mesh-config", "emptyDir": {}}]),
            ["volume is already named mesh-config"],
        ),
        (
            _pod(containers=[{"name": "mesh-proxy", "image": "x"}]),
            ["a container is already named mesh-proxy"],
        ),
    ],
)
def test_bad_input_is_named(text: str, words: list[str]) -> None:
    message = _error(text)
    for word in words:
        assert word in message, message


def test_cli_prints_nothing_when_a_later_document_is_bad(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "app.yaml"
    src.write_text(POD + "---\napiVersion: apps/v1\nkind: Job\nmetadata: {name: j}\nspec: {}\n")
    out = io.StringIO()
    assert inject_main(["-f", str(src)], out=out) == 2
    assert out.getvalue() == ""
    assert "Job j (document 2): no pod template" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["-f", "/nonexistent/pj.yaml"], ["/nonexistent/pj.yaml", "cannot read"]),
        ([], ["-f/--filename"]),
        (["-f", "-", "--image-proxy", ""], ["--image-proxy", "''"]),
        (["-f", "-", "--config-map", "a b"], ["--config-map", "'a b'"]),
    ],
)
def test_cli_usage_errors_exit_2(
    argv: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert inject_main(argv, stdin=io.StringIO(POD), out=out) == 2
    assert out.getvalue() == ""
    err = capsys.readouterr().err
    for word in words:
        assert word in err, err


def _mesh_proxy(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", "inject", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )


def test_mesh_proxy_inject_reads_stdin_and_writes_stdout() -> None:
    r = _mesh_proxy("-f", "-", "--image-proxy", "p:2", stdin=POD)
    assert r.returncode == 0, r.stderr
    (pod,) = yaml.safe_load_all(r.stdout)
    assert [(c["name"], c["image"]) for c in pod["spec"]["initContainers"]] == [
        ("mesh-init", "meshproxy/init:0.1.0"),
        ("mesh-proxy", "p:2"),
    ]
    assert "note: Pod web (document 1): injected" in r.stderr


def test_mesh_proxy_inject_bad_input_exits_2_with_empty_stdout(tmp_path: Path) -> None:
    src = tmp_path / "broken.yaml"
    src.write_text("kind: Pod\nspec: [\n")
    r = _mesh_proxy("-f", str(src))
    assert (r.returncode, r.stdout) == (2, "")
    assert str(src) in r.stderr and "not valid YAML" in r.stderr
