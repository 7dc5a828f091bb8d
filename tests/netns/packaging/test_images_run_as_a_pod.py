"""The real images run as a pod: the init image captures, the sidecar image serves the
example ConfigMap's mesh, and an app container's traffic goes through it both ways.

The pod is a network namespace this test makes (``img<pid>x<n>``), with a "cluster"
namespace behind a veth holding the reviews endpoints the ConfigMap names. Containers
run one by one in the pod's namespace (``podman kube play`` loses track of init
containers here), each with the env, volumes, security context and args written in
docker/k8s/meshed-pod.yaml (tests/support/pod_spec.py translates them and fails on any
field it does not know); probes are called on the pod's address as the kubelet does.
Not applied: ``resources`` (cgroup limits prove nothing about the images) and the app
container, which is the test's own small image (tests/support/podapp, a productpage
stand-in calling reviews) in place of bookinfo's.

The OCI runtime: plain ``podman run`` first; only where that fails with "setrlimit ...
operation not permitted" (sandboxes that forbid a container to set rlimits, which
podman always writes into the bundle) does podman run through
scripts/lib/oci-runtime-norlimits (drops ``process.rlimits``, execs runc) with
``--cgroup-manager=cgroupfs``.

The images come from ``scripts/images`` (cached by a hash of their inputs: a first
build from Debian packages takes one to two minutes, a cached run of this module well
under one).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import netns as nt
from tests.support import nsock, pod_spec
from tests.support.http_server import HttpServer
from tests.support.loop_thread import serving
from tests.support.podman import Podman, Reply, app_image, need, project_images, request

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
MANIFEST = REPO / "docker" / "k8s" / "meshed-pod.yaml"
APP_PORT = 9080  # the app container's containerPort in the manifest


@dataclass
class RunningPod:
    pod: nt.Netns
    cluster: nt.Netns
    ip: str  # the pod's address, as the kubelet and other pods see it
    podman: Podman
    spec: pod_spec.Pod
    images: dict[str, str]
    init_output: str
    endpoints: dict[str, HttpServer]  # version → the reviews endpoint serving it
    volumes: Path

    def name(self, container: str) -> str:
        return f"{self.pod.name}-{container}"

    def scrape(self) -> Metrics:
        """The sidecar's metrics as a Prometheus scrape sees them: pod IP, port 15020."""
        status, body = nsock.http_get(self.cluster.name, self.ip, 15020, "/metrics")
        assert status == 200
        return Metrics(
            {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(body.decode())
                for s in family.samples
            }
        )

    def access_log(self, at_least: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 10
        while True:
            out, _ = self.podman.logs(self.name("mesh-proxy"))
            entries = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
            if len(entries) >= at_least or time.monotonic() > deadline:
                return entries
            time.sleep(0.1)

    def productpage(self, *headers: tuple[str, str]) -> Reply:
        return request(self.cluster.name, self.ip, APP_PORT, "/productpage", *headers)


@dataclass(frozen=True)
class Metrics:
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def total(self, name: str, **labels: str) -> float:
        """Sum of ``name`` over every series whose labels include ``labels``."""
        return sum(
            v
            for (n, ls), v in self.samples.items()
            if n == name and all((k, labels[k]) in ls for k in labels)
        )


def _wait_probe(ns: nt.Netns, ip: str, probe: pod_spec.Probe, why: str) -> None:
    """A kubelet httpGet probe: success is 200-399, tried ``failures`` times."""
    for _ in range(probe.failures):
        try:
            status, _ = nsock.http_get(ns.name, ip, probe.port, probe.path)
            if 200 <= status < 400:
                return
        except OSError:
            pass
        time.sleep(probe.period)
    raise AssertionError(f"{why}: {probe.path} on {ip}:{probe.port} never passed")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPod]:
    need("podman")
    images = project_images()
    podman = Podman.choose(images["proxy"])
    app = app_image(podman, images["base"])
    volumes = tmp_path_factory.mktemp("pod-volumes")
    spec = pod_spec.load(MANIFEST, volumes)
    mesh = yaml.safe_load(spec.config_maps["mesh-config"]["mesh.yaml"])
    (reviews,) = (s for s in mesh["services"] if s["name"] == "reviews")
    with nt.netns("img") as pod, nt.netns("img") as cluster, podman.session():
        link = nt.connect(pod, cluster)
        for name, value in spec.sysctls.items():  # what the kubelet sets on the pod sandbox
            pod.run("sysctl", "-q", "-w", f"{name}={value}")
        servers = {}
        for ep in reviews["endpoints"]:
            cluster.run("ip", "addr", "add", f"{ep['address']}/32", "dev", "lo")
            version = ep["labels"]["version"]
            servers[version] = HttpServer(
                name=f"reviews-{version}", ns=cluster.name, host=ep["address"], port=ep["port"]
            )
        with serving(*servers.values()):
            net = f"--network=ns:/run/netns/{pod.name}"
            init = spec.container("mesh-init")
            podman.started.append(f"{pod.name}-mesh-init")
            r = podman.run(
                "run", f"--name={pod.name}-mesh-init", "--http-proxy=false", net,
                *init.run_args, images["init"], *init.args, check=False,
            )  # fmt: skip
            assert r.returncode == 0, f"init container exited {r.returncode}:\n{r.stdout}{r.stderr}"
            proxy = spec.container("mesh-proxy")
            podman.start(
                f"{pod.name}-mesh-proxy", net, *proxy.run_args, images["proxy"], *proxy.args
            )
            _wait_probe(cluster, link.a4, proxy.probes["startup"], "sidecar startup")
            url = f"http://{reviews['addresses'][0]}:{reviews['port']}/reviews/0"
            podman.start(
                f"{pod.name}-app", net, "--cap-drop=all", "--security-opt=no-new-privileges",
                f"--env=REVIEWS_URL={url}", app,
            )  # fmt: skip
            nt.wait_port(pod, APP_PORT, host="0.0.0.0", timeout=30)
            yield RunningPod(
                pod, cluster, link.a4, podman, spec, images, r.stdout, servers, volumes
            )


def _proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_the_init_image_installs_the_rules_and_proves_they_redirect(running: RunningPod) -> None:
    assert "validated IPv4" in running.init_output
    copy = json.loads((running.volumes / "mesh-rules" / "rules.json").read_text())
    assert "MESH_REDIRECT" in copy["rules"]["ipv4"]["restore"]
    # The sidecar reads the same emptyDir: GET /rules on its loopback-only admin port.
    status, body = nsock.http_get(running.pod.name, "127.0.0.1", 15000, "/rules")
    assert status == 200
    assert json.loads(body)["backend"] == copy["backend"]


def test_the_sidecar_runs_as_1337_with_no_capabilities_on_a_read_only_root(
    running: RunningPod,
) -> None:
    inspect = running.podman.run(
        "inspect", "--format", "{{.State.Pid}}", running.name("mesh-proxy")
    )
    pid = int(inspect.stdout.strip())
    status = _proc_status(pid)
    assert status["Uid"].split() == ["1337"] * 4
    assert status["Gid"].split() == ["1337"] * 4
    for caps in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[caps], 16) == 0, caps
    assert status["NoNewPrivs"] == "1"
    root = [
        line.split()
        for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
        if line.split()[4] == "/"
    ]
    assert root and "ro" in root[-1][5].split(","), root
    # The liveness probe passes on the pod address, as the kubelet calls it.
    live = running.spec.container("mesh-proxy").probes["liveness"]
    assert nsock.http_get(running.cluster.name, running.ip, live.port, live.path)[0] == 200


def test_the_apps_inbound_and_outbound_http_go_through_the_sidecar(running: RunningPod) -> None:
    before = running.scrape()
    inbound0 = before.total("istio_requests_total", reporter="destination", response_code="200")
    outbound0 = before.total(
        "istio_requests_total", reporter="source", destination_service_name="reviews"
    )
    seen0 = sum(len(s.requests) for s in running.endpoints.values())
    staging = running.productpage(("x-env", "staging"))
    plain = [running.productpage() for _ in range(2)]
    for reply in (staging, *plain):
        assert reply.status == 200, reply
        assert json.loads(reply.body)["reviews_status"] == 200
    # The ConfigMap's route: x-env: staging goes to subset v2 only.
    assert json.loads(staging.body)["reviews_served_by"] == "reviews-v2"
    seen = [r for s in running.endpoints.values() for r in s.requests]
    assert len(seen) - seen0 == 3
    # The client sent no x-request-id: the inbound sidecar made one, the app forwarded
    # it, and the outbound sidecar kept it.
    assert all(r.header("x-request-id") for r in seen[-3:])

    after = running.scrape()
    inbound = after.total("istio_requests_total", reporter="destination", response_code="200")
    outbound = after.total(
        "istio_requests_total", reporter="source", destination_service_name="reviews"
    )
    assert inbound - inbound0 == 3
    assert outbound - outbound0 == 3
    assert after.total("istio_requests_total", reporter="source", destination_version="v2") >= 1

    log = running.access_log(at_least=6)
    inbound_lines = [
        e for e in log if e.get("direction") == "inbound" and e.get("path") == "/productpage"
    ]
    outbound_lines = [
        e for e in log if e.get("direction") == "outbound" and e.get("path") == "/reviews/0"
    ]
    assert len(inbound_lines) >= 3 and len(outbound_lines) >= 3, log
    ids_in = {e["request_id"] for e in inbound_lines}
    assert {e["request_id"] for e in outbound_lines[-3:]} <= ids_in


def test_dump_from_the_init_image_shows_the_counters(running: RunningPod) -> None:
    running.productpage()  # at least one packet through each direction's REDIRECT
    backend = json.loads((running.volumes / "mesh-rules" / "rules.json").read_text())["backend"]
    dump = running.podman.run(
        "run", "--rm", "--http-proxy=false", f"--network=ns:/run/netns/{running.pod.name}",
        "--cap-drop=all", "--cap-add=NET_ADMIN,NET_RAW", "--entrypoint=mesh-interceptor",
        running.images["init"], "dump", "--format", "json",
    )  # fmt: skip
    tables = json.loads(dump.stdout)["tables"]
    variant = "legacy" if backend in ("legacy", "iptc") else "nft"
    (v4,) = (t for t in tables if t["backend"] == variant and t["family"] == 4)
    counted = {
        r["chain"]: r["packets"] for r in v4["rules"] if r["ours"] and r["target"] == "REDIRECT"
    }
    assert counted.get("MESH_REDIRECT", 0) > 0, v4["rules"]
    assert counted.get("MESH_IN_REDIRECT", 0) > 0, v4["rules"]


def test_sigterm_to_the_sidecar_drains_and_exits_zero(running: RunningPod) -> None:
    """Last in this module: it stops the sidecar."""
    name = running.name("mesh-proxy")
    seen0 = sum(len(s.requests) for s in running.endpoints.values())
    slow: list[Reply] = []
    t = threading.Thread(
        target=lambda: slow.append(running.productpage(("x-test-delay-ms", "1500")))
    )
    t.start()
    deadline = time.monotonic() + 10
    while sum(len(s.requests) for s in running.endpoints.values()) == seen0:
        assert time.monotonic() < deadline, "the slow request never reached reviews"
        time.sleep(0.02)
    running.podman.run("kill", "--signal=TERM", name)
    t.join(30)
    assert slow and slow[0].status == 200, slow
    assert json.loads(slow[0].body)["reviews_status"] == 200
    code = running.podman.run("wait", name, timeout=30).stdout.strip()
    assert code == "0"
    _, err = running.podman.logs(name)
    assert "draining" in err
