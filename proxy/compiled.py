"""Which build of the per-request path runs: mypyc-compiled, or the Python source itself.

The modules in ``MODULES`` (the engine, both codecs, routing, policy, telemetry: the
code every request runs through) are compiled with mypyc when the package is built
(``setup.py``; ``scripts/build`` builds them in place for a checkout). mypyc turns
their type-checked source into C extension modules, about 40 % fewer instructions per
request. The source stays the truth: the same ``.py`` files run as they are when no
build is there, when ``MESH_PURE=1`` is set, or when any source of the package changed
since it was compiled, so an edit is never shadowed by stale machine code.

The build writes ``compiled.json``: the digest of the package's sources it compiled.
``choose`` compares it with the sources on disk (a few milliseconds at start-up);
on any mismatch ``use_source`` makes the import system skip the extension modules
for the whole package, because compiled modules call each other directly and must
never be mixed with a changed one. This file must stay standard-library only:
``setup.py`` runs it before anything is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib.machinery import (
    BYTECODE_SUFFIXES,
    EXTENSION_SUFFIXES,
    SOURCE_SUFFIXES,
    FileFinder,
    SourceFileLoader,
    SourcelessFileLoader,
)

# Paths relative to the package's parent directory (the checkout's root). Left out on
# purpose: modules that run once per config or connection, not per request; classes
# that validate values of the wrong type themselves (mypyc refuses them with a bare
# TypeError first: policy/breaker.py, policy/overload.py); generic dataclasses, which
# this mypyc cannot build (they live in policy/values.py for that reason).
MODULES: tuple[str, ...] = (
    "proxy/http/codec/base.py",
    "proxy/http/codec/h11codec.py",
    "proxy/http/codec/h11fast.py",
    "proxy/http/codec/h11strict.py",
    "proxy/http/codec/h1body.py",
    "proxy/http/codec/h1grammar.py",
    "proxy/http/codec/h1state.py",
    "proxy/http/codec/h1write.py",
    "proxy/http/codec/llhttp.py",
    "proxy/http/codec/llhttp_head.py",
    "proxy/http/codec/llhttp_send.py",
    "proxy/http/downstream.py",
    "proxy/http/exchange.py",
    "proxy/http/headers.py",
    "proxy/http/model.py",
    "proxy/http/outbox.py",
    "proxy/http/passthrough.py",
    "proxy/http/pool.py",
    "proxy/http/requestid.py",
    "proxy/http/response.py",
    "proxy/http/server.py",
    "proxy/http/timer.py",
    "proxy/http/wire.py",
    "proxy/mesh/cluster.py",
    "proxy/mesh/dispatch.py",
    "proxy/mesh/forward.py",
    "proxy/mesh/observer.py",
    "proxy/mesh/params.py",
    "proxy/mesh/state.py",
    "proxy/mesh/steps/base.py",
    "proxy/mesh/steps/deadline.py",
    "proxy/mesh/steps/fault.py",
    "proxy/observe/accesslog.py",
    "proxy/observe/httplines.py",
    "proxy/observe/logline.py",
    "proxy/observe/metrics/http.py",
    "proxy/observe/observer.py",
    "proxy/observe/tracecontext.py",
    "proxy/policy/breaker_counts.py",
    "proxy/policy/budget.py",
    "proxy/policy/balancer.py",
    "proxy/policy/deadline.py",
    "proxy/policy/endpoints.py",
    "proxy/policy/ewma.py",
    "proxy/policy/outcome.py",
    "proxy/policy/outlier.py",
    "proxy/policy/retry.py",
    "proxy/policy/retrying.py",
    "proxy/policy/upstream.py",
    "proxy/routing/index.py",
    "proxy/routing/match.py",
    "proxy/routing/pick.py",
    "proxy/routing/request.py",
)
MANIFEST = "compiled.json"  # in the package directory, next to this file
PURE_ENV = "MESH_PURE"


def _files(package_dir: str) -> list[str]:
    """Every file of the package under ``package_dir`` (bytecode caches left out)."""
    found = []
    for directory, dirs, files in os.walk(package_dir):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found += [os.path.join(directory, name) for name in files]
    return found


def sources(root: str, files: list[str] | None = None) -> list[str]:
    """Every module of the package under ``root``, compiled or not: mypyc builds a
    module against the types and constants of those it imports, so a change to any of
    them can make the compiled code wrong. ``files``: ``_files`` of it, if at hand."""
    if files is None:
        files = _files(os.path.join(root, "proxy"))
    return sorted(os.path.relpath(path, root) for path in files if path.endswith(".py"))


def digest(root: str, files: list[str] | None = None) -> str:
    """One hash over the package's sources under ``root``, names and contents."""
    h = hashlib.sha256()
    for path in sources(root, files):
        h.update(path.encode() + b"\0")
        with open(os.path.join(root, path), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def write_manifest(package_dir: str, compiled_digest: str) -> None:
    """Record a finished build of the sources whose ``digest`` is ``compiled_digest``
    (``setup.py`` calls this once the extension modules are in place, never before)."""
    manifest = {"modules": list(MODULES), "sources": compiled_digest}
    with open(os.path.join(package_dir, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


def _extension(root: str, path: str) -> str:
    # The suffix of this interpreter's own extension modules (".cpython-311-x86_64-...").
    return os.path.join(root, path[: -len(".py")]) + EXTENSION_SUFFIXES[0]


def choose(root: str) -> tuple[bool, str]:
    """(run the compiled modules?, why) for the package under ``root``."""
    if os.environ.get(PURE_ENV):
        return False, f"{PURE_ENV} is set"
    try:
        with open(os.path.join(root, "proxy", MANIFEST)) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        return False, "not built (scripts/build compiles a checkout)"
    except (OSError, ValueError) as exc:
        return False, f"unreadable {MANIFEST}: {exc}"
    if manifest.get("modules") != list(MODULES):
        return False, "the build compiled another module list: rebuild (scripts/build)"
    missing = [p for p in MODULES if not os.path.exists(_extension(root, p))]
    if missing:
        return False, f"no compiled module for {missing[0]} (scripts/build)"
    listed = {_extension(root, p) for p in MODULES}
    files = _files(os.path.join(root, "proxy"))  # one walk for both checks below
    for path in files:
        if path.endswith(EXTENSION_SUFFIXES[0]) and path not in listed:
            return False, f"{path} is not in the build's list: rebuild (scripts/build)"
    try:
        if manifest.get("sources") != digest(root, files):
            return False, "sources changed since the build: rebuild (scripts/build)"
    except OSError as exc:
        return False, f"cannot read a source: {exc}"
    return True, "mypyc"


def use_source(package_dir: str) -> None:
    """Make every module of the package under ``package_dir`` load from its source
    (or bytecode), never from an extension module next to it."""
    loaders = [(SourceFileLoader, SOURCE_SUFFIXES), (SourcelessFileLoader, BYTECODE_SUFFIXES)]
    # The key is the path the import system asks about: the package's ``__path__``
    # entry and the subpackage paths joined onto it.
    for directory in {os.path.dirname(path) for path in _files(package_dir)}:
        sys.path_importer_cache[directory] = FileFinder(directory, *loaders)
