"""DICOM SEG + SR export (issue #14) on a real CT written as a DICOM series, scored by the real pipeline.

The files are read back by pydicom and highdicom, and checked by two validators no one here wrote: dicom3tools'
dciodvfy (Debian package dicom3tools) and dcmqi's converters (PyPI package dcmqi). A validator that is missing
here skips its test and says so.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk

from conftest import SAMPLE_DATA
from dicom_fixtures import write_ct_series

hd = pytest.importorskip("highdicom", reason="highdicom's releases for Python 3.9 predate NumPy 2")

from CTTimeLib.cli import commands  # noqa: E402
from CTTimeLib.core import colormap, geometry  # noqa: E402
from CTTimeLib.core.files import atomic_path  # noqa: E402
from CTTimeLib.core.resources import DEMO_REFERENCE  # noqa: E402
from CTTimeLib.io import images, segmentations  # noqa: E402
from CTTimeLib.io.colored_segmentation import write_colored_segmentation  # noqa: E402
from CTTimeLib.io.dicom_export import codes, tracking_uid  # noqa: E402
from CTTimeLib.core.lesions import Lesion  # noqa: E402

NAMES = {1: "liver_1", 2: "LN_2", 3: "bone_3", 4: "Knötchen_4"}  # bone_3 is drawn in air: it fails
SIGNATURE = ("original_shape_Elongation", "original_firstorder_90Percentile", "original_glcm_MaximumProbability",
             "original_glszm_SizeZoneNonUniformity")


def _ball(shape, centre, radius_mm, spacing):
    zz, yy, xx = np.indices(shape)
    return (((zz - centre[0]) * spacing[2]) ** 2 + ((yy - centre[1]) * spacing[1]) ** 2
            + ((xx - centre[2]) * spacing[0]) ** 2) < radius_mm ** 2


def _score(args):
    return commands.main(["score", "--reference", str(DEMO_REFERENCE)] + [str(a) for a in args])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """STS_019 as a CT series with four lesions (a labelmap): the real lesion, two soft-tissue balls (one with a
    non-ASCII ID, location "other") and one drawn in air; scored with --dicom."""
    folder = tmp_path_factory.mktemp("dicom_export")
    image = sitk.ReadImage(str(SAMPLE_DATA / "STS_019" / "CT_image.nii.gz"))
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz")))
    values = sitk.GetArrayFromImage(image)
    write_ct_series(image, folder / "ct")
    labels = mask.astype(np.uint8)
    soft = np.argwhere((values > -50) & (values < 150) & (mask == 0))
    for label, index in ((2, len(soft) // 3), (4, 2 * len(soft) // 3)):
        labels[_ball(values.shape, soft[index], 6, image.GetSpacing()) & (labels == 0)] = label
    air = np.argwhere(values < -900)[0]
    labels[air[0], air[1]:air[1] + 2, air[2]:air[2] + 2] = 3
    labelmap = sitk.GetImageFromArray(labels)
    labelmap.CopyInformation(image)
    sitk.WriteImage(labelmap, str(folder / "labels.nrrd"))
    names = [arg for value, name in NAMES.items() for arg in ("--label-name", f"{value}={name}")]
    code = _score(["--image", folder / "ct", "--segmentation", folder / "labels.nrrd", "--patient", "STS_019",
                   "--out", folder / "run", "--dicom"] + names)
    assert code == 3  # bone_3 failed; the DICOM files were written
    run = folder / "run"
    ct = images.read_image(folder / "ct")
    masks = {lesion.lesion_id: sitk.GetArrayFromImage(geometry.whole_mask(lesion.mask, ct))
             for lesion in segmentations.read_lesions(folder / "labels.nrrd", ct, NAMES)}
    return {"folder": folder, "run": run, "image": ct, "masks": masks,
            "seg": run / "STS_019_BS_cttime_seg.dcm", "sr": run / "STS_019_BS_cttime_sr.dcm",
            "lesions": _table(run / "lesions.csv").set_index("lesion_id"), "patients": _table(run / "patients.csv"),
            "ct_headers": [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted((folder / "ct").iterdir())]}


def _table(path):
    """A run-folder table with its numbers exactly as written (pandas' default parser may be 1 ulp off)."""
    return pd.read_csv(path, dtype={"lesion_id": str}, float_precision="round_trip")


def _seg_masks(path, image, ct_headers):
    """Segment label -> mask on the CT grid, each frame placed by the CT image it says it was derived from."""
    seg = pydicom.dcmread(path)
    by_uid = {h.SOPInstanceUID: h for h in ct_headers}
    pixels = seg.pixel_array.reshape(int(seg.NumberOfFrames), seg.Rows, seg.Columns)
    labels = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    masks = {label: np.zeros(image.GetSize()[::-1], np.uint8) for label in labels.values()}
    for frame, item in zip(pixels, seg.PerFrameFunctionalGroupsSequence):
        source = by_uid[item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        position = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        assert np.allclose(position, [float(v) for v in source.ImagePositionPatient], atol=1e-4)
        k = int(round(image.TransformPhysicalPointToContinuousIndex(position)[2]))
        masks[labels[int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)]][k] |= frame.astype(np.uint8)
    return seg, masks


def _code(item):
    return (item.value, item.scheme_designator)


def test_seg_masks_labels_colours_and_identity_are_ctTimes(study):
    seg, masks = _seg_masks(study["seg"], study["image"], study["ct_headers"])
    assert set(masks) == set(NAMES.values())  # the failed lesion is a segment too (in the failed colour)
    for label, mask in masks.items():
        assert np.array_equal(mask, study["masks"][label]), label
    ct = study["ct_headers"][0]
    for attribute in ("PatientID", "PatientName", "StudyInstanceUID", "FrameOfReferenceUID", "AccessionNumber"):
        assert seg.get(attribute) == ct.get(attribute), attribute
    assert seg.SeriesInstanceUID != ct.SeriesInstanceUID and seg.Modality == "SEG"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ct.SeriesInstanceUID
    lesions = study["lesions"]
    for segment in seg.SegmentSequence:
        label = segment.SegmentLabel
        score = lesions.loc[label, "ct_time_score"]
        rgb = hd.color.CIELabColor.from_dicom_value(segment.RecommendedDisplayCIELabValue).to_rgb()
        expected = [round(c * 255) for c in colormap.score_color(score if np.isfinite(score) else None)]
        assert max(abs(a - b) for a, b in zip(rgb, expected)) <= 1, label
        assert segment.TrackingID == label and segment.TrackingUID == tracking_uid("STS_019", label)
        assert _code(hd.sr.CodedConcept.from_dataset(segment.SegmentedPropertyTypeCodeSequence[0])) == (
            "108369006", "SCT")
        regions = [r.CodeValue for r in segment.get("AnatomicRegionSequence", [])]
        expected_region = {"liver": ["10200004"], "lymph node": ["59441001"], "bone": ["272673000"],
                           "other": []}[lesions.loc[label, "location"]]
        assert regions == expected_region, label
    assert colormap.score_color(None) == colormap.FAILED_COLOR  # bone_3's colour above was the failed one
    assert hd.seg.segread(study["seg"]).number_of_segments == 4


def _groups(path):
    report = hd.sr.srread(path).content
    return report, report.get_volumetric_roi_measurement_groups(), report.get_image_measurement_groups()


def _measurements(group):
    found = {}
    for m in group.get_measurements():
        derivation = m.derivation.value if m.derivation is not None else None
        found[(m.name.value, m.name.scheme_designator, derivation)] = (m.value, m.unit.value)
    return found


def test_every_sr_measurement_equals_the_tables(study):
    report, lesion_groups, patient_groups = _groups(study["sr"])
    lesions, patient = study["lesions"], study["patients"].iloc[0]
    seg = pydicom.dcmread(study["seg"])
    segment_labels = {int(s.SegmentNumber): s.SegmentLabel for s in seg.SegmentSequence}
    scored = lesions[lesions["ct_time_score"].notna()]
    assert sorted(g.tracking_identifier for g in lesion_groups) == sorted(scored.index)
    for group in lesion_groups:
        row = lesions.loc[group.tracking_identifier]
        assert group.tracking_uid == tracking_uid("STS_019", group.tracking_identifier)
        reference = group.referenced_segment[0].ReferencedSOPSequence[0]
        assert reference.ReferencedSOPInstanceUID == seg.SOPInstanceUID
        assert segment_labels[int(reference.ReferencedSegmentNumber)] == group.tracking_identifier
        found = _measurements(group)
        expected = {("SCORE", "99CTTIME", None): (row["ct_time_score"], "1"),
                    ("SCORE-REF-LOW", "99CTTIME", None): (row["ct_time_score_ref_low"], "1"),
                    ("SCORE-REF-HIGH", "99CTTIME", None): (row["ct_time_score_ref_high"], "1"),
                    ("118565006", "SCT", None): (row["original_shape_MeshVolume"], "mm3"),
                    ("103339001", "SCT", None): (row["longest_axial_diameter_mm"], "mm")}
        for feature in SIGNATURE:
            concept, unit = codes.FEATURES[feature]
            expected[(concept.value, "IBSI", None)] = (row[feature], unit.value)
        assert found == expected, group.tracking_identifier
        status = [e for e in group.get_qualitative_evaluations() if e.name.value == "STATUS"]
        assert [e.value.value for e in status] == [row["ct_time_status"].upper()]
        flags = {e.name.value: e.value.value for e in group.get_qualitative_evaluations()}
        assert flags["REF-ROBUST"] == ("373066001" if row["ct_time_status_reference_robust"] else "373067005")
        assert flags["OUTSIDE-REF"] == ("373066001" if row["outside_reference"] else "373067005")
    [group] = patient_groups
    found = _measurements(group)
    assert found[("LESIONS", "99CTTIME", None)] == (patient["n_lesions"], "1")
    assert found[("LESIONS-FAILED", "99CTTIME", None)] == (patient["n_failed"], "1") == (1, "1")
    for name, code in (("mean", "373098007"), ("median", "373099004"), ("min", "255605001"), ("max", "56851009"),
                       ("sd", "386136009")):
        assert found[("SCORE", "99CTTIME", code)] == (patient[f"ct_time_{name}"], "1"), name
        if name != "sd":
            assert found[("SCORE-REF-LOW", "99CTTIME", code)] == (patient[f"ct_time_{name}_ref_low"], "1"), name
            assert found[("SCORE-REF-HIGH", "99CTTIME", code)] == (patient[f"ct_time_{name}_ref_high"], "1"), name
    assert found[("118565006", "SCT", "255619001")] == (patient["total_volume_mm3"], "mm3")
    assert found[("C0JK", "IBSI", "255619001")] == (patient["total_surface_mm2"], "mm2")
    statuses = {e.name.value: e.value.value for e in group.get_qualitative_evaluations()}
    assert statuses["STATUS-MIN"] == patient["status_min"].upper()
    assert statuses["REFROBUST-MIN"] == ("373066001" if patient["status_min_reference_robust"] else "373067005")
    assert statuses["HETEROGENEITY"] == codes.HETEROGENEITY_LEVELS[patient["heterogeneity"]].value
    texts = {}
    for item in pydicom.dcmread(study["sr"]).ContentSequence[-1].ContentSequence:
        texts.setdefault(item.ConceptNameCodeSequence[0].CodeValue, []).append(item.TextValue)
    assert texts["STANDARDIZATION"] == [lesions["standardization"].iloc[0]]
    assert "NOT CLINICALLY CALIBRATED: demo reference" in texts["WARNING"]
    assert any(t.startswith("Acquisition outside CT-TIME's training domain: slice thickness") for t in texts["WARNING"])
    assert texts["NOT-SCORED"] == [f"bone_3: {lesions.loc['bone_3', 'error']}"]
    assert "Research use only" in texts["121106"][0]


def test_sr_references_the_seg_and_the_ct_and_names_its_codes(study):
    sr, ct = pydicom.dcmread(study["sr"]), study["ct_headers"][0]
    seg = pydicom.dcmread(study["seg"])
    for attribute in ("PatientID", "PatientName", "StudyInstanceUID"):
        assert sr.get(attribute) == ct.get(attribute), attribute
    assert sr.SeriesInstanceUID not in (ct.SeriesInstanceUID, seg.SeriesInstanceUID)
    evidence = {item.SeriesInstanceUID: {i.ReferencedSOPInstanceUID for i in item.ReferencedSOPSequence}
                for study_item in sr.CurrentRequestedProcedureEvidenceSequence
                for item in study_item.ReferencedSeriesSequence}
    assert evidence[seg.SeriesInstanceUID] == {seg.SOPInstanceUID}
    assert evidence[ct.SeriesInstanceUID] == {h.SOPInstanceUID for h in study["ct_headers"]}
    assert sr.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99CTTIME"
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.SpecificCharacterSet) == ("COMPLETE", "UNVERIFIED",
                                                                                 "ISO_IR 192")
    assert not list(study["run"].glob(".*.part"))  # written atomically: no temporary file left


def test_dicom_export_of_the_run_folder_writes_the_same(study, tmp_path):
    """`cttime dicom-export RUN_DIR` reads the lesions from the run's coloured .seg.nrrd (the labelmap's names
    are not in lesions.csv) and writes the same masks and values, in new instances."""
    run = tmp_path / "run"
    shutil.copytree(study["run"], run, ignore=shutil.ignore_patterns("*.dcm", "cache"))
    assert commands.main(["dicom-export", str(run)]) == 0
    first, again = pydicom.dcmread(study["seg"]), pydicom.dcmread(run / study["seg"].name)
    assert np.array_equal(first.pixel_array, again.pixel_array) and first.SOPInstanceUID != again.SOPInstanceUID
    assert [s.SegmentLabel for s in first.SegmentSequence] == [s.SegmentLabel for s in again.SegmentSequence]
    assert [_measurements(g) for g in _groups(study["sr"])[1]] == [_measurements(g) for g in _groups(
        run / study["sr"].name)[1]]


def test_seg_and_sr_name_their_run_and_a_rescore_moves_them_aside(study, tmp_path):
    """Both objects carry run.json's run_id in their Series Description (and the SR in its comment); a rescore into
    the folder writes no DICOM, so the earlier SEG and SR, which show the earlier scores, move to superseded/."""
    run = tmp_path / "run"
    shutil.copytree(study["run"], run, ignore=shutil.ignore_patterns("cache"))
    run_id = json.loads((run / "run.json").read_text())["run_id"]
    seg, sr = pydicom.dcmread(run / study["seg"].name), pydicom.dcmread(run / study["sr"].name)
    assert seg.SeriesDescription == f"CT-TIME lesions, run {run_id}"
    assert sr.SeriesDescription == f"CT-TIME report, run {run_id}"
    assert f"run {run_id} (run.json)".encode() in (run / study["sr"].name).read_bytes()  # the comment
    assert commands.main(["rescore", str(run / "lesions.csv"), "--out", str(run), "--standardize", "cohort"]) == 3
    record = json.loads((run / "run.json").read_text())
    assert record["run_id"] != run_id
    assert {study["seg"].name, study["sr"].name} <= set(record["leftovers"])
    assert not list(run.glob("*.dcm")) and (run / "superseded" / study["sr"].name).exists()


def test_delineation_robustness_columns_when_present(study, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(study["run"], run, ignore=shutil.ignore_patterns("*.dcm", "cache"))
    table = _table(run / "lesions.csv")
    table["ct_time_score_low"] = table["ct_time_score"] - 0.05
    table["ct_time_score_high"] = table["ct_time_score"] + 0.05
    table["ct_time_status_robust"] = [True, False, None, True]
    table.to_csv(run / "lesions.csv", index=False)
    assert commands.main(["dicom-export", str(run)]) == 0
    rows = table.set_index("lesion_id")
    for group in _groups(run / study["sr"].name)[1]:
        row, found = rows.loc[group.tracking_identifier], _measurements(group)
        assert found[("SCORE-LOW", "99CTTIME", None)] == (row["ct_time_score_low"], "1")
        assert found[("SCORE-HIGH", "99CTTIME", None)] == (row["ct_time_score_high"], "1")
        robust = {e.name.value: e.value.value for e in group.get_qualitative_evaluations()}["STATUS-ROBUST"]
        assert robust == ("373066001" if row["ct_time_status_robust"] else "373067005")
    without = [m for g in _groups(study["sr"])[1] for m in _measurements(g)]
    assert not [m for m in without if m[0] in ("SCORE-LOW", "SCORE-HIGH")]


def test_overlapping_lesions_keep_their_own_masks(study, tmp_path):
    """Lesions that overlap (segments in several .seg.nrrd layers) become overlapping SEG segments."""
    image = study["image"]
    first = sitk.GetArrayFromImage(sitk.ReadImage(str(SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz")))
    second = np.zeros_like(first)
    k, j, i = np.argwhere(first)[len(np.argwhere(first)) // 2]
    second[k - 1:k + 2, j - 4:j + 5, i - 4:i + 5] = 1
    lesions = [Lesion(name, geometry.lesion_mask(array, image), "liver") for name, array in
               (("liver_1", first), ("liver_2", second))]
    write_colored_segmentation(tmp_path / "two.seg.nrrd", image, lesions, {})
    assert _score(["--image", study["folder"] / "ct", "--segmentation", tmp_path / "two.seg.nrrd", "--patient",
                   "P2", "--out", tmp_path / "run", "--dicom"]) == 0
    _, masks = _seg_masks(tmp_path / "run" / "P2_BS_cttime_seg.dcm", image, study["ct_headers"])
    assert np.array_equal(masks["liver_1"], first) and np.array_equal(masks["liver_2"], second)
    assert (masks["liver_1"] & masks["liver_2"]).any()


def test_a_ct_that_is_not_dicom_gets_a_message_and_the_rest_is_written(tmp_path, capsys):
    image, mask = SAMPLE_DATA / "STS_019" / "CT_image.nii.gz", SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz"
    assert _score(["--image", image, "--segmentation", mask, "--patient", "P1", "--out", tmp_path, "--dicom"]) == 3
    err = capsys.readouterr().err
    assert f"No DICOM SEG/SR for P1 BS: its CT {image} is not DICOM" in err and "Traceback" not in err
    assert (tmp_path / "lesions.csv").exists() and (tmp_path / "P1_BS_cttime.seg.nrrd").exists()
    assert not list(tmp_path.glob("*.dcm"))
    assert commands.main(["dicom-export", str(tmp_path)]) == 3
    assert commands.main(["dicom-export", str(tmp_path / "nowhere")]) == 2
    assert "Lesions table not found" in capsys.readouterr().err


def test_atomic_files_are_readable_by_other_users(tmp_path):
    """A PACS sender often runs as another user: outputs get the usual permissions, not mkstemp's 0600."""
    with atomic_path(tmp_path / "x.dcm") as temporary:
        Path(temporary).write_bytes(b"x")
    assert (tmp_path / "x.dcm").stat().st_mode & 0o044 == 0o044


# ---------------------------------------------------------------- validators no one here wrote


def _tool(name):
    """A validator's executable: beside this Python (a venv's bin) or on PATH; skip (saying why) without it."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        package = "dicom3tools (apt-get install dicom3tools)" if name.startswith("dc") else "dcmqi (pip install dcmqi)"
        pytest.skip(f"{name} not found: install {package} to run this validation")
    return found


def test_dciodvfy_finds_no_error_in_either_file(study):
    dciodvfy = _tool("dciodvfy")
    for path in (study["seg"], study["sr"]):
        result = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True)
        lines = (result.stdout + result.stderr).splitlines()
        assert not [line for line in lines if line.startswith("Error")], path
        # the one warning allowed: dciodvfy does not know the private coding scheme (declared in the SR header)
        assert all("<99CTTIME>" in line for line in lines if line.startswith("Warning")), path
    headers = sorted(str(p) for p in (study["folder"] / "ct").iterdir())
    result = subprocess.run([_tool("dcentvfy")] + headers + [str(study["seg"]), str(study["sr"])],
                            capture_output=True, text=True)
    assert not [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


def test_dcmqi_reads_back_the_masks_colours_and_values(study, tmp_path):
    subprocess.run([_tool("segimage2itkimage"), "--inputDICOM", str(study["seg"]), "--outputDirectory",
                    str(tmp_path), "-t", "nrrd"], check=True, capture_output=True)
    meta = json.loads((tmp_path / "meta.json").read_text(encoding="utf-8"))
    lesions = study["lesions"]
    for [segment] in meta["segmentAttributes"]:
        label = segment["SegmentLabel"]
        read = sitk.ReadImage(str(tmp_path / f"{segment['labelID']}.nrrd"))
        on_ct = sitk.Resample(read, study["image"], sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        assert np.array_equal(sitk.GetArrayFromImage(on_ct) != 0, study["masks"][label] != 0), label
        score = lesions.loc[label, "ct_time_score"]
        expected = [round(c * 255) for c in colormap.score_color(score if np.isfinite(score) else None)]
        assert max(abs(a - b) for a, b in zip(segment["recommendedDisplayRGBValue"], expected)) <= 1, label
    assert sorted(s[0]["SegmentLabel"] for s in meta["segmentAttributes"]) == sorted(NAMES.values())
    subprocess.run([_tool("tid1500reader"), "--inputDICOM", str(study["sr"]), "--outputMetadata",
                    str(tmp_path / "sr.json")], check=True, capture_output=True)
    groups = json.loads((tmp_path / "sr.json").read_text(encoding="utf-8"))["Measurements"]
    by_code = {"SCORE": "ct_time_score", "118565006": "original_shape_MeshVolume",
               "103339001": "longest_axial_diameter_mm", "SCORE-REF-LOW": "ct_time_score_ref_low",
               "SCORE-REF-HIGH": "ct_time_score_ref_high"}
    by_code.update({codes.FEATURES[f][0].value: f for f in SIGNATURE})
    checked = 0
    for group in groups:
        if group["TrackingIdentifier"] not in lesions.index:
            continue  # the patient's group
        row = lesions.loc[group["TrackingIdentifier"]]
        for item in group["measurementItems"]:
            column = by_code[item["quantity"]["CodeValue"]]
            # DS text holds up to 16 characters: the value to its printed precision
            assert float(item["value"]) == pytest.approx(row[column], rel=1e-10, abs=1e-300), column
            checked += 1
    assert checked == lesions["ct_time_score"].notna().sum() * (5 + len(SIGNATURE))
