"""A Python without some packages, as on a fresh Slicer: this interpreter with ``-S`` and a site-packages of links
to every entry of the real one except the hidden distributions' files.

``python_without(distributions, folder)`` gives the command and environment; inside that Python,
``install_hidden()`` links the hidden entries back in, which is what a successful ``pip install`` of them does.
"""

import importlib
import importlib.metadata
import json
import os
import site
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
MODULE_DIR = TESTS.parents[1]
HIDDEN_FILE = "hidden.json"


def _top_level_entries(distribution):
    files = importlib.metadata.distribution(distribution).files or []
    return {Path(str(f)).parts[0] for f in files if not str(f).startswith("..")}


def python_without(distributions, folder):
    """(argv prefix, environment) of a Python where ``distributions`` (pip names) cannot be imported."""
    folder = Path(folder)
    packages = folder / "site-packages"
    packages.mkdir(parents=True)
    hidden = set().union(*(_top_level_entries(name) for name in distributions))
    moved = {}
    for source in site.getsitepackages():
        for entry in Path(source).iterdir():
            if entry.name.endswith(".pth") or entry.name == "__pycache__" or (packages / entry.name).exists():
                continue
            if entry.name in hidden:
                moved[entry.name] = str(entry)
            elif not entry.name.startswith("__editable__"):
                (packages / entry.name).symlink_to(entry)
    (folder / HIDDEN_FILE).write_text(json.dumps({"site": str(packages), "hidden": moved}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(packages), str(MODULE_DIR), str(TESTS)]),
               CTTIME_SANDBOX=str(folder))
    return [sys.executable, "-S"], env


def install_hidden():
    """Link the hidden packages back into the sandbox's site-packages (a pip install that succeeded)."""
    record = json.loads((Path(os.environ["CTTIME_SANDBOX"]) / HIDDEN_FILE).read_text())
    for name, source in record["hidden"].items():
        target = Path(record["site"]) / name
        if not target.exists():
            target.symlink_to(source)
    importlib.invalidate_caches()
