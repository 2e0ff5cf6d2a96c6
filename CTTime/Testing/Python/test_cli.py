"""The `cttime` command end to end on the sample data: score, cohort, rescore, reference build, demo."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import SAMPLE_CASES, SAMPLE_DATA
from CTTimeLib.core.resources import DEMO_REFERENCE
from CTTimeLib.scoring.signature import load_model

MODEL = load_model()


def cttime(*args, cwd=None):
    result = subprocess.run([sys.executable, "-m", "CTTimeLib.cli", *map(str, args)], capture_output=True, text=True,
                            cwd=cwd)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def read(path):
    return pd.read_csv(path, dtype={"patient_id": str, "timepoint": str, "lesion_id": str}, keep_default_na=False,
                       na_values=[""])


@pytest.fixture(scope="module")
def cohort_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    result = cttime("cohort", SAMPLE_DATA / "manifest.csv", "--reference", DEMO_REFERENCE, "--out", out)
    assert result.returncode == 0, result.stderr
    return out, result


def test_cohort_outputs(cohort_run):
    out, result = cohort_run
    lesions, patients = read(out / "lesions.csv"), read(out / "patients.csv")
    assert list(lesions["patient_id"]) == list(SAMPLE_CASES) and (lesions["lesion_id"] == "lesion_1").all()
    features = [c for c in lesions.columns if c.startswith("original_")]
    assert len(features) == 107
    assert list(lesions.columns[:4]) == ["patient_id", "timepoint", "lesion_id", "location"]
    tail = (["longest_axial_diameter_mm", "recist_measurable"] + [f"z_{n}" for n in MODEL.features]
            + ["ct_time_score", "ct_time_status", "standardization", "error"])
    assert [c for c in lesions.columns if c in tail] == tail
    assert list(lesions.columns).index(features[-1]) < list(lesions.columns).index(tail[0])
    assert lesions["error"].isna().all() and lesions["ct_time_score"].between(0, 1).all()
    assert (lesions["ct_time_status"] == np.where(lesions["ct_time_score"] > 0.5, "inflamed", "uninflamed")).all()
    assert (lesions["longest_axial_diameter_mm"] == lesions["original_shape_Maximum2DDiameterSlice"]).all()
    assert lesions["recist_measurable"].all()
    assert lesions["standardization"].str.contains("NOT CLINICALLY CALIBRATED: demo reference").all()
    assert patients["standardization"].str.contains("NOT CLINICALLY CALIBRATED").all()
    assert list(patients["ct_time_min"]) == pytest.approx(list(lesions["ct_time_score"]), abs=0)
    assert "NOT CLINICALLY CALIBRATED" in result.stderr
    for case in SAMPLE_CASES:
        assert (out / f"{case}_BS_cttime.seg.nrrd").is_file()
    record = json.loads((out / "run.json").read_text())
    assert record["parameter_file_is_fixed"] and record["model"] == "CT-TIME"
    assert any("demo reference" in w for w in record["warnings"])
    assert not list(out.glob("*.part"))


def test_score_one_study_matches_the_cohort_row(cohort_run, tmp_path):
    out, _ = cohort_run
    image, mask = SAMPLE_DATA / "STS_019" / "CT_image.nii.gz", SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz"
    result = cttime("score", "--image", image, "--segmentation", mask, "--patient", "STS_019", "--timepoint", "FU",
                    "--label-name", "1=LU_target", "--reference", DEMO_REFERENCE, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    single = read(tmp_path / "lesions.csv").iloc[0]
    assert (single["lesion_id"], single["location"], single["timepoint"]) == ("LU_target", "lung", "FU")
    cohort = read(out / "lesions.csv").set_index("patient_id").loc["STS_019"]
    assert single["ct_time_score"] == pytest.approx(cohort["ct_time_score"], abs=1e-12)
    assert (tmp_path / "STS_019_FU_cttime.seg.nrrd").is_file()


def test_cohort_standardisation_of_one_lesion_is_refused(tmp_path):
    image, mask = SAMPLE_DATA / "STS_019" / "CT_image.nii.gz", SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz"
    result = cttime("score", "--image", image, "--segmentation", mask, "--patient", "P", "--standardize", "cohort",
                    "--out", tmp_path)
    assert result.returncode == 2
    assert "needs at least 2" in result.stderr and "--reference" in result.stderr


def test_reference_build_then_rescore_equals_cohort_mode(cohort_run, tmp_path):
    out, _ = cohort_run
    reference = tmp_path / "ref.json"
    result = cttime("reference", "build", out / "lesions.csv", "-o", reference, "--source", "three sample cases")
    assert result.returncode == 0 and "only 3 lesions" in result.stderr
    payload = json.loads(reference.read_text())
    assert payload["n_lesions"] == 3 and len(payload["features"]) == 107 and payload["model"] == "CT-TIME"
    by_reference, by_cohort = tmp_path / "by_reference", tmp_path / "by_cohort"
    assert cttime("rescore", out / "lesions.csv", "--reference", reference, "--out", by_reference).returncode == 0
    assert cttime("rescore", out / "lesions.csv", "--standardize", "cohort", "--out", by_cohort).returncode == 0
    a, b = read(by_reference / "lesions.csv"), read(by_cohort / "lesions.csv")
    np.testing.assert_allclose(a["ct_time_score"], b["ct_time_score"], rtol=0, atol=1e-12)
    lesions = read(out / "lesions.csv")
    for name in MODEL.features:
        values = lesions[name]
        np.testing.assert_allclose(b[f"z_{name}"], (values - values.mean()) / values.std(ddof=1), atol=1e-12)
        assert (b[name] == lesions[name]).all()  # rescoring never touches the features


def test_rescore_needs_only_keys_and_the_four_features(cohort_run, tmp_path):
    out, _ = cohort_run
    lesions = read(out / "lesions.csv")
    minimal = lesions[["patient_id", "timepoint", "lesion_id"] + MODEL.features]
    minimal.to_csv(tmp_path / "minimal.csv", index=False)
    result = cttime("rescore", tmp_path / "minimal.csv", "--reference", DEMO_REFERENCE, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    rescored = read(tmp_path / "out" / "lesions.csv")
    np.testing.assert_allclose(rescored["ct_time_score"], lesions["ct_time_score"], atol=1e-12)


def test_demo_prints_where_the_results_are(tmp_path):
    result = cttime("demo", "--out", tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "demo") in result.stdout and (tmp_path / "demo" / "patients.csv").is_file()


@pytest.mark.parametrize("command, words", [
    ([], ["inflamed", "--standardize cohort", "not\nclinically calibrated"]),
    (["score"], ["--image", "--segmentation", "--patient", "--timepoint", "--reference", "--standardize"]),
    (["cohort"], ["patient_id", "timepoint, image, segmentation"]),
    (["rescore"], ["Re-score a lesions table", "four features"]),
    (["reference", "build"], ["--demo", "-o"]),
])
def test_help_texts(command, words):
    result = cttime(*command, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for word in words:
        assert " ".join(word.split()) in text


def test_bad_command_lines_exit_2(tmp_path):
    assert cttime("score", "--image", "x").returncode == 2
    result = cttime("score", "--image", tmp_path / "missing.nrrd", "--segmentation", tmp_path / "m.nrrd",
                    "--patient", "P", "--reference", DEMO_REFERENCE, "--out", tmp_path)
    assert result.returncode == 2 and "missing.nrrd" in result.stderr
