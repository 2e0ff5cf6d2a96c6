"""The Slicer batch script (CTTime/Scripts/CTTimeBatch.py) runs `cttime cohort`'s code and exits with its status.

Slicer itself cannot run here; the script runs in a plain Python process (slicer-core's ``slicer`` package has no
``slicer.app``, so the script leaves through sys.exit instead of slicer.util.exit).
"""

import subprocess
import sys

import pandas as pd
import pytest

from CTTimeLib.cli import commands
from CTTimeLib.run.summary import EXIT_OK, EXIT_USAGE
from conftest import SAMPLE_DATA

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
