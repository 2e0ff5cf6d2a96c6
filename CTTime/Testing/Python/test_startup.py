"""The `cttime` command starts without the libraries only some commands need (docs/performance.md, "Start-up")."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, SAMPLE_DATA

from CTTimeLib import __version__
from CTTimeLib.core.imports import Deferred
from CTTimeLib.core.resources import DEMO_REFERENCE

ENV = dict(os.environ, PYTHONPATH=str(REPO / "CTTime"))
NOT_AT_START = {"pandas", "matplotlib", "dask", "distributed", "highdicom", "sklearn", "lifelines", "neuroCombat",
                "scipy", "radiomics", "yaml", "pydicom"}
NOT_FOR_SCORING = {"matplotlib", "dask", "distributed", "highdicom", "sklearn", "lifelines", "neuroCombat"}
LOADED = "import json, sys; print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"


def _modules(code):
    done = subprocess.run([sys.executable, "-c", code + "\n" + LOADED], capture_output=True, text=True, env=ENV,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1])), done.stdout


def test_importing_the_command_imports_none_of_the_large_optional_libraries():
    loaded, _ = _modules("import CTTimeLib.cli")
    assert not loaded & NOT_AT_START, sorted(loaded & NOT_AT_START)


def test_the_installed_command_answers_its_version_without_numpy_or_simpleitk():
    """`cttime --version` (the installed command, entry.console) imports nothing of the pipeline."""
    loaded, output = _modules("import sys\nsys.argv = ['cttime', '--version']\n"
                              "from CTTimeLib.cli import console\nconsole()")
    assert f"cttime {__version__}" in output
    heavy = loaded & (NOT_AT_START | {"numpy", "SimpleITK"})
    assert not heavy, sorted(heavy)


def test_version_answers_without_them():
    loaded, output = _modules("from CTTimeLib.cli.commands import main\n"
                              "try:\n    main(['--version'])\nexcept SystemExit:\n    pass")
    assert f"cttime {__version__}" in output
    assert not loaded & NOT_AT_START, sorted(loaded & NOT_AT_START)


def test_scoring_imports_neither_figures_nor_dask_nor_dicom_nor_analytics(tmp_path):
    folder = SAMPLE_DATA / "STS_019"
    loaded, _ = _modules(
        "from CTTimeLib.cli.commands import main\n"
        f"code = main(['score', '--image', {str(folder / 'CT_image.nii.gz')!r}, '--segmentation', "
        f"{str(folder / 'CT_mask.nii.gz')!r}, '--patient', 'P', '--reference', {str(DEMO_REFERENCE)!r}, "
        f"'--features', 'signature', '--out', {str(tmp_path / 'out')!r}])\n"
        "assert code == 0, code")
    assert (tmp_path / "out" / "lesions.csv").is_file()
    assert "pandas" in loaded  # the tables need it: deferred, not avoided
    assert not loaded & NOT_FOR_SCORING, sorted(loaded & NOT_FOR_SCORING)


def test_a_deferred_module_is_imported_when_first_used():
    deferred = Deferred("json")
    assert deferred.dumps([1]) == "[1]" and deferred.loads is json.loads


def test_preloading_a_missing_module_is_silent_and_its_use_still_fails(capfd):
    from CTTimeLib.core.imports import preload

    preload("cttime_no_such_module").join()
    assert capfd.readouterr().err == ""
    with pytest.raises(ImportError, match="cttime_no_such_module"):
        Deferred("cttime_no_such_module").anything
