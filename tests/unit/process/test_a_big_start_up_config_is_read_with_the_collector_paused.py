"""The start-up config is read with the cyclic collector paused and then frozen, so a
big mesh neither waits on collections while it loads nor is traversed afterwards.

Run in a fresh interpreter: ``gc.freeze`` is process-wide, and this one must keep
collecting.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.config_docs import mesh_doc
from tests.support.netns import REPO, python_env

SCRIPT = textwrap.dedent(
    """
    import gc, json, sys
    from proxy.process import launch

    seen = []
    real = launch.load_initial

    def spy(path):
        seen.append(gc.isenabled())
        return real(path)

    launch.load_initial = spy
    initial = launch.load_and_freeze(sys.argv[1])
    print(json.dumps({
        "services": len(initial.loaded.config.services),
        "enabled_while_loading": seen,
        "enabled_after": gc.isenabled(),
        "tracked": len(gc.get_objects()),
        "frozen": gc.get_freeze_count(),
    }))
    """
)


def test_the_start_up_config_is_read_paused_then_frozen(tmp_path: Path) -> None:
    config = tmp_path / "mesh.json"
    config.write_text(mesh_doc(500))
    got = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(config)],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=python_env(),
    )  # fmt: skip
    assert got.returncode == 0, got.stderr[-2000:]
    result = json.loads(got.stdout)
    assert result["services"] == 500
    assert result["enabled_while_loading"] == [False] and result["enabled_after"]
    assert result["frozen"] > 40_000  # the imports and the 500 services
    assert result["tracked"] < result["frozen"] / 10, result
