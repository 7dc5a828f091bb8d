"""A Kubernetes pod manifest as ``podman run`` arguments: the one translation the image
test uses, so the example pod users copy (docker/k8s/meshed-pod.yaml) is what ran.

Env (values and the downward API), volumes (ConfigMap and emptyDir as host
directories), security contexts and args come from the manifest; a field this module
does not know raises instead of being dropped, so a manifest change the test cannot
honour fails it. Probes are read too: the test calls them on the pod's address, as
the kubelet does. Resources and ports are not translated (podman in a test-made
namespace has no use for either; see the test's docstring).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CONTAINER_KEYS = {
    "name", "image", "args", "env", "securityContext", "volumeMounts", "resources",
    "ports", "readinessProbe", "livenessProbe", "startupProbe", "restartPolicy",
}  # fmt: skip
SECURITY_KEYS = {
    "runAsUser", "runAsGroup", "runAsNonRoot", "allowPrivilegeEscalation",
    "readOnlyRootFilesystem", "capabilities", "seccompProfile",
}  # fmt: skip
_LABEL = re.compile(r"metadata\.labels\['([^']+)'\]")


@dataclass(frozen=True)
class Probe:
    path: str
    port: int
    period: float
    failures: int  # failureThreshold (the kubelet's default is 3)


@dataclass(frozen=True)
class Container:
    name: str
    image: str  # as written in the manifest
    run_args: tuple[str, ...]  # podman run flags: user, capabilities, env, mounts
    args: tuple[str, ...]  # after the image: the entrypoint's arguments
    probes: dict[str, Probe]  # "startup" / "readiness" / "liveness"
    security: dict[str, Any]


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict[str, str]
    init_containers: tuple[Container, ...]
    containers: tuple[Container, ...]
    config_maps: dict[str, dict[str, str]]  # name → data
    sysctls: dict[str, str]  # the pod's own (namespaced) sysctls, set on its namespace

    def container(self, name: str) -> Container:
        for c in (*self.init_containers, *self.containers):
            if c.name == name:
                return c
        raise KeyError(name)


def load(manifest: Path, volume_root: Path) -> Pod:
    """The manifest's one Pod, its volumes made as directories under ``volume_root``."""
    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    config_maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    (pod,) = (d for d in docs if d["kind"] == "Pod")
    meta, spec = pod["metadata"], pod["spec"]
    fields = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta.get("namespace", "default"),
    }
    labels: dict[str, str] = dict(meta.get("labels", {}))
    pod_security = dict(spec.get("securityContext", {}))
    if set(pod_security) - {"sysctls"}:
        raise ValueError(f"pod securityContext {sorted(pod_security)}: only sysctls translated")
    sysctls = {s["name"]: str(s["value"]) for s in pod_security.get("sysctls", [])}
    volumes = {v["name"]: _volume(v, config_maps, volume_root) for v in spec.get("volumes", [])}

    def one(c: dict[str, Any]) -> Container:
        unknown = set(c) - CONTAINER_KEYS
        if unknown:
            raise ValueError(f"container {c['name']}: no podman translation for {sorted(unknown)}")
        sc = c.get("securityContext", {})
        run_args = [*security_args(c["name"], sc), *_env_args(c.get("env", []), fields, labels)]
        for m in c.get("volumeMounts", []):
            if set(m) - {"name", "mountPath", "readOnly"}:
                raise ValueError(f"container {c['name']}: volumeMount {m}: unknown field")
            ro = ":ro" if m.get("readOnly") else ""
            run_args.append(f"--volume={volumes[m['name']]}:{m['mountPath']}{ro}")
        probes = {
            kind: _probe(c[f"{kind}Probe"])
            for kind in ("startup", "readiness", "liveness")
            if f"{kind}Probe" in c
        }
        return Container(
            c["name"], c["image"], tuple(run_args), tuple(c.get("args", [])), probes, sc
        )

    return Pod(
        fields["metadata.name"],
        fields["metadata.namespace"],
        labels,
        tuple(one(c) for c in spec.get("initContainers", [])),
        tuple(one(c) for c in spec["containers"]),
        config_maps,
        sysctls,
    )


def security_args(name: str, sc: dict[str, Any]) -> list[str]:
    """A securityContext as podman flags (Kubernetes mounts no tmpfs on a read-only root)."""
    unknown = set(sc) - SECURITY_KEYS
    if unknown:
        raise ValueError(f"container {name}: securityContext {sorted(unknown)} not translated")
    out: list[str] = []
    user, group = sc.get("runAsUser"), sc.get("runAsGroup")
    if sc.get("runAsNonRoot") and not user:
        raise ValueError(f"container {name}: runAsNonRoot needs a non-zero runAsUser")
    if user is not None:
        out.append(f"--user={user}" + (f":{group}" if group is not None else ""))
    if sc.get("allowPrivilegeEscalation") is False:
        out.append("--security-opt=no-new-privileges")
    if sc.get("readOnlyRootFilesystem"):
        out += ["--read-only", "--read-only-tmpfs=false"]
    caps = sc.get("capabilities", {})
    out += [f"--cap-drop={'all' if c == 'ALL' else c}" for c in caps.get("drop", [])]
    out += [f"--cap-add={c}" for c in caps.get("add", [])]
    seccomp = sc.get("seccompProfile", {"type": "RuntimeDefault"})
    if seccomp.get("type") != "RuntimeDefault":  # podman's default profile is that one
        raise ValueError(f"container {name}: seccompProfile {seccomp} not translated")
    return out


def _env_args(
    env: list[dict[str, Any]], fields: dict[str, str], labels: dict[str, str]
) -> list[str]:
    out = []
    for e in env:
        if "value" in e:
            value = str(e["value"])
        else:
            path = e["valueFrom"]["fieldRef"]["fieldPath"]
            label = _LABEL.fullmatch(path)
            value = labels[label.group(1)] if label else fields[path]
        out.append(f"--env={e['name']}={value}")
    return out


def _volume(v: dict[str, Any], config_maps: dict[str, dict[str, str]], root: Path) -> Path:
    path = root / v["name"]
    path.mkdir(parents=True)
    if "configMap" in v:
        for key, text in config_maps[v["configMap"]["name"]].items():
            (path / key).write_text(text)
            os.chmod(path / key, 0o644)  # the kubelet's defaultMode
        os.chmod(path, 0o755)
    elif "emptyDir" in v:
        os.chmod(path, 0o777)  # what the kubelet gives an emptyDir
    else:
        raise ValueError(f"volume {v['name']}: only configMap and emptyDir are translated")
    return path


def _probe(p: dict[str, Any]) -> Probe:
    if "httpGet" not in p:
        raise ValueError(f"probe {p}: only httpGet is translated")
    return Probe(
        p["httpGet"]["path"],
        int(p["httpGet"]["port"]),
        float(p.get("periodSeconds", 10)),
        int(p.get("failureThreshold", 3)),
    )
