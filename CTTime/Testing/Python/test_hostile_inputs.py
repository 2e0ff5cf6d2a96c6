"""Hostile inputs never crash a run or cost a result.

Each bad input of the corpus (hostile_corpus, generated from the real sample CT STS_019) goes through the real
`cttime` command: it must give a specific message naming the file or lesion and saying what to do, no traceback,
the documented exit code (0 all scored, 3 some lesions failed, 2 bad command line or input), and the good lesions
of the same run keep their rows and scores. The README table "Bad input: messages and exit codes" lists the same
cases.
"""

import ast
import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import hostile_corpus as corpus
from CTTimeLib.cli import commands
from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.resources import DEMO_REFERENCE, PARAMETER_FILE

CTTIME = Path(__file__).resolve().parents[2]
GOOD = ("tumour", "tumour_top")


def cttime(*argv):
    """Run the real CLI in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = commands.main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            code = exc.code
    assert "Traceback" not in out.getvalue() + err.getvalue()
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The cropped real CT and a .seg.nrrd of its two good (overlapping) lesions."""
    return corpus.write_basic(tmp_path_factory.mktemp("corpus"))


def score(data, tmp_path, segmentation, *extra, image=None):
    folder, _ = data
    return cttime("score", "--image", image or folder / "ct.nrrd", "--segmentation", segmentation, "--patient", "P",
                  "--out", tmp_path / "out", *(extra or ("--reference", DEMO_REFERENCE)))


def lesions(out):
    return pd.read_csv(out / "lesions.csv", dtype={"lesion_id": str, "patient_id": str}, keep_default_na=False)


@pytest.fixture(scope="module")
def baseline(data, tmp_path_factory):
    """Scores of the good lesions alone (demo reference)."""
    tmp = tmp_path_factory.mktemp("baseline")
    code, _, _ = score(data, tmp, data[0] / "good.seg.nrrd")
    assert code == 0
    table = lesions(tmp / "out")
    return dict(zip(table["lesion_id"], table["ct_time_score"].astype(float)))


def assert_good_kept(out, baseline, patient="P"):
    table = lesions(out)
    rows = table[table["patient_id"] == patient].set_index("lesion_id")
    for lesion_id in GOOD:
        assert rows.loc[lesion_id, "error"] == ""
        assert float(rows.loc[lesion_id, "ct_time_score"]) == pytest.approx(baseline[lesion_id], rel=1e-12)


# ---- bad studies: `score` refuses them (exit 2), a cohort scores the other studies (exit 3) -------------------

def _truncated(folder, ct):
    sitk.WriteImage(ct, str(folder / "whole.nii.gz"))
    return {"image": corpus.corrupt(folder / "truncated.nii.gz", folder / "whole.nii.gz")}


def _garbage(folder, ct):
    (folder / "garbage.nrrd").write_bytes(b"NRRD0004\ntype: float\n\x00\x01 not an image")
    return {"image": folder / "garbage.nrrd"}


def _image(name, make):
    def build(folder, ct):
        sitk.WriteImage(make(ct), str(folder / name))
        return {"image": folder / name}
    return build


def _nan_image(ct):
    array = sitk.GetArrayFromImage(ct)
    array[0, 0, 0] = np.nan
    return corpus.like_image(array, ct)


def _segmentation(name, make):
    def build(folder, ct):
        path = folder / name
        result = make(path, ct)
        if isinstance(result, sitk.Image):
            sitk.WriteImage(result, str(path))
        return {"segmentation": path}
    return build


def _geometry_image(name, make):
    def build(folder, ct):
        return {"image": make(folder / name, ct)}
    return build


def _edited_seg(name, old, new):
    def build(folder, ct):
        good = corpus.write_seg(folder / f"good_{name}", corpus.good_lesions(), ct)
        return {"segmentation": corpus.edit_header(folder / name, good, old, new)}
    return build


SPACING = "(0.9765620231628418,0,0) (0,0.9765620231628418,0) (0,0,3.2699999809265137)"
GEOMETRY_STUDIES = {  # bad geometry, read as "1 mm", scored on another lesion's voxels or a SWIG error before
    "NaN voxel size (NIfTI)": (_geometry_image("nanpix.nii", lambda path, ct: corpus.nifti_with_pixdim(
        path, ct, (float("nan"), 0.9765620231628418, 3.27))),
        ["nanpix.nii", "voxel size in the NIfTI header (pixdim nan x", "ITK would silently take 1 mm",
         "export it again"]),
    "zero voxel size (NIfTI)": (_geometry_image("zeropix.nii", lambda path, ct: corpus.nifti_with_pixdim(
        path, ct, (0.9765620231628418, 0.0, 3.27))), ["zeropix.nii", "(pixdim 0.976562 x 0 x 3.27 mm)"]),
    "tiny voxel size": (_geometry_image("tiny.nrrd", lambda path, ct: corpus.nrrd_with_directions(
        path, ct, "(1e-30,0,0) (0,1e-30,0) (0,0,1e-30)")),
        ["tiny.nrrd", "voxel size (1e-30 x 1e-30 x 1e-30 mm) is not a CT's", "0.01 and 100 mm"]),
    "degenerate direction": (_geometry_image("singular.nrrd", lambda path, ct: corpus.nrrd_with_directions(
        path, ct, "(0.97,0,0) (0.97,0,0) (0,0,3.27)")),
        ["singular.nrrd", "orientation is degenerate", "two axes point the same way", "export it again"]),
    "skewed axes": (_geometry_image("skew.nrrd", lambda path, ct: corpus.nrrd_with_directions(
        path, ct, "(0.97,0,0) (0.5,0.8,0) (0,0,3.27)")),
        ["skew.nrrd", "not at right angles", "58.0 degrees", "gantry-tilted", "Resample"]),
    "zero space direction (segmentation)": (_edited_seg("zero.seg.nrrd", "(0,0.9765620231628418,0)", "(0,0,0)"),
                                            ["zero.seg.nrrd", "voxel size (0.9766 x 0 x 3.27 mm) is not a real size"]),
    "segment layer -1": (_edited_seg("layer.seg.nrrd", "Segment0_Layer:=0", "Segment0_Layer:=-1"),
                         ["layer.seg.nrrd", "segment 'tumour' says it is stored in layer -1",
                          "file has 2 layer(s)", "another segment's", "save it again from Slicer"]),
    "segment layer out of range": (_edited_seg("layer5.seg.nrrd", "Segment1_Layer:=1", "Segment1_Layer:=5"),
                                   ["layer5.seg.nrrd", "'tumour_top' says it is stored in layer 5"]),
    "segment label value 0": (_edited_seg("label0.seg.nrrd", "Segment1_LabelValue:=1", "Segment1_LabelValue:=0"),
                              ["label0.seg.nrrd", "label value 0", "0 is the background"]),
}

BAD_STUDIES = {
    "missing image": (lambda folder, ct: {"image": folder / "no_such_ct.nrrd"},
                      ["Image not found", "no_such_ct.nrrd", "Check the path"]),
    "missing segmentation": (lambda folder, ct: {"segmentation": folder / "no_such.seg.nrrd"},
                             ["Segmentation not found", "no_such.seg.nrrd", "Check the path"]),
    "truncated image": (_truncated, ["truncated.nii.gz", "damaged or incomplete", "export it again"]),
    "truncated labelmap": (_segmentation("mask.nii.gz", lambda path, ct: corpus.corrupt(
        path, corpus.write_image(path.with_name("intact.nii.gz"), corpus.tumour().astype(np.uint8), ct))),
        ["Segmentation", "mask.nii.gz is damaged or incomplete", "export it again"]),
    "unreadable image": (_garbage, ["Cannot read image", "garbage.nrrd", "Give a CT volume"]),
    "4-D image": (_image("series.nrrd", corpus.series_4d), ["series.nrrd", "is 4-D", "split 4-D series"]),
    "vector image": (_image("vector.nrrd", corpus.vector), ["vector.nrrd", "2 components", "scalar CT volume"]),
    "not CT: no air": (_image("raw.nrrd", lambda ct: corpus.rescaled(ct, 1, 1024)),
                       ["raw.nrrd", "does not look like CT", "rescale slope/intercept"]),
    "not CT: out of range": (_image("x10.nrrd", lambda ct: corpus.rescaled(ct, 10, 0)),
                             ["x10.nrrd", "does not look like CT", "outside -1200..4000"]),
    "NaN voxels": (_image("nan.nrrd", _nan_image), ["nan.nrrd", "NaN or infinite", "CT volume in HU"]),
    "no overlap": (_segmentation("far.nrrd", lambda path, ct: corpus.far_away(corpus.tumour(), ct)),
                   ["far.nrrd", "does not overlap the image", "same study and series"]),
    "non-integer labelmap": (_segmentation("float.nrrd", lambda path, ct: corpus.like_image(
        (corpus.tumour() * 0.5).astype(np.float32), ct)), ["float.nrrd", "non-integer values", "integer label"]),
    "duplicate lesion IDs": (_segmentation("dup.seg.nrrd", lambda path, ct: corpus.write_seg(
        path, [("tumour", corpus.tumour()), ("tumour", corpus.single_slice())], ct)),
        ["dup.seg.nrrd", "'tumour' occurs twice", "rename one segment"]),
    "unreadable segmentation": (_segmentation("broken.seg.nrrd", lambda path, ct: path.write_bytes(
        b"NRRD0004\ntype: uchar\ndimension: 3\n\n\x00")), ["broken.seg.nrrd", "Cannot read segmentation",
                                                           "Save it again"]),
    "no lesion": (_segmentation("zero.nrrd", lambda path, ct: corpus.mask_image(np.zeros_like(corpus.tumour()), ct)),
                  ["zero.nrrd", "holds no lesion"]),
    **GEOMETRY_STUDIES,
}


@pytest.mark.parametrize("name", BAD_STUDIES)
def test_score_refuses_a_bad_study_with_exit_2(name, data, tmp_path):
    make, words = BAD_STUDIES[name]
    given = make(tmp_path, data[1])
    code, out, err = score(data, tmp_path, given.get("segmentation", data[0] / "good.seg.nrrd"),
                           image=given.get("image"))
    assert code == 2
    assert "cttime: error: " in err
    for word in words:
        assert word in err
    assert not (tmp_path / "out" / "lesions.csv").exists()


MANIFEST_CHECKED = ("missing image", "missing segmentation", "duplicate lesion IDs")  # found before extraction


@pytest.mark.parametrize("name", MANIFEST_CHECKED)
def test_cohort_refuses_a_manifest_naming_a_missing_file_or_duplicate_ids(name, data, tmp_path):
    folder, ct = data
    given = BAD_STUDIES[name][0](tmp_path, ct)
    image, seg = given.get("image", folder / "ct.nrrd"), given.get("segmentation", folder / "good.seg.nrrd")
    (tmp_path / "m.csv").write_text(f"patient_id,timepoint,image,segmentation\nP,BS,{image},{seg}\n", encoding="utf-8")
    code, _, err = cttime("cohort", tmp_path / "m.csv", "--out", tmp_path / "out", "--reference", DEMO_REFERENCE)
    assert code == 2
    assert "m.csv has 1 problem(s)" in err and "line 2: " in err
    assert Path(next(iter(given.values()))).name in err


def test_cohort_scores_the_good_study_and_reports_each_bad_one(data, baseline, tmp_path):
    folder, ct = data
    lines = ["patient_id,timepoint,image,segmentation", f"P,BS,{folder / 'ct.nrrd'},{folder / 'good.seg.nrrd'}"]
    kept = [name for name in BAD_STUDIES if name not in MANIFEST_CHECKED]
    for number, name in enumerate(kept):
        make, _ = BAD_STUDIES[name]
        study = tmp_path / f"study{number}"
        study.mkdir()
        given = make(study, ct)
        lines.append(f"BAD{number},BS,{given.get('image', folder / 'ct.nrrd')},"
                     f"{given.get('segmentation', folder / 'good.seg.nrrd')}")
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = cttime("cohort", tmp_path / "manifest.csv", "--out", tmp_path / "out", "--workers", "1",
                            "--reference", DEMO_REFERENCE)
    assert code == 3, err
    assert_good_kept(tmp_path / "out", baseline)
    table = lesions(tmp_path / "out").set_index("patient_id")
    for number, name in enumerate(kept):
        error = table.loc[f"BAD{number}", "error"]
        assert all(word in error for word in BAD_STUDIES[name][1]), (name, error)
        assert f"FAILED BAD{number} BS (study): " in out


# ---- bad lesions: the row carries the error, the other lesions are scored (exit 3) ----------------------------

BAD_LESIONS = {
    "empty": (lambda: np.zeros_like(corpus.tumour()), ["Lesion empty is empty", "delete the segment or draw it"]),
    "one_voxel": (corpus.one_voxel, ["Lesion one_voxel (1 voxels)", "single voxel", "draw it on more voxels"]),
    "in_air": (corpus.air_lesion, ["Lesion in_air", "re-segmentation to -100..300 HU",
                                   "soft tissue drawn on this CT"]),
}


@pytest.fixture(scope="module")
def lesion_run(data, tmp_path_factory):
    folder, ct = data
    tmp = tmp_path_factory.mktemp("lesions")
    segments = dict(corpus.good_lesions(), single_slice=corpus.single_slice(), sloppy=corpus.sloppy_lesion(),
                    **{name: make() for name, (make, _) in BAD_LESIONS.items()})
    seg = corpus.write_seg(tmp / "mixed.seg.nrrd", segments, ct)
    code, out, err = score(data, tmp, seg)
    return code, out, tmp / "out", err


def test_bad_lesions_cost_only_their_own_rows(lesion_run, baseline):
    code, out, folder, _ = lesion_run
    assert code == 3, out
    assert_good_kept(folder, baseline)
    assert f"Scored 4 lesion(s), {len(BAD_LESIONS)} failed" in out


def test_the_patient_aggregate_says_it_stands_on_an_incomplete_set(lesion_run):
    """3 of 7 lesions failed: the minimum over the 4 scored is kept, named, marked INCOMPLETE everywhere."""
    _, out, folder, err = lesion_run
    table = lesions(folder)
    scored = table[table["error"] == ""]
    patient = pd.read_csv(folder / "patients.csv", keep_default_na=False).iloc[0]
    assert (patient["n_lesions"], patient["n_scored"], patient["n_failed"]) == (7, 4, 3)
    assert not patient["aggregate_complete"]
    assert patient["aggregate_coverage"] == "INCOMPLETE: 4 of 7 lesions scored"
    minimum = scored.loc[scored["ct_time_score"].astype(float).idxmin()]
    assert patient["min_lesion_id"] == minimum["lesion_id"]
    assert float(patient["ct_time_min"]) == pytest.approx(float(minimum["ct_time_score"]), rel=1e-12)
    assert "INCOMPLETE: 4 of 7 lesions scored: the aggregates stand on the scored lesions only" in patient["warning"]
    assert f"P BS: INCOMPLETE: 4 of 7 lesions scored (aggregates over the scored lesions only), CT-TIME min " \
           f"{float(minimum['ct_time_score']):.3f}" in out and f"set by {minimum['lesion_id']}" in out
    assert "WARNING: 1 patient aggregate(s) stand on an incomplete set of lesions or on none: P BS" in err


def test_a_lesion_mostly_outside_soft_tissue_is_scored_and_flagged(lesion_run):
    """The sloppy lesion (40% soft tissue) gets a score, and a warning in its row, on stderr and in patients.csv;
    the real tumour (96%) none."""
    _, _, folder, err = lesion_run
    rows = lesions(folder).set_index("lesion_id")
    share = float(rows.loc["sloppy", "soft_tissue_share"])
    assert 0.3 < share < 0.5 and rows.loc["sloppy", "error"] == "" and 0 < float(rows.loc["sloppy", "ct_time_score"])
    assert "lesion sloppy: soft-tissue share 0.40 (< 0.5): only 40% of its voxels lie within -100..300 HU" in \
        rows.loc["sloppy", "warning"]
    assert "NOT CLINICALLY CALIBRATED: demo reference" in rows.loc["sloppy", "warning"]  # every warning, one cell
    assert float(rows.loc["tumour", "soft_tissue_share"]) > 0.9 and "soft-tissue" not in rows.loc["tumour", "warning"]
    assert float(rows.loc["in_air", "soft_tissue_share"]) == 0.0  # measured before its features failed
    assert re.search(r"WARNING: 2 lesion\(s\) with a soft-tissue share below 0.5 .*P BS sloppy: 0.40", err)
    patient = pd.read_csv(folder / "patients.csv", keep_default_na=False).iloc[0]
    assert "lesion sloppy: soft-tissue share 0.40" in patient["warning"]
    summary = json.loads((folder / "run.json").read_text())["summary"]
    assert summary["low_soft_tissue_share"] == ["P BS sloppy: 0.40", "P BS in_air: 0.00"]


def test_a_mask_that_misses_its_lesion_fails_and_keeps_its_share(data, tmp_path, baseline):
    """The real tumour's mask moved 40 voxels (39 mm) sideways, as a mask from another series lands: 0.5% of it still
    lies on soft tissue, so pyradiomics would score it. It fails (kind "mask") saying what was found, keeps its
    soft-tissue share, and the patient's aggregate says it stands on an incomplete set; the tumour keeps its score."""
    moved = np.zeros_like(corpus.tumour())
    moved[..., :-40] = corpus.tumour()[..., 40:]
    seg = corpus.write_seg(tmp_path / "moved.seg.nrrd", {"tumour": corpus.tumour(), "moved": moved}, data[1])
    code, out, err = score(data, tmp_path, seg)
    assert code == 3, out
    rows = lesions(tmp_path / "out").set_index("lesion_id")
    assert rows.loc["tumour", "error"] == "" and \
        float(rows.loc["tumour", "ct_time_score"]) == pytest.approx(baseline["tumour"], rel=1e-12)
    row = rows.loc["moved"]
    assert row["error_kind"] == "mask" and row["ct_time_score"] == ""
    assert 0.001 < float(row["soft_tissue_share"]) < 0.1
    found = re.search(r"Lesion moved keeps ([\d,]+) of ([\d,]+) drawn voxels .*the drawing lies mostly outside soft "
                      r"tissue; is the mask mirrored or from another series\?", row["error"])
    kept, drawn = (int(n.replace(",", "")) for n in found.groups())
    assert kept / drawn == pytest.approx(float(row["soft_tissue_share"]), rel=1e-9)
    patient = pd.read_csv(tmp_path / "out" / "patients.csv", keep_default_na=False).iloc[0]
    assert not patient["aggregate_complete"] and patient["aggregate_coverage"] == "INCOMPLETE: 1 of 2 lesions scored"


@pytest.mark.parametrize("lesion_id", BAD_LESIONS)
def test_bad_lesion_message(lesion_run, lesion_id):
    _, out, folder, _ = lesion_run
    row = lesions(folder).set_index("lesion_id").loc[lesion_id]
    assert row["ct_time_score"] == "" and row["ct_time_status"] == ""
    for word in BAD_LESIONS[lesion_id][1]:
        assert word in row["error"]
    assert f"FAILED P BS {lesion_id}: " in out


def test_single_slice_lesion_is_scored(lesion_run):
    row = lesions(lesion_run[2]).set_index("lesion_id").loc["single_slice"]
    assert row["error"] == "" and 0 < float(row["ct_time_score"]) < 1


def test_failed_lesions_are_yellow_in_the_coloured_segmentation(lesion_run):
    import slicerio

    from CTTimeLib.core import colormap

    segments = {s["name"]: s for s in slicerio.read_segmentation(str(lesion_run[2] / "P_BS_cttime.seg.nrrd"),
                                                                 skip_voxels=True)["segments"]}
    for lesion_id in BAD_LESIONS:
        assert segments[lesion_id]["tags"]["CTTime.Status"] == "failed"
        assert segments[lesion_id]["color"] == pytest.approx(colormap.score_color(None), abs=1e-5)


def test_a_study_where_every_lesion_failed_has_no_score_and_says_so(data, tmp_path):
    seg = corpus.write_seg(tmp_path / "failed.seg.nrrd", {"in_air": corpus.air_lesion(),
                                                          "one_voxel": corpus.one_voxel()}, data[1])
    code, out, err = score(data, tmp_path, seg)
    assert code == 3
    patient = pd.read_csv(tmp_path / "out" / "patients.csv", keep_default_na=False).iloc[0]
    assert patient["ct_time_min"] == "" and patient["status_min"] == "" and patient["min_lesion_id"] == ""
    assert patient["aggregate_coverage"] == "NO SCORE: none of 2 lesion(s) could be scored"
    assert "P BS: NO SCORE: none of 2 lesion(s) could be scored" in out and "NO SCORE" in err


# ---- options that name something must name something that exists ------------------------------------------------

@pytest.mark.parametrize("options, words", [
    (["--label-name", "7=liver_1"], ["mask.nii.gz has no label 7 to name", "its labels are 1"]),
    (["--label-name", "one=liver_1"], ["--label-name expects LABEL_VALUE=LESION_ID", "one=liver_1"]),
    (["--location", "tumour=lung"], ["has no lesion 'tumour' to give a location", "its lesions are 'lesion_1'"]),
    (["--group-by", "timepoint"], ["--group-by timepoint applies to cohort standardisation", "Drop --group-by"]),
    (["--standardize", "cohort", "--group-by", "scanner"], ["--group-by scanner: the lesions table has no such column",
                                                            "group by one of patient_id, timepoint"]),
])
def test_an_option_naming_what_does_not_exist_is_refused(options, words, data, tmp_path):
    folder, ct = data
    labelmap = corpus.write_image(tmp_path / "mask.nii.gz", corpus.tumour().astype(np.uint8), ct)
    reference = [] if "--standardize" in options else ["--reference", DEMO_REFERENCE]
    code, out, err = score(data, tmp_path, labelmap, *options, *reference)
    assert code == 2, out + err
    assert all(word in err for word in words), err
    assert not (tmp_path / "out" / "lesions.csv").exists()


def test_label_names_on_a_slicer_segmentation_are_refused(data, tmp_path):
    code, _, err = score(data, tmp_path, data[0] / "good.seg.nrrd", "--label-name", "1=LU_1", "--reference",
                         DEMO_REFERENCE)
    assert code == 2 and "label names (--label-name, the manifest's labels) apply to labelmaps only" in err


def test_a_manifest_location_for_a_segment_that_does_not_exist(data, tmp_path):
    folder, _ = data
    (tmp_path / "m.csv").write_text("patient_id,timepoint,image,segmentation,locations\n"
                                    f"P,BS,{folder / 'ct.nrrd'},{folder / 'good.seg.nrrd'},tumor=lung\n",
                                    encoding="utf-8")
    code, _, err = cttime("cohort", tmp_path / "m.csv", "--out", tmp_path / "out", "--reference", DEMO_REFERENCE)
    assert code == 2 and "line 2: locations names 'tumor', which segmentation" in err
    assert "(its segments: tumour, tumour_top)" in err and not (tmp_path / "out").exists()


def test_a_harmonisation_column_no_study_has_is_refused_before_extraction(data, tmp_path):
    folder, _ = data
    (tmp_path / "m.csv").write_text("patient_id,timepoint,image,segmentation,batch\n"
                                    f"P,BS,{folder / 'ct.nrrd'},{folder / 'good.seg.nrrd'},A\n", encoding="utf-8")
    code, _, err = cttime("cohort", tmp_path / "m.csv", "--out", tmp_path / "out", "--standardize", "cohort",
                          "--harmonize", "scanner")
    assert code == 2 and "--harmonize scanner: no study has such a column" in err and "batch" in err
    assert not (tmp_path / "out").exists()


def test_reference_demo_names_the_shipped_demo_reference(data, baseline, tmp_path):
    code, _, err = score(data, tmp_path, data[0] / "good.seg.nrrd", "--reference", "demo")
    assert code == 0 and "NOT CLINICALLY CALIBRATED: demo reference" in err
    assert_good_kept(tmp_path / "out", baseline)


def test_info_lists_the_resources_with_checksums_and_the_engines():
    from CTTimeLib.core.files import digest
    from CTTimeLib.core.resources import MODEL_FILE

    code, out, _ = cttime("info")
    assert code == 0
    for path in (MODEL_FILE, PARAMETER_FILE, DEMO_REFERENCE):
        assert str(path) in out and f"sha256 {digest(path)}" in out
    assert "--reference demo" in out and re.search(r"pyradiomics v?3\.\S+: available", out)
    assert "CTTime's own engine (scoring.engine):" in out


# ---- geometry: another grid that overlaps is resampled; padding is not "not CT" -------------------------------

def test_segmentation_on_another_grid_is_resampled(data, baseline, tmp_path):
    folder, ct = data
    moved = corpus.shifted_grid(corpus.tumour(), ct)
    assert moved.GetSize() != ct.GetSize() and moved.GetSpacing() != ct.GetSpacing()
    assert moved.GetOrigin() != ct.GetOrigin() and moved.GetDirection() != ct.GetDirection()
    sitk.WriteImage(moved, str(tmp_path / "moved.nrrd"))
    code, _, _ = score(data, tmp_path, tmp_path / "moved.nrrd", "--label-name", "1=tumour",
                       "--reference", DEMO_REFERENCE)
    assert code == 0
    assert float(lesions(tmp_path / "out").loc[0, "ct_time_score"]) == pytest.approx(baseline["tumour"], rel=1e-12)


@pytest.mark.parametrize("padding", [-3024.0, -2000.0, -32768.0])
def test_outside_field_of_view_padding_is_accepted(padding, data, baseline, tmp_path):
    padded = corpus.padded(data[1], padding)
    assert float(sitk.GetArrayViewFromImage(padded).min()) == padding
    sitk.WriteImage(padded, str(tmp_path / "padded.nrrd"))
    code, _, _ = score(data, tmp_path, data[0] / "good.seg.nrrd", image=tmp_path / "padded.nrrd")
    assert code == 0
    assert_good_kept(tmp_path / "out", baseline)


def test_overlapping_segments_are_read_from_their_layers(data):
    import slicerio

    from CTTimeLib.core.geometry import whole_mask
    from CTTimeLib.io.segmentations import read_lesions

    folder, ct = data
    assert slicerio.read_segmentation(str(folder / "good.seg.nrrd"))["voxels"].ndim == 4  # two layers
    read = {lesion.lesion_id: sitk.GetArrayFromImage(whole_mask(lesion.mask, ct)).astype(bool)
            for lesion in read_lesions(folder / "good.seg.nrrd", ct)}
    for name, mask in corpus.good_lesions().items():
        assert np.array_equal(read[name], mask)


# ---- names: path separators and non-ASCII characters -----------------------------------------------------------

def _utf8_names(path, names):
    """Put UTF-8 segment names into a .seg.nrrd header, as 3D Slicer writes them."""
    data = path.read_bytes()
    header, separator, body = data.partition(b"\n\n")
    for number, name in enumerate(names):
        header = header.replace(f"Segment{number}_Name:=placeholder{number}\n".encode(),
                                f"Segment{number}_Name:={name}\n".encode("utf-8"))
    path.write_bytes(header + separator + body)


def test_hostile_names_keep_their_ids_and_give_safe_file_names(data, baseline, tmp_path):
    folder, ct = data
    names = ["../../etc/tumour", "LU\\1 Läsion 肺 /x"]
    seg = corpus.write_seg(tmp_path / "names.seg.nrrd", {f"placeholder{i}": mask for i, mask in
                                                         enumerate(corpus.good_lesions().values())}, ct)
    _utf8_names(seg, names)
    code, out, _ = cttime("score", "--image", folder / "ct.nrrd", "--segmentation", seg, "--patient", "../Pä tient/1",
                          "--timepoint", "B\\S", "--out", tmp_path / "out", "--reference", DEMO_REFERENCE)
    assert code == 0
    table = lesions(tmp_path / "out")
    assert list(table["lesion_id"]) == names  # exact IDs in lesions.csv
    assert list(table["ct_time_score"].astype(float)) == pytest.approx([baseline[n] for n in GOOD], rel=1e-12)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert all(p.parts[0] == "out" or p.name == "names.seg.nrrd" for p in written)  # nothing outside --out
    colored = [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".seg.nrrd")]
    assert [p.name for p in colored] == ["Pa_tient_1_B_S-8bd7d6ac5ec6_cttime.seg.nrrd"]  # safe name + hash of the IDs
    for path in (tmp_path / "out").rglob("*"):
        assert re.fullmatch(r"[A-Za-z0-9._-]+", path.name), path.name
    import slicerio

    read = slicerio.read_segmentation(str(colored[0]), skip_voxels=True)["segments"]
    assert [s["tags"]["CTTime.Score"] for s in read] == [f"{baseline[n]:.6f}" for n in GOOD]  # names are text


def test_names_that_differ_only_in_non_ascii_characters_are_distinct_lesions(data, baseline, tmp_path):
    folder, ct = data
    names = ["Läsion 肺", "Läsion 肝"]
    seg = corpus.write_seg(tmp_path / "utf8.seg.nrrd", {f"placeholder{i}": mask for i, mask in
                                                        enumerate(corpus.good_lesions().values())}, ct)
    _utf8_names(seg, names)
    (tmp_path / "m.csv").write_text(f"patient_id,timepoint,image,segmentation\nP,BS,{folder / 'ct.nrrd'},{seg}\n",
                                    encoding="utf-8")
    code, _, err = cttime("cohort", tmp_path / "m.csv", "--out", tmp_path / "out", "--workers", "1",
                          "--reference", DEMO_REFERENCE)
    assert code == 0, err
    table = lesions(tmp_path / "out")
    assert list(table["lesion_id"]) == names
    assert list(table["ct_time_score"].astype(float)) == pytest.approx([baseline[n] for n in GOOD], rel=1e-12)


# ---- a parameter file other than the fixed one: a loud warning everywhere ---------------------------------------

def test_changed_parameter_file_warns_in_every_output(data, tmp_path):
    changed = tmp_path / "my-params.yaml"
    changed.write_text(PARAMETER_FILE.read_text(encoding="utf-8").replace("binWidth: 25", "binWidth: 10"),
                       encoding="utf-8")
    code, out, err = score(data, tmp_path, data[0] / "good.seg.nrrd", "--params", changed,
                           "--reference", DEMO_REFERENCE)
    assert code == 0
    phrase = "CT-TIME scores are only valid with the fixed file"
    assert re.search(rf"WARNING: parameter file .*my-params.yaml differs .*{phrase}", err)
    record = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    assert record["parameter_file_is_fixed"] is False
    assert any(phrase in warning for warning in record["warnings"])
    assert all(phrase in text for text in lesions(tmp_path / "out")["warning"])
    patients = pd.read_csv(tmp_path / "out" / "patients.csv", keep_default_na=False)
    assert all(phrase in text for text in patients["warning"])


def test_fixed_parameter_file_gives_no_warning(baseline, data, tmp_path):
    code, _, err = score(data, tmp_path, data[0] / "good.seg.nrrd")
    assert code == 0 and "parameter file" not in err
    for cell in lesions(tmp_path / "out")["warning"]:  # the corpus CT has 3.27 mm slices; some lesions lie outside
        assert cell.startswith(  # the demo reference, which their own warning says; nothing is said of the file
            "NOT CLINICALLY CALIBRATED: demo reference | outside CT-TIME's training domain (scores less certain): "
            "slice spacing 3.27 mm (stand-in for thickness; training: about 1.25-3 mm)")
        assert all("outside the reference" in extra for extra in cell.split(" | ")[2:])


# ---- tables: manifests, references, standardisation, non-finite features, duplicate rows ------------------------

def test_manifest_with_missing_columns(tmp_path):
    (tmp_path / "m.csv").write_text("patient_id,timepoint,image\nP,BS,ct.nrrd\n", encoding="utf-8")
    code, _, err = cttime("cohort", tmp_path / "m.csv", "--out", tmp_path / "out", "--reference", DEMO_REFERENCE)
    assert code == 2
    assert "m.csv lacks the column(s) segmentation" in err and "one row per patient and time point" in err


def test_manifest_with_wrong_paths_lists_every_problem(data, tmp_path):
    folder, _ = data
    (tmp_path / "m.csv").write_text(
        f"patient_id,timepoint,image,segmentation\nP,BS,{folder / 'ct.nrrd'},{folder / 'good.seg.nrrd'}\n"
        "Q,BS,nowhere/ct.nrrd,nowhere/seg.nrrd\nP,BS,,x.nrrd\n", encoding="utf-8")
    code, _, err = cttime("cohort", tmp_path / "m.csv", "--out", tmp_path / "out", "--reference", DEMO_REFERENCE)
    assert code == 2
    assert "has 5 problem(s)" in err
    for problem in ("line 3: image not found: ", "nowhere/ct.nrrd", "line 3: segmentation not found",
                    "line 4: empty image", "line 4: patient P at time point BS is listed again (first on line 2)"):
        assert problem in err
    assert not (tmp_path / "out").exists()


def _reference(tmp_path, edit):
    payload = json.loads(DEMO_REFERENCE.read_text(encoding="utf-8"))
    edit(payload)
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, words", [
    (lambda p: p["features"].pop("original_glcm_MaximumProbability"),
     ["ref.json", "no mean/sd for original_glcm_MaximumProbability"]),
    (lambda p: p["features"]["original_shape_Elongation"].update(sd=0),
     ["ref.json", "SD of original_shape_Elongation is 0.0", "must be positive"]),
    (lambda p: p.update(model="another-model"), ["ref.json", "made for model 'another-model'", "build a reference"]),
    (lambda p: p.pop("n_lesions"), ["ref.json", "lacks the required key 'n_lesions'"]),
])
def test_bad_reference_files(edit, words, data, tmp_path):
    code, _, err = score(data, tmp_path, data[0] / "good.seg.nrrd", "--reference", _reference(tmp_path, edit))
    assert code == 2
    assert all(word in err for word in words), err


def test_cohort_standardisation_of_one_lesion(data, tmp_path):
    seg = corpus.write_seg(tmp_path / "one.seg.nrrd", {"tumour": corpus.tumour()}, data[1])
    code, _, err = score(data, tmp_path, seg, "--standardize", "cohort")
    assert code == 2
    assert "1 scorable lesion(s); cohort standardisation needs at least 2" in err and "--reference" in err


def test_cohort_standardisation_left_with_one_lesion_says_why(data, tmp_path):
    seg = corpus.write_seg(tmp_path / "two.seg.nrrd", {"tumour": corpus.tumour(), "in_air": corpus.air_lesion()},
                           data[1])
    code, _, err = score(data, tmp_path, seg, "--standardize", "cohort")
    assert code == 2
    assert "needs at least 2" in err and "failed: P BS in_air: Lesion in_air" in err


def test_non_finite_features_fail_only_their_rows(baseline, data, tmp_path):
    run = tmp_path / "run"
    code, _, _ = score(data, run, data[0] / "good.seg.nrrd")
    assert code == 0
    table = pd.read_csv(run / "out" / "lesions.csv", dtype={"lesion_id": str})
    extra = table.iloc[[0, 0, 0]].copy()
    extra["lesion_id"] = ["nan_lesion", "inf_lesion", "text_lesion"]
    extra = extra.astype({"original_firstorder_90Percentile": object, "original_glcm_MaximumProbability": object})
    extra.iloc[0, extra.columns.get_loc("original_firstorder_90Percentile")] = np.nan
    extra.iloc[1, extra.columns.get_loc("original_glcm_MaximumProbability")] = np.inf
    extra.iloc[2, extra.columns.get_loc("original_glcm_MaximumProbability")] = "n/a"
    pd.concat([table, extra]).to_csv(tmp_path / "table.csv", index=False)
    code, out, err = cttime("rescore", tmp_path / "table.csv", "--out", tmp_path / "out",
                            "--reference", DEMO_REFERENCE)
    assert code == 3, err
    assert_good_kept(tmp_path / "out", baseline)
    rows = lesions(tmp_path / "out").set_index("lesion_id")
    for lesion_id, feature in (("nan_lesion", "90Percentile"), ("inf_lesion", "MaximumProbability"),
                               ("text_lesion", "MaximumProbability")):
        assert re.search(rf"Lesion {lesion_id}: signature feature\(s\) \S*{feature} missing, NaN or infinite; "
                         "extract the lesion again", rows.loc[lesion_id, "error"])
        assert rows.loc[lesion_id, "ct_time_score"] == ""


def test_duplicate_rows_in_a_lesions_table(data, tmp_path):
    run = tmp_path / "run"
    assert score(data, run, data[0] / "good.seg.nrrd")[0] == 0
    table = pd.read_csv(run / "out" / "lesions.csv")
    pd.concat([table, table.iloc[[1]]]).to_csv(tmp_path / "twice.csv", index=False)
    code, _, err = cttime("rescore", tmp_path / "twice.csv", "--out", tmp_path / "out", "--reference", DEMO_REFERENCE)
    assert code == 2
    assert "lists 1 lesion(s) more than once (P BS tumour_top)" in err and "keep one row per" in err


# ---- the sources: atomic outputs, safe loaders, no pickle ---------------------------------------------------------

SOURCES = sorted([*(CTTIME / "CTTimeLib").rglob("*.py"), *(CTTIME / "CTTimeMRML").rglob("*.py"), *CTTIME.glob("*.py")])
_WRITERS = {"to_csv", "to_json", "to_excel", "to_parquet", "savefig", "WriteImage", "write_segmentation",
            "write_bytes", "write_text", "save"}


def _atomic_block(node):
    return any(isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", "")) == "atomic_path"
               for item in node.items for n in ast.walk(item.context_expr))


def _unguarded_writes(tree):
    """Calls that write a file (open for writing, to_csv, savefig, WriteImage, ...) outside ``atomic_path``.

    Appending (``open(..., "a")``) is allowed: a progress log grows line by line by design. Writing to an
    in-memory buffer (a variable named buffer or stream) is not a file."""
    found = []

    def visit(node, guarded):
        if isinstance(node, ast.With):
            guarded = guarded or _atomic_block(node)
        if isinstance(node, ast.Call) and not guarded:
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            mode = next((a.value for a in node.args[1:2] if isinstance(a, ast.Constant)), "") or next(
                (k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)), "")
            writes = (name == "open" and any(c in str(mode) for c in "wx")) or (
                name in _WRITERS and isinstance(node.func, ast.Attribute) and bool(node.args or node.keywords))
            first = node.args[0] if node.args else None
            to_memory = isinstance(first, ast.Name) and first.id in ("buffer", "stream", "handle")
            if writes and not to_memory and not _module_call(node, ("files",)):
                found.append(f"line {node.lineno}: {name}")
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(tree, False)
    return found


def _module_call(node, modules):
    return isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") in modules


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_every_output_is_written_atomically(path):
    assert _unguarded_writes(ast.parse(path.read_text(encoding="utf-8"))) == []


def test_the_write_check_can_fail():
    tree = ast.parse("frame.to_csv(path)\nwith open(path, 'w') as f:\n    pass\n"
                     "with files.atomic_path(path) as t:\n    frame.to_csv(t)\n")
    assert _unguarded_writes(tree) == ["line 1: to_csv", "line 2: open"]


def test_safe_loaders_and_no_pickle():
    files = [*CTTIME.rglob("*.py"), *(CTTIME.parent / "benchmarks").rglob("*.py"), CTTIME.parent / "pyproject.toml"]
    banned = re.compile(r"\bpickle\b|read_pickle|allow_pickle\s*=\s*True|\bjoblib\b|\bdill\b|\bshelve\b|\bmarshal\b"
                        r"|yaml\.unsafe_load|yaml\.full_load|yaml\.load\((?![^)]*SafeLoader)|(?<![\w.])eval\(")
    offenders = [f"{path.relative_to(CTTIME.parent)}:{number}"
                 for path in files if path.is_file() and path.name != Path(__file__).name
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if banned.search(line)]
    assert offenders == []
    assert banned.search("yaml.load(text)") and not banned.search("yaml.load(text, Loader=yaml.SafeLoader)")
    assert banned.search("import pickle") and not banned.search("ast.literal_eval(text)")


# ---- property-based: the .seg.nrrd reader and the manifest parser ----------------------------------------------

@st.composite
def segmentations(draw):
    shape = tuple(draw(st.integers(2, 7)) for _ in range(3))
    count = draw(st.integers(1, 4))
    masks = [draw(arrays(np.bool_, shape)) for _ in range(count)]
    spacing = [draw(st.floats(0.3, 4.0)) for _ in range(3)]
    origin = [draw(st.floats(-500, 500)) for _ in range(3)]
    return masks, spacing, origin


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segmentations())
def test_seg_nrrd_reader_returns_the_written_masks(tmp_path, drawn):
    from CTTimeLib.core.geometry import grid_offset, whole_mask
    from CTTimeLib.io.segmentations import read_lesions

    masks, spacing, origin = drawn
    like = sitk.GetImageFromArray(np.zeros(masks[0].shape, np.int16))
    like.SetSpacing(spacing)
    like.SetOrigin(origin)
    path = corpus.write_seg(tmp_path / "random.seg.nrrd", {f"lesion {i}": m for i, m in enumerate(masks)}, like)
    read = read_lesions(path, like)
    assert [lesion.lesion_id for lesion in read] == [f"lesion {i}" for i in range(len(masks))]
    for lesion, mask in zip(read, masks):
        assert np.array_equal(sitk.GetArrayFromImage(whole_mask(lesion.mask, like)).astype(bool), mask)
        assert lesion.mask.GetSpacing() == pytest.approx(spacing) and grid_offset(lesion.mask, like) is not None


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
_CELLS = st.one_of(st.sampled_from(["", "P1", "BS", "ct.nrrd", "seg.nrrd", "missing.nrrd", " ", '"', ",", "\n"]), _TEXT)


@st.composite
def manifests(draw):
    if draw(st.booleans()):
        return draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=120))  # anything at all
    columns = draw(st.lists(st.sampled_from(["patient_id", "timepoint", "image", "segmentation", "batch", "x"]),
                            max_size=6))
    rows = draw(st.lists(st.lists(_CELLS, min_size=len(columns), max_size=len(columns)), max_size=5))
    quote = lambda text: '"' + text.replace('"', '""') + '"' if draw(st.booleans()) else text  # noqa: E731
    return "\n".join(",".join(quote(c) for c in row) for row in [columns] + rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(manifests())
def test_manifest_parser_returns_cases_or_lists_problems(tmp_path, text):
    from CTTimeLib.run.manifest import REQUIRED, read_manifest

    for name in ("ct.nrrd", "seg.nrrd"):
        (tmp_path / name).write_bytes(b"")
    path = tmp_path / "manifest.csv"
    path.write_text(text, encoding="utf-8")
    try:
        cases = read_manifest(path)
    except CTTimeError as exc:
        assert exc.kind == "manifest" and str(path) in str(exc)
        return
    assert cases
    for case in cases:
        assert all(getattr(case, column) for column in REQUIRED[:2])
        assert Path(case.image).exists() and Path(case.segmentation).exists()
