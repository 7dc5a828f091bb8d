"""``mesh-proxy config generate`` on real-shaped kubectl output.

``tests/data/k8s/cluster.yaml`` is what ``kubectl get svc,endpointslices,pods -A -o
yaml`` prints for a small cluster: several namespaces, named and numbered ports, a
named targetPort, a UDP port, a headless StatefulSet service, an ExternalName,
unready endpoints, split IPv4/IPv6 slices and Pods with ``version`` labels. The
output is compared with ``expected.yaml`` (refresh: MESH_UPDATE_GOLDEN=1) and, for
each mapping rule, asserted field by field; ``validate`` must accept it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.k8s import generate, port_protocol, read_objects
from proxy.k8s.objects import ServicePort
from tests.support import netns as nt

DATA = Path(__file__).parents[2] / "data" / "k8s"
CLUSTER = DATA / "cluster.yaml"
EXPECTED = DATA / "expected.yaml"


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=nt.python_env(),
        timeout=60,
        check=False,
    )


def _by_name(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in config["services"]}


def test_cli_output_matches_golden_and_validates(tmp_path: Path) -> None:
    result = _run("config", "generate", "-f", str(CLUSTER))
    assert result.returncode == 0, result.stderr
    if os.environ.get("MESH_UPDATE_GOLDEN"):
        EXPECTED.write_text(result.stdout)
    assert result.stdout == EXPECTED.read_text()
    assert "port 8125/UDP skipped" in result.stderr
    out = tmp_path / "mesh.yaml"
    out.write_text(result.stdout)
    checked = _run("validate", str(out))
    assert checked.returncode == 0, checked.stderr
    assert "ok (7 services" in checked.stdout


def test_the_rules_of_the_translation() -> None:
    services = _by_name(yaml.safe_load(EXPECTED.read_text()))
    assert sorted(services) == [
        "kubernetes.default",
        "payments.data",
        "postgres.data",
        "ratings.bookinfo.http-api",
        "ratings.bookinfo.tcp-grpc",
        "reviews.bookinfo",
        "reviews.staging",
    ]
    reviews = services["reviews.bookinfo"]
    assert reviews["addresses"] == ["10.96.12.40"]
    # "reviews" exists in two namespaces on 9080: the short name would be ambiguous.
    assert reviews["hosts"] == ["reviews.bookinfo", "reviews.bookinfo.svc.cluster.local"]
    assert reviews["protocol"] == "http"  # port name "http"
    # v3 is not ready: excluded; pod labels (minus rollout hashes) label the endpoints.
    assert reviews["endpoints"] == [
        {"address": "10.244.1.5", "port": 9080, "labels": {"app": "reviews", "version": "v1"}},
        {"address": "10.244.2.7", "port": 9080, "labels": {"app": "reviews", "version": "v2"}},
    ]
    assert reviews["subsets"] == {"v1": {"version": "v1"}, "v2": {"version": "v2"}}
    api = services["ratings.bookinfo.http-api"]
    # targetPort "api" is resolved through the slice's port named like the Service port.
    assert api["port"] == 9080 and api["endpoints"] == [{"address": "10.244.1.12", "port": 8080}]
    assert api["hosts"][0] == "ratings"
    assert services["ratings.bookinfo.tcp-grpc"]["protocol"] == "auto"  # appProtocol grpc wins
    postgres = services["postgres.data"]
    assert "addresses" not in postgres  # headless
    assert postgres["protocol"] == "tcp"
    # ready: true and no conditions at all are ready; ready: false (terminating) is not.
    assert [e["address"] for e in postgres["endpoints"]] == ["10.244.4.20", "10.244.5.21"]
    staging = services["reviews.staging"]
    assert staging["addresses"] == ["10.96.30.7", "fd00:10:96::30:7"]
    assert [e["address"] for e in staging["endpoints"]] == ["10.244.3.4", "fd00:10:244:3::4"]
    assert staging["protocol"] == "http"  # appProtocol http on a port named "web"
    assert services["payments.data"]["dns"] == {"hostname": "payments.example.com", "port": 80}
    kube = services["kubernetes.default"]
    assert (kube["protocol"], kube["endpoints"]) == (
        "auto",
        [{"address": "172.18.0.2", "port": 6443}],
    )


def test_json_list_and_multi_document_stream_read_the_same() -> None:
    text = CLUSTER.read_text()
    as_list = yaml.safe_load(text)
    stream = yaml.safe_dump_all(as_list["items"])
    from_yaml = generate(read_objects(text, "yaml")).config
    assert generate(read_objects(json.dumps(as_list), "json")).config == from_yaml
    assert generate(read_objects(stream, "stream")).config == from_yaml
    result = _run("config", "generate", "--namespace-suffix", "svc.corp.internal.", stdin=stream)
    assert result.returncode == 0, result.stderr
    hosts = _by_name(yaml.safe_load(result.stdout))["postgres.data"]["hosts"]
    assert hosts == ["postgres", "postgres.data", "postgres.data.svc.corp.internal"]


@pytest.mark.parametrize(
    ("port", "protocol"),
    [
        (ServicePort(80, "http"), "http"),
        (ServicePort(80, "http-web"), "http"),
        (ServicePort(80, "HTTP"), "http"),
        (ServicePort(80, "tcp-db"), "tcp"),
        (ServicePort(80, "httpx"), "auto"),  # Istio: <protocol> or <protocol>-<suffix>
        (ServicePort(80, "http2"), "auto"),
        (ServicePort(80, "web", app_protocol="http"), "http"),
        (ServicePort(80, "http", app_protocol="kubernetes.io/h2c"), "auto"),
        (ServicePort(80, ""), "auto"),
    ],
)
def test_port_protocol(port: ServicePort, protocol: str) -> None:
    assert port_protocol(port) == protocol


def test_bad_input_exits_2_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("items: [\n")
    result = _run("config", "generate", "-f", str(broken))
    assert result.returncode == 2 and str(broken) in result.stderr
    result = _run("config", "generate", "-f", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "missing.yaml: cannot read" in result.stderr
    bad_port = "kind: Service\nmetadata: {name: x}\nspec: {ports: [{port: eighty}]}\n"
    result = _run("config", "generate", stdin=bad_port)
    assert result.returncode == 2 and "Service 'x': malformed" in result.stderr
