"""The test layer that runs CTTime's module on Slicer's own Python code of each supported version.

``../shared/reference/slicer-python/<version>/slicer`` holds Slicer's Python layer (util, parameterNodeWrapper,
packaging, ScriptedLoadableModule, ...) at v5.8.1, v5.10.0 and v5.12.3. ``run(version, "module:function", ...)``
starts a fresh Python process, loads that version as ``slicer`` on top of the slicer-core wheels with PySide6's
widgets (offscreen) as PythonQt's (``application.py``; PythonQt's differences live in ``pythonqt.py`` alone), and
calls ``function(application)``: a scenario that drives CTTimeWidget as Slicer would (setup, enter, edits, exit,
reload). One process per scenario keeps the versions apart from each other and from other tests' ``slicer``.
``sandbox.py`` makes that Python one without some packages (a fresh Slicer has no pandas).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from . import sandbox

REFERENCE = sandbox.MODULE_DIR.parents[1] / "shared" / "reference" / "slicer-python"
VERSIONS = ("v5.8.1", "v5.10.0", "v5.12.3")


def version_dir(version):
    """The version's Slicer Python files; skip without ../shared, fail in CI (as the other shared-data tests do)."""
    folder = REFERENCE / version
    if not (folder / "slicer" / "util.py").is_file():
        message = f"needs Slicer's Python layer in {folder} (../shared beside the repository, as in CI)"
        (pytest.fail if os.environ.get("CI") else pytest.skip)(message)
    pytest.importorskip("PySide6", reason="the test layer needs PySide6 (pyproject's test extra)")
    pytest.importorskip("slicer_core", reason="the test layer needs slicer-core (Python >= 3.10)")
    return folder


def run(version, scenario, folder, hidden=()):
    """Run ``scenario`` ("module:function") in the layer of ``version``; the finished process (asserted to pass)."""
    folder = Path(folder)
    if hidden:
        python, env = sandbox.python_without(hidden, folder / "sandbox")
    else:
        python, env = [sys.executable], dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(sandbox.MODULE_DIR), str(sandbox.TESTS), os.environ.get("PYTHONPATH", "")]))
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(folder))  # QSettings and ~/CTTime stay in the test's folder
    done = subprocess.run([*python, "-m", "slicer_layer", str(version_dir(version)), scenario, str(folder)],
                          capture_output=True, text=True, env=env, cwd=folder, timeout=600)
    assert done.returncode == 0, f"{scenario} on Slicer {version}:\n{done.stdout}\n{done.stderr}"
    return done
