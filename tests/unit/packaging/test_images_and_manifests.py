"""The images and manifests users deploy: Dockerfiles pass hadolint, manifests pass the
Kubernetes schema (strict: unknown fields are errors). There is no Docker engine or
cluster here, so this is as far as they can be proven on this machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.manifest_tools import K8S_VERSION, tool

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("dockerfile", sorted((REPO / "docker").glob("*.Dockerfile")), ids=str)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    r = subprocess.run([tool("hadolint"), str(dockerfile)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_there_is_an_image_for_each_half() -> None:
    names = {p.name for p in (REPO / "docker").glob("*.Dockerfile")}
    assert names == {"init.Dockerfile", "proxy.Dockerfile"}


@pytest.mark.parametrize("manifest", sorted((REPO / "docker" / "k8s").glob("*.yaml")), ids=str)
def test_manifest_is_valid_kubernetes(manifest: Path) -> None:
    r = subprocess.run(
        [tool("kubernetes-validate"), "-k", K8S_VERSION, "--strict", str(manifest)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passed" in r.stdout + r.stderr


def test_validator_rejects_a_broken_manifest(tmp_path: Path) -> None:
    """The check above can fail: a misspelled field is caught."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"
        "spec:\n  containers:\n    - name: a\n      image: b\n      imagePullPolcy: Always\n"
    )
    r = subprocess.run(
        [tool("kubernetes-validate"), "-k", K8S_VERSION, "--strict", str(bad)],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0
    assert "imagePullPolcy" in r.stdout + r.stderr


def test_the_distribution_ships_the_proxy_modules_the_interceptor_imports() -> None:
    """The init image installs this one distribution; its probe imports proxy.l4.origdst."""
    import configparser

    from setuptools import find_packages

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    include = cfg["options.packages.find"]["include"].split()
    shipped = set(find_packages(str(REPO), include=include))
    assert {"interceptor", "proxy", "proxy.core", "proxy.l4"} <= shipped
    probe = (REPO / "interceptor" / "probe.py").read_text()
    imported = {line.split()[1] for line in probe.splitlines() if line.startswith("from proxy")}
    assert "proxy.l4.origdst" in imported
    assert {name.rsplit(".", 1)[0] for name in imported} <= shipped


@pytest.mark.parametrize("dockerfile", sorted((REPO / "docker").glob("*.Dockerfile")), ids=str)
def test_dockerfile_takes_a_base_and_installs_only_from_the_contexts_wheels(
    dockerfile: Path,
) -> None:
    """scripts/images builds offline: BASE swaps the public image for a local one, and
    pip reads the wheels it put in the context, never an index."""
    text = dockerfile.read_text()
    assert "ARG BASE=python:3.11-slim-bookworm\nFROM ${BASE}\n" in text
    pips = [line for line in text.splitlines() if "pip install" in line]
    assert pips and all("--no-index" in line for line in pips)
    assert "COPY interceptor" not in text and "COPY proxy" not in text  # they come as a wheel
