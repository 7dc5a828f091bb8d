"""The compiled build of the per-request path runs only when it was built from exactly
the sources on disk; otherwise, or with ``MESH_PURE=1``, every module loads from its
source (``proxy.compiled``)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import proxy
import proxy.http.exchange
from proxy import compiled


def _tree(root: Path) -> None:
    """A package root holding every listed module (as text) and a compiled module for
    each (an empty file is enough for ``choose``), with a matching manifest."""
    for path in compiled.MODULES:
        source = root / path
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"# {path}\n")
        Path(str(source)[: -len(".py")] + EXTENSION_SUFFIXES[0]).write_bytes(b"")
    compiled.write_manifest(str(root / "proxy"), compiled.digest(str(root)))


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    _tree(tmp_path)
    return tmp_path


def test_a_current_build_is_chosen(tree: Path) -> None:
    assert compiled.choose(str(tree)) == (True, "mypyc")


def test_mesh_pure_chooses_the_source(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(compiled.PURE_ENV, "1")
    assert compiled.choose(str(tree)) == (False, "MESH_PURE is set")


def test_an_edited_source_makes_the_whole_build_stale(tree: Path) -> None:
    (tree / compiled.MODULES[-1]).write_text("# edited\n")
    chosen, why = compiled.choose(str(tree))
    assert not chosen and "sources changed" in why


def test_an_edited_module_that_is_not_compiled_makes_it_stale_too(tree: Path) -> None:
    # Compiled modules are built against what they import (constants may be inlined).
    (tree / "proxy" / "core").mkdir(parents=True, exist_ok=True)
    (tree / "proxy" / "core" / "names.py").write_text("REQUEST_ID = b'x-other'\n")
    chosen, why = compiled.choose(str(tree))
    assert not chosen and "sources changed" in why


def test_no_manifest_means_not_built(tree: Path) -> None:
    (tree / "proxy" / compiled.MANIFEST).unlink()
    chosen, why = compiled.choose(str(tree))
    assert not chosen and "not built" in why


def test_a_missing_compiled_module_is_named(tree: Path) -> None:
    path = compiled.MODULES[3]
    Path(str(tree / path)[: -len(".py")] + EXTENSION_SUFFIXES[0]).unlink()
    chosen, why = compiled.choose(str(tree))
    assert not chosen and path in why


def test_a_compiled_module_the_build_did_not_list_is_refused(tree: Path) -> None:
    # Left over from a build with a longer list: it would shadow its edited source.
    stray = tree / "proxy" / "http" / ("stray" + EXTENSION_SUFFIXES[0])
    stray.write_bytes(b"")
    chosen, why = compiled.choose(str(tree))
    assert not chosen and str(stray) in why


def test_a_manifest_of_another_module_list_is_refused(tree: Path) -> None:
    manifest = tree / "proxy" / compiled.MANIFEST
    manifest.write_text(manifest.read_text().replace(compiled.MODULES[0], "proxy/other.py"))
    chosen, why = compiled.choose(str(tree))
    assert not chosen and "another module list" in why


def test_use_source_loads_the_python_file_beside_an_extension(tmp_path: Path) -> None:
    package = tmp_path / "pkg" / "sub"
    package.mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("WHERE = 'source'\n")
    # Not a loadable extension: importing it fails, so only the source can succeed.
    (package / ("mod" + EXTENSION_SUFFIXES[0])).write_bytes(b"not an ELF file")
    program = (
        "import sys; from proxy import compiled\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "if sys.argv[1] == 'source':\n"
        f"    compiled.use_source({str(tmp_path / 'pkg')!r})\n"
        "try:\n"
        "    from pkg.sub import mod; print(mod.WHERE)\n"
        "except ImportError:\n"
        "    print('extension')\n"
    )
    root = Path(proxy.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    for mode, loaded in (("default", "extension"), ("source", "source")):
        out = subprocess.run(
            [sys.executable, "-c", program, mode], env=env, capture_output=True, text=True
        )
        assert out.stdout.strip() == loaded, out.stderr


def test_the_build_in_force_is_the_one_expected() -> None:
    """``scripts/test`` says which build it made (``MESH_EXPECT_BUILD``): a build that
    silently fell back to the source would otherwise pass every other test, slower."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(proxy.__file__)))
    chosen, _ = compiled.choose(root)
    assert proxy.COMPILED is chosen
    assert proxy.BUILD.startswith(os.environ.get("MESH_EXPECT_BUILD", ""))
    # What is loaded is what was chosen: the engine is an extension module, or source.
    assert proxy.http.exchange.__file__.endswith(".so") is chosen
