"""The `cttime` command end to end on the sample data: score, cohort, rescore, reference build, demo."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from conftest import SAMPLE_CASES, SAMPLE_DATA
from CTTimeLib.core.resources import DEMO_REFERENCE, PARAMETER_FILE
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
    # what a reader needs first: identity, score, status, robustness, warnings; the 107 features last
    head = (["patient_id", "timepoint", "lesion_id", "location", "ct_time_score", "ct_time_status",
             "ct_time_score_low", "ct_time_score_high", "ct_time_perturbations", "ct_time_status_robust", "ct_time_score_ref_low",
             "ct_time_score_ref_high", "ct_time_status_reference_robust", "outside_reference", "warning",
             "error", "error_kind", "standardization", "delineation", "delineation_warning", "soft_tissue_share",
             "longest_axial_diameter_mm", "recist_measurable"] + [f"z_{n}" for n in MODEL.features])
    assert list(lesions.columns[:len(head)]) == head
    assert (lesions["delineation"] == "manual").all() and (lesions["delineation_warning"].fillna("") == "").all()
    assert list(lesions.columns[-107:]) == features
    assert lesions["warning"].str.contains("NOT CLINICALLY CALIBRATED: demo reference").all()
    assert lesions["soft_tissue_share"].between(0.9, 1.0).all()
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


def test_a_wrong_image_path_is_refused_before_any_progress_folder_or_lock(tmp_path):
    """Issue 24: it printed "[1/1] ... 1 failed" before the error, left .cttime.lock behind and hinted at a manifest
    that `score` does not have."""
    mask = SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz"
    (tmp_path / "existing").mkdir()
    for out in (tmp_path / "new", tmp_path / "existing"):
        result = cttime("score", "--image", tmp_path / "missing.nii.gz", "--segmentation", mask, "--patient", "P",
                        "--reference", "demo", "--out", out)
        assert result.returncode == 2
        assert f"Image not found: {tmp_path / 'missing.nii.gz'}. Check the path." in result.stderr
        assert "manifest" not in result.stderr and "[1/1]" not in result.stdout + result.stderr
    assert not (tmp_path / "new").exists() and not list((tmp_path / "existing").iterdir())


def test_a_misspelt_option_is_named_with_the_one_meant(tmp_path):
    result = cttime("score", "--image", SAMPLE_DATA / "STS_019" / "CT_image.nii.gz", "--segmentation",
                    SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz", "--patient", "P", "--refrence", "demo", "--out",
                    tmp_path / "out")
    assert result.returncode == 2
    assert "cttime score: error: unrecognized option --refrence: did you mean --reference?" in result.stderr
    assert "is required" not in result.stderr and not (tmp_path / "out").exists()
    result = cttime("board", tmp_path, "--pfd")
    assert result.returncode == 2 and "unrecognized option --pfd: did you mean --pdf?" in result.stderr


def test_score_takes_no_cache_as_cohort_does(tmp_path):
    score = ["score", "--image", SAMPLE_DATA / "STS_019" / "CT_image.nii.gz", "--segmentation",
             SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz", "--patient", "P", "--reference", "demo", "--features",
             "signature", "--perturbations", "0"]
    assert cttime(*score, "--out", tmp_path / "cached").returncode == 0
    assert list((tmp_path / "cached" / "cache").glob("*.json"))
    result = cttime(*score, "--out", tmp_path / "uncached", "--no-cache")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "uncached" / "lesions.csv").exists() and not (tmp_path / "uncached" / "cache").exists()


def test_the_training_domain_check_uses_what_a_nifti_says_and_names_what_it_cannot_check(cohort_run):
    """The sample NIfTIs have no DICOM header but 3.27 mm slices: their slice spacing stands in for the thickness
    (flagged, as their DICOM series is flagged for its 3.27 mm slice thickness), kVp, kernel and contrast are
    listed as not checked."""
    out, result = cohort_run
    summary = json.loads((out / "run.json").read_text())["summary"]
    spacing = "slice spacing 3.27 mm (stand-in for thickness; training: about 1.25-3 mm)"
    assert summary["studies_outside_training_domain"] == [f"{case} BS: {spacing}" for case in SAMPLE_CASES]
    assert summary["studies_not_checked_for_training_domain"] == [
        f"{case} BS: not checked: kVp, kernel and contrast (no DICOM header)" for case in SAMPLE_CASES]
    lesions = read(out / "lesions.csv")
    assert lesions["slice_spacing_mm"].tolist() == pytest.approx([3.27] * 3, abs=1e-6)
    assert "slice_thickness_mm" not in lesions and "kvp" not in lesions  # what the file does not say
    assert (lesions["acquisition_warning"] == spacing).all()
    assert lesions["warning"].str.contains(f"outside CT-TIME's training domain (scores less certain): {spacing}",
                                           regex=False).all()
    assert "training domain not fully checked for 3 study(ies) without DICOM headers (NIfTI, NRRD...): their kVp, " \
           "kernel and contrast are unknown" in result.stdout
    assert f"3 study(ies) outside CT-TIME's training domain (scores less certain):\n  STS_008 BS: {spacing}" in \
        result.stdout


def test_reference_build_leaves_out_unusable_features_the_model_does_not_use(cohort_run, tmp_path):
    """A real lesions table whose unused Minimum is constant and whose unused Idmn is infinite in one lesion: the
    reference keeps all 3 lesions and the model's features, leaves those two out and says so."""
    out, _ = cohort_run
    lesions = read(out / "lesions.csv")
    lesions["original_firstorder_Minimum"] = -100.0
    lesions.loc[1, "original_glcm_Idmn"] = np.inf
    lesions.to_csv(tmp_path / "table.csv", index=False)
    result = cttime("reference", "build", tmp_path / "table.csv", "-o", tmp_path / "ref.json")
    assert result.returncode == 0, result.stderr
    assert ("Note: 2 feature(s) the model does not use left out: original_firstorder_Minimum (SD 0 over 3 lesions); "
            "original_glcm_Idmn (not finite in 1 of 3 lesions)") in result.stdout
    payload = json.loads((tmp_path / "ref.json").read_text())
    assert payload["n_lesions"] == 3 and len(payload["features"]) == 105
    assert "original_glcm_Idmn" not in payload["features"] and set(MODEL.features) <= set(payload["features"])


def _sform_scaled_nifti(source, path):
    """A real sample NIfTI whose pixdim[1] disagrees in sign with its sform (as some converters write it): ITK reads
    it, and prints its C++ warnings on file descriptor 2."""
    import struct

    sitk.WriteImage(sitk.ReadImage(str(source)), str(path))
    data = bytearray(path.read_bytes())
    struct.pack_into("<f", data, 80, -struct.unpack_from("<f", data, 80)[0])
    path.write_bytes(bytes(data))
    return path


def test_stderr_carries_cttime_messages_only(tmp_path):
    """Real inputs that make ITK print C++ warnings, pykwalify dump its schema errors and (before) pandas warn for
    every column: standard error holds CTTime's lines only; the others are in OUT/cttime.log."""
    image = _sform_scaled_nifti(SAMPLE_DATA / "STS_019" / "CT_image.nii.gz", tmp_path / "ct.nii")
    mask = _sform_scaled_nifti(SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz", tmp_path / "mask.nii")
    result = cttime("score", "--image", image, "--segmentation", mask, "--patient", "P", "--reference", "demo",
                    "--out", tmp_path / "itk")
    assert result.returncode == 0, result.stderr
    assert "NiftiImageIO" not in result.stderr and "WARNING: In " not in result.stderr
    assert all(line.startswith(("WARNING: NOT CLINICALLY", "  [1/1]")) for line in result.stderr.splitlines())
    assert "has unexpected scales in sform" in (tmp_path / "itk" / "cttime.log").read_text()

    params = tmp_path / "params.yaml"
    params.write_text((PARAMETER_FILE.read_text()).replace("binWidth: 25", "binWidth: abc"))
    (tmp_path / "pykwalify").mkdir()
    result = cttime("score", "--image", image, "--segmentation", mask, "--patient", "P", "--reference", "demo",
                    "--params", params, "--out", tmp_path / "pykwalify")
    assert result.returncode == 2
    assert result.stderr.startswith("cttime: error: Parameter file") and "All found errors" not in result.stderr
    assert "validation.invalid" in (tmp_path / "pykwalify" / "cttime.log").read_text()

    air = tmp_path / "air.nii.gz"  # every lesion fails: 107 empty feature columns
    blank = sitk.ReadImage(str(SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz")) * 0
    blank[1:3, 1:3, 5] = 1
    sitk.WriteImage(blank, str(air))
    result = cttime("score", "--image", SAMPLE_DATA / "STS_019" / "CT_image.nii.gz", "--segmentation", air,
                    "--patient", "P", "--reference", "demo", "--out", tmp_path / "air")
    assert result.returncode == 3 and "Warning" not in result.stderr and "warnings.warn" not in result.stderr
    assert not (tmp_path / "air" / "cttime.log").exists()  # nothing to log: no fragmented frame any more


def test_an_absurd_reference_is_refused_without_numpy_warnings(tmp_path):
    payload = json.loads(DEMO_REFERENCE.read_text())
    payload["features"]["original_glcm_MaximumProbability"]["sd"] = 1e-300
    (tmp_path / "ref.json").write_text(json.dumps(payload))
    result = cttime("score", "--image", SAMPLE_DATA / "STS_019" / "CT_image.nii.gz", "--segmentation",
                    SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz", "--patient", "P", "--reference", tmp_path / "ref.json",
                    "--out", tmp_path / "out")
    assert result.returncode == 2 and "RuntimeWarning" not in result.stderr and "overflow" not in result.stderr
    assert "is not on the scale of CT-TIME's features" in result.stderr


def test_python_and_numpy_warnings_go_to_the_log(tmp_path):
    """The log's mechanism in a real process: a Python warning, a numpy RuntimeWarning, a library's log record and
    a C-level write to descriptor 2 all reach OUT/cttime.log; CTTime's own stderr line stays on stderr."""
    script = ("import logging, os, sys, warnings, numpy as np\n"
              "from CTTimeLib.run.log import third_party_output\n"
              f"with third_party_output({str(tmp_path)!r}):\n"
              "    warnings.warn('a library is unhappy')\n"
              "    np.log(np.zeros(1))\n"
              "    logging.getLogger('pykwalify.core').error('validation.invalid')\n"
              "    os.write(2, b'ITK ERROR: a matrix dump\\n')\n"
              "    print('cttime: error: our own message', file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "cttime: error: our own message\n"
    log = (tmp_path / "cttime.log").read_text()
    for text in ("a library is unhappy", "RuntimeWarning: divide by zero", "validation.invalid", "a matrix dump"):
        assert text in log
