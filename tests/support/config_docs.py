"""Shared bits of the reload tests: documents, a ConfigMap volume, metric readers."""

from __future__ import annotations

import json
import os
from pathlib import Path

from prometheus_client import CollectorRegistry


def tcp_doc(*endpoints: str, port: int = 7000, address: str = "10.96.0.5") -> str:
    """A valid config: one tcp service at ``address:port`` with ``endpoints`` (host:port)."""
    eps = [{"address": e.split(":")[0], "port": int(e.split(":")[1])} for e in endpoints]
    doc = {
        "services": [
            {
                "name": "echo",
                "port": port,
                "addresses": [address],
                "protocol": "tcp",
                "endpoints": eps,
            }
        ]
    }
    return json.dumps(doc)


BAD_DOC = "services:\n  - name: echo\n    port: 99999\n    endpoints: []\n"


def reloads(registry: CollectorRegistry, result: str) -> float:
    value = registry.get_sample_value("mesh_config_reloads_total", {"result": result})
    return -1.0 if value is None else value


def versions(registry: CollectorRegistry) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in registry.collect():
        if family.name == "mesh_config_version":
            out.update({s.labels["version"]: s.value for s in family.samples})
    return out


class ConfigMapDir:
    """A ConfigMap volume with one key, ``mesh.yaml``, updated the way the kubelet does."""

    def __init__(self, root: Path, text: str) -> None:
        self.root = root
        self.generation = 0
        self._write(text)
        (root / "..data_tmp").rename(root / "..data")
        os.symlink("..data/mesh.yaml", root / "mesh.yaml")

    @property
    def path(self) -> str:
        return str(self.root / "mesh.yaml")

    def _write(self, text: str) -> str:
        self.generation += 1
        name = f"..2026_11_29_18_00_0{self.generation}.{1000 + self.generation}"
        (self.root / name).mkdir()
        (self.root / name / "mesh.yaml").write_text(text)
        os.symlink(name, self.root / "..data_tmp")
        return name

    def update(self, text: str) -> None:
        old = os.readlink(self.root / "..data")
        self._write(text)
        os.rename(self.root / "..data_tmp", self.root / "..data")  # the atomic swap
        for f in (self.root / old).iterdir():
            f.unlink()
        (self.root / old).rmdir()


def mesh_doc(services: int, generation: int = 0) -> str:
    """A realistic mesh of ``services`` HTTP services as JSON (about 1.2 KB each, as a
    generator indents it): VIP, hosts, two versioned endpoints, subsets, a header
    route, a weighted canary. Another ``generation`` moves the canary's weights by one,
    as a rollout's next push would: a new config of the same shape."""
    out = []
    for i in range(services):
        name = f"svc-{i:05d}"
        eps = [
            {
                "address": f"10.244.{i // 125}.{2 * (i % 125) + n + 1}",
                "port": 9080,
                "labels": {"version": f"v{n + 1}", "app": name},
            }
            for n in range(2)
        ]
        out.append(
            {
                "name": name,
                "port": 9080,
                "addresses": [f"10.96.{i // 250}.{i % 250 + 1}"],
                "hosts": [name, f"{name}.default.svc.cluster.local"],
                "protocol": "http",
                "endpoints": eps,
                "subsets": {"v1": {"version": "v1"}, "v2": {"version": "v2"}},
                "routes": [
                    {
                        "match": {"headers": {"x-env": {"exact": "staging"}}},
                        "destinations": [{"subset": "v2"}],
                    },
                    {
                        "match": {"path": {"prefix": "/api/"}},
                        "destinations": [
                            {"subset": "v1", "weight": 90 - generation % 90},
                            {"subset": "v2", "weight": 10 + generation % 90},
                        ],
                        "policy": {"timeout": "2s", "retries": {"attempts": 3}},
                    },
                    {"destinations": [{"subset": "v1"}]},
                ],
            }
        )
    return json.dumps({"services": out}, indent=1)
