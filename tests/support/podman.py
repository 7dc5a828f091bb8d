"""podman for the image test: the images scripts/images builds, the test's app image,
and containers that are removed even when the test fails.

Images are tagged with a hash of their inputs (scripts/images does this for the two
project images, ``app_image`` for the app), so a run with nothing changed builds
nothing. ``Podman.choose`` runs a container plainly first and falls back to the rlimit
-dropping runtime wrapper only when that run fails the way sandboxes that forbid
``setrlimit`` make it fail.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import nsock

REPO = Path(__file__).resolve().parents[2]
APP_DIR = Path(__file__).resolve().parent / "podapp"
NORLIMITS = REPO / "scripts" / "lib" / "oci-runtime-norlimits"
APP_REPO = "localhost/meshproxy-test/app"


def need(tool: str) -> str:
    """A missing tool fails the test: scripts/test installs it (a skip would hide it)."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (scripts/test installs it)")
    return path


def project_images() -> dict[str, str]:
    """``init``, ``proxy`` and ``base`` (the proxy's base) from ``scripts/images --names``."""
    r = subprocess.run(
        [str(REPO / "scripts" / "images"), "--names"], capture_output=True, text=True, timeout=1800
    )
    assert r.returncode == 0, f"scripts/images failed:\n{r.stderr[-4000:]}"
    return dict(line.split("=", 1) for line in r.stdout.split())


@dataclass
class Podman:
    global_args: tuple[str, ...] = ()
    started: list[str] = field(default_factory=list)  # container names to remove

    @classmethod
    def choose(cls, image: str) -> Podman:
        """Plain podman, or podman through the runtime wrapper where rlimits are forbidden."""
        plain = cls()
        r = plain.run("run", "--rm", "--network=none", "--entrypoint=true", image, check=False)
        if r.returncode == 0:
            return plain
        if "rlimit" in r.stderr and "not permitted" in r.stderr.lower():
            wrapped = cls(("--runtime", str(NORLIMITS), "--cgroup-manager=cgroupfs"))
            wrapped.run("run", "--rm", "--network=none", "--entrypoint=true", image)
            return wrapped
        raise AssertionError(f"podman cannot run {image}: {r.stderr}")

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            ["podman", *self.global_args, *args], capture_output=True, text=True, timeout=timeout
        )
        if check and r.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {r.returncode}:\n{r.stderr}")
        return r

    def start(self, name: str, *args: str) -> None:
        """``podman run -d --name name args``; removed by ``cleanup``."""
        self.started.append(name)
        self.run("run", "-d", "--name", name, "--http-proxy=false", *args)

    def logs(self, name: str) -> tuple[str, str]:
        r = self.run("logs", name, check=False)
        return r.stdout, r.stderr

    def cleanup(self) -> None:
        for name in reversed(self.started):
            self.run("rm", "-f", "-t", "0", name, check=False)
        self.started.clear()

    @contextlib.contextmanager
    def session(self) -> Iterator[Podman]:
        try:
            yield self
        finally:
            self.cleanup()


def image_id(podman: Podman, image: str) -> str:
    return podman.run("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()


def app_image(podman: Podman, base: str) -> str:
    """The test's app (tests/support/podapp) on ``base``, built once per input hash."""
    h = hashlib.sha256(image_id(podman, base).encode())
    for f in sorted(APP_DIR.iterdir()):
        if f.is_file() and f.suffix in (".py", ".Dockerfile"):
            h.update(f.name.encode() + f.read_bytes())
    tag = f"{APP_REPO}:{h.hexdigest()[:12]}"
    if podman.run("image", "exists", tag, check=False).returncode != 0:
        podman.run(
            "build", "--network=none", "--pull=never", f"--build-arg=BASE={base}",
            "-f", str(APP_DIR / "app.Dockerfile"), "-t", tag, str(APP_DIR),
            timeout=600,
        )  # fmt: skip
        # Only the newest app image is kept: an older one was for other inputs.
        names = podman.run("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        for old in names:
            if old.startswith(APP_REPO + ":") and old != tag:
                podman.run("rmi", old, check=False)
    return tag


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def request(ns: str, host: str, port: int, path: str, *headers: tuple[str, str]) -> Reply:
    """One HTTP/1.1 GET from namespace ``ns`` with ``Connection: close``, read to EOF."""
    s = nsock.connect(ns, host, port, timeout=30)
    try:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode()
        )
        raw = nsock.recv_all(s)
    finally:
        s.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(":", 1) for line in lines[1:])
    return Reply(int(lines[0].split()[1]), {k.lower(): v.strip() for k, v in fields.items()}, body)
