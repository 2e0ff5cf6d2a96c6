"""The Slicer batch script (CTTime/Scripts/CTTimeBatch.py) runs `cttime cohort`'s code and exits with its status.

Slicer itself cannot run here; the script runs in a plain Python process (slicer-core's ``slicer`` package has no
``slicer.app``, so the script leaves through sys.exit instead of slicer.util.exit). The last tests run it as
Slicer would, with a ``slicer`` whose ``util.exit`` and ``util.pip_install`` record their calls, on a Python
without pandas, PyYAML, pynrrd and slicerio (a fresh Slicer's): with --no-main-window, Slicer exits only when the
script calls slicer.util.exit.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import CTTimeMRML
from CTTimeLib.cli import commands
from CTTimeLib.run.summary import EXIT_OK, EXIT_USAGE
from conftest import SAMPLE_DATA
from slicer_layer import sandbox

SCRIPT = SAMPLE_DATA.parents[1] / "Scripts" / "CTTimeBatch.py"


@pytest.fixture
def manifest(tmp_path):
    rows = ["patient_id,timepoint,image,segmentation"] + [
        f"{case},BS,{SAMPLE_DATA / case / 'CT_image.nii.gz'},{SAMPLE_DATA / case / 'CT_mask.nii.gz'}"
        for case in ("STS_019", "STS_025")]
    path = tmp_path / "manifest.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _batch(*args, cwd):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.mark.parametrize("features", ["all", "signature"])
def test_batch_cohort_equals_cttime_cohort(features, manifest, tmp_path):
    done = _batch("--manifest", manifest, "--out", tmp_path / "batch", "--standardize", "cohort", "--features",
                  features, cwd=tmp_path)
    assert done.returncode == EXIT_OK, done.stderr
    assert "Scored 2 lesion(s), 0 failed." in done.stdout
    assert commands.main(["cohort", str(manifest), "--standardize", "cohort", "--features", features, "--out",
                          str(tmp_path / "cli")]) == 0
    for name in ("lesions.csv", "patients.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "batch" / name), pd.read_csv(tmp_path / "cli" / name),
                                      check_exact=False, rtol=1e-12)
    assert (tmp_path / "batch" / "STS_019_BS_cttime.seg.nrrd").exists()


def test_batch_bad_manifest_exits_2_with_the_reason(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,image\nP1,missing.nrrd\n")
    done = _batch("--manifest", bad, "--out", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == EXIT_USAGE
    assert "lacks the column(s) timepoint, segmentation" in done.stderr
    assert not (tmp_path / "out" / "lesions.csv").exists()


def test_batch_usage_errors_exit_2(tmp_path):
    done = _batch("--out", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == EXIT_USAGE and "--manifest" in done.stderr
    assert _batch("--help", cwd=tmp_path).returncode == EXIT_OK


def test_batch_perturbations_match_cttime_cohort(manifest, tmp_path):
    done = _batch("--manifest", manifest, "--out", tmp_path / "batch", "--perturbations", 2, cwd=tmp_path)
    assert done.returncode == EXIT_OK, done.stderr
    assert commands.main(["cohort", str(manifest), "--standardize", "cohort", "--perturbations", "2", "--out",
                          str(tmp_path / "cli")]) == 0
    for name in ("lesions.csv", "perturbations.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "batch" / name), pd.read_csv(tmp_path / "cli" / name),
                                      check_exact=False, rtol=1e-12)
    assert (pd.read_csv(tmp_path / "batch" / "lesions.csv")["ct_time_perturbations"] == 2).all()
    bad = _batch("--manifest", manifest, "--out", tmp_path / "bad", "--perturbations", -1, cwd=tmp_path)
    assert bad.returncode == EXIT_USAGE and "--perturbations" in bad.stderr


# ``python -c IN_SLICER RECORD SCRIPT MODE ARGS...``: the script run as Slicer's --python-script runs it, with a
# stand-in for ``slicer.app``, ``slicer.util.exit`` (Slicer exits after the script, not at the call) and
# ``slicer.util.pip_install`` (MODE pip-works: the packages appear, as after a real install; otherwise pip fails).
IN_SLICER = """
import json, runpy, sys, types
record, script, mode = sys.argv[1:4]
calls = {"exit": [], "pip": []}

def note(kind, value):
    calls[kind].append(value)
    open(record, "w").write(json.dumps(calls))

def pip_install(requirements):
    note("pip", requirements)
    if mode != "pip-works":
        raise RuntimeError("pip: no network")
    from slicer_layer.sandbox import install_hidden
    install_hidden()

sys.modules["slicer"] = types.SimpleNamespace(app=object(), util=types.SimpleNamespace(
    exit=lambda status=0: note("exit", status), pip_install=pip_install))
if mode == "crash":
    from CTTimeLib.run import pipeline
    pipeline.run = lambda *args, **kwargs: 1 / 0
sys.argv = [script, *sys.argv[4:]]
runpy.run_path(script, run_name="__main__")
"""
FRESH_SLICER_LACKS = ("pandas", "PyYAML", "pynrrd", "slicerio")


def _in_slicer(tmp_path, mode, *args, hidden=FRESH_SLICER_LACKS):
    """(process, {"exit": [statuses], "pip": [requirements]}) of the batch script run as Slicer runs it."""
    if hidden:
        python, env = sandbox.python_without(hidden, tmp_path / "python")
    else:
        python, env = [sys.executable], dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(SCRIPT.parents[1]), str(Path(__file__).parent)]))
    record = tmp_path / "calls.json"
    done = subprocess.run([*python, "-c", IN_SLICER, str(record), str(SCRIPT), mode, *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr  # Slicer itself ends normally; the status is the one it was given
    return done, json.loads(record.read_text()) if record.exists() else {"exit": [], "pip": []}


def test_batch_on_a_fresh_slicer_says_what_to_install_and_exits(manifest, tmp_path):
    done, calls = _in_slicer(tmp_path, "pip-fails", "--manifest", manifest, "--out", tmp_path / "out")
    assert calls == {"exit": [EXIT_USAGE], "pip": []}, done.stderr
    assert "Traceback" not in done.stderr
    for name in FRESH_SLICER_LACKS + ("--install-requirements", "PythonSlicer -m pip install"):
        assert name in done.stderr, name


def test_batch_installs_the_requirements_then_scores(manifest, tmp_path):
    import importlib.metadata

    done, calls = _in_slicer(tmp_path, "pip-works", "--manifest", manifest, "--out", tmp_path / "out",
                             "--features", "signature", "--install-requirements")
    assert calls["exit"] == [EXIT_OK], done.stderr
    [installed] = calls["pip"]
    assert installed == CTTimeMRML.requirements() + [f"pydicom=={importlib.metadata.version('pydicom')}"]
    assert "Scored 2 lesion(s), 0 failed." in done.stdout
    assert len(pd.read_csv(tmp_path / "out" / "lesions.csv")) == 2


def test_batch_whose_install_fails_exits_with_what_to_install(manifest, tmp_path):
    done, calls = _in_slicer(tmp_path, "pip-fails", "--manifest", manifest, "--out", tmp_path / "out",
                             "--install-requirements")
    assert calls["exit"] == [EXIT_USAGE] and len(calls["pip"]) == 1, done.stderr
    assert "installing pandas" in done.stderr and "pip: no network" in done.stderr


def test_batch_exits_after_an_unexpected_error(manifest, tmp_path):
    done, calls = _in_slicer(tmp_path, "crash", "--manifest", manifest, "--out", tmp_path / "out", hidden=())
    assert calls == {"exit": [1], "pip": []}, done.stderr
    assert "ZeroDivisionError" in done.stderr and "unexpected failure" in done.stderr
