"""The Slicer module's logic (CTTimeMRML) on Slicer's real core libraries (the slicer-core wheels).

A real vtkMRMLScene; the sample CTs and masks read with Slicer's own storage nodes; segments exported through the
real vtkSlicerSegmentationsModuleLogic; coloured segmentations written by vtkMRMLSegmentationStorageNode and read
back by Slicer, slicerio and CTTimeLib. slicer.util needs ``slicer.mrmlScene`` and
``slicer.modules.segmentations.logic()``: the fixture binds exactly those two names to the real scene and the real
logic class.
"""

import os
import types

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import slicerio

slicer = pytest.importorskip("slicer", reason="slicer-core (Slicer's core libraries) has wheels for Python >= 3.10")

import CTTimeMRML
from CTTimeLib.core import colormap, geometry, tags
from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.resources import DEMO_REFERENCE, SAMPLE_DATA
from CTTimeLib.io import segmentations
from CTTimeLib.run import pipeline
from segment_edits import edit_segment

CASES = ("STS_019", "STS_025")


@pytest.fixture
def scene():
    scene = slicer.vtkMRMLScene()
    saved = {name: getattr(slicer, name) for name in ("mrmlScene", "modules") if hasattr(slicer, name)}
    slicer.mrmlScene = scene
    slicer.modules = types.SimpleNamespace(
        segmentations=types.SimpleNamespace(logic=slicer.vtkSlicerSegmentationsModuleLogic))
    yield scene
    for name in ("mrmlScene", "modules"):
        delattr(slicer, name)
    for name, value in saved.items():
        setattr(slicer, name, value)


def _read_volume(scene, class_name, path):
    node = scene.AddNewNodeByClass(class_name)
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    assert storage.ReadData(node), path
    node.SetAndObserveStorageNodeID(storage.GetID())
    return node


def _load_study(scene, case, lesion_name="LU_1"):
    """The sample CT and its mask as a segmentation node, the way Slicer imports a labelmap."""
    volume = _read_volume(scene, "vtkMRMLScalarVolumeNode", SAMPLE_DATA / case / "CT_image.nii.gz")
    labelmap = _read_volume(scene, "vtkMRMLLabelMapVolumeNode", SAMPLE_DATA / case / "CT_mask.nii.gz")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{case} lesions")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    CTTimeMRML.segments(segmentation)[0][1].SetName(lesion_name)
    study = CTTimeMRML.Study(segmentation, volume, case, "BS")
    CTTimeMRML.remember_study(study)
    return study


def _cli(cases, out, standardize, names=None, perturbations=0, features="signature"):
    return pipeline.run([pipeline.Case(c, "BS", str(SAMPLE_DATA / c / "CT_image.nii.gz"),
                                       str(SAMPLE_DATA / c / "CT_mask.nii.gz"), names={1: (names or {}).get(c, "LU_1")})
                         for c in cases], out, pipeline.Options(standardize=str(standardize),
                                                                perturbations=perturbations, features=features))


def test_volume_node_becomes_the_ct_simpleitk_reads(scene):
    study = _load_study(scene, "STS_019")
    image = CTTimeMRML.volume_to_image(study.volume_node)
    expected = sitk.ReadImage(str(SAMPLE_DATA / "STS_019" / "CT_image.nii.gz"))
    assert image.GetSize() == expected.GetSize()
    np.testing.assert_allclose(image.GetSpacing(), expected.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(image.GetOrigin(), expected.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(image.GetDirection(), expected.GetDirection(), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(expected))


def test_segment_exported_by_slicer_equals_the_mask_file(scene):
    study = _load_study(scene, "STS_019")
    image = CTTimeMRML.volume_to_image(study.volume_node)
    [lesion] = CTTimeMRML.lesions_from_segmentation(study.segmentation_node, study.volume_node, image)
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz"))) > 0
    assert lesion.lesion_id == "LU_1" and lesion.location == "lung"
    assert expected.sum() > 1000
    np.testing.assert_array_equal(sitk.GetArrayFromImage(geometry.whole_mask(lesion.mask, image)).astype(bool),
                                  expected)
    assert geometry.grid_offset(lesion.mask, image) is not None


def test_features_and_scores_equal_the_cli(scene, tmp_path):
    """The panel scores with CTTime's engine, as `cttime --features signature` does; its features and scores equal
    pyradiomics' (`--features all`), the columns it does not compute are left empty."""
    studies = [_load_study(scene, case) for case in CASES]
    results = CTTimeMRML.compute(studies, DEMO_REFERENCE)
    cli = _cli(CASES, tmp_path / "cli", DEMO_REFERENCE).lesions
    pyradiomics = _cli(CASES, tmp_path / "all", DEMO_REFERENCE, features="all").lesions
    assert list(results.lesions.columns) == list(cli.columns) == list(pyradiomics.columns)
    features = [c for c in cli.columns if c.startswith("original_")]
    assert len(features) == 107
    computed = [c for c in features if results.lesions[c].notna().all()]
    assert len(computed) == 17 and results.lesions[[c for c in features if c not in computed]].isna().all().all()
    ours = results.lesions[computed].to_numpy(float)
    np.testing.assert_array_equal(ours, cli[computed].to_numpy(float))
    np.testing.assert_allclose(ours, pyradiomics[computed].to_numpy(float), rtol=1e-12, atol=0)
    for other in (cli, pyradiomics):
        np.testing.assert_allclose(results.lesions["ct_time_score"], other["ct_time_score"], rtol=1e-12)
        assert list(results.lesions["ct_time_status"]) == list(other["ct_time_status"])
    assert results.lesions["standardization"].str.startswith("CTTime engine features, reference demo-sts").all()
    assert any("NOT CLINICALLY CALIBRATED" in w for w in results.warnings)


def test_cohort_of_the_scene_is_z_scored_like_the_cli_cohort(scene, tmp_path):
    current = _load_study(scene, "STS_019")
    _load_study(scene, "STS_025")
    copy = _load_study(scene, "STS_025")  # a second segmentation of the same study is not a second study
    copy.segmentation_node.SetName("copy")
    studies = CTTimeMRML.scene_studies(scene, current)
    assert [s.patient_id for s in studies] == ["STS_019", "STS_025"]
    assert studies[1].segmentation_node.GetName() == "STS_025 lesions"
    results = CTTimeMRML.compute(studies, pipeline.COHORT)
    cli = _cli(CASES, tmp_path / "cli", pipeline.COHORT).lesions
    z = [c for c in cli.columns if c.startswith("z_")]
    np.testing.assert_allclose(results.lesions[z].to_numpy(float), cli[z].to_numpy(float), rtol=1e-9)
    np.testing.assert_allclose(results.lesions["ct_time_score"], cli["ct_time_score"], rtol=1e-9)
    assert results.lesions["standardization"].str.startswith("CTTime engine features, cohort z-score over 2").all()


def test_recolouring_tags_and_table(scene):
    study = _load_study(scene, "STS_019")
    segmentation = study.segmentation_node.GetSegmentation()
    empty_id = segmentation.AddEmptySegment("", "liver_2")  # a lesion that fails must not cost the other
    CTTimeMRML.set_target(segmentation.GetSegment(empty_id), True)
    results = CTTimeMRML.compute([study], DEMO_REFERENCE)
    CTTimeMRML.apply_results(study, results)
    rows = results.lesions.set_index("lesion_id")
    score = rows.loc["LU_1", "ct_time_score"]
    assert 0 < score < 1 and "empty" in rows.loc["liver_2", "error"]

    lesion = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("LU_1"))
    np.testing.assert_allclose(lesion.GetColor(), colormap.score_color(score), atol=1e-6)
    assert CTTimeMRML.get_tag(lesion, tags.SCORE_TAG) == f"{score:.6f}"
    assert CTTimeMRML.get_tag(lesion, tags.STATUS_TAG) == rows.loc["LU_1", "ct_time_status"]
    assert CTTimeMRML.get_tag(lesion, tags.LOCATION_TAG) == "lung"
    assert "NOT CLINICALLY CALIBRATED" in CTTimeMRML.get_tag(lesion, tags.STANDARDIZATION_TAG)
    failed = segmentation.GetSegment(empty_id)
    np.testing.assert_allclose(failed.GetColor(), colormap.FAILED_COLOR, atol=1e-6)
    assert CTTimeMRML.get_tag(failed, tags.STATUS_TAG) == "failed"
    assert "empty" in CTTimeMRML.get_tag(failed, tags.ERROR_TAG)
    assert CTTimeMRML.get_tag(failed, tags.LOCATION_TAG) == "liver"

    table = scene.AddNewNodeByClass("vtkMRMLTableNode")
    CTTimeMRML.fill_table_node(table, results, CTTimeMRML.targets([study]))
    assert table.GetNumberOfRows() == 2 + 4 and table.GetNumberOfColumns() == len(CTTimeMRML.TABLE_COLUMNS)
    header = [table.GetColumnName(i) for i in range(table.GetNumberOfColumns())]
    cell = {(r, name): table.GetCellText(r, i) for r in range(table.GetNumberOfRows()) for i, name in enumerate(header)}
    assert cell[(0, "Lesion")] == "LU_1" and cell[(1, "Lesion")] == "liver_2"
    assert float(cell[(0, "CT-TIME score")]) == pytest.approx(score, rel=1e-5)
    assert cell[(1, "Target")] == "yes" and cell[(0, "Target")] == ""
    assert cell[(1, "Status")] == "failed" and "empty" in cell[(1, "Note")]
    assert [cell[(r, "Lesion")] for r in range(2, 6)] == [f"[patient {n}]" for n in ("min", "median", "mean", "max")]
    assert float(cell[(2, "CT-TIME score")]) == pytest.approx(score, rel=1e-5)
    # what the aggregates stand on, and the lesion that sets the minimum
    assert "INCOMPLETE: 1 of 2 lesions scored, 1 failed" in cell[(2, "Note")] and "minimum set by LU_1" in cell[(2, "Note")]
    assert cell[(0, "Patient minimum")] == CTTimeMRML.results.MINIMUM_MARK and cell[(1, "Patient minimum")] == ""
    assert cell[(2, "Patient minimum")] == "LU_1" and "INCOMPLETE" in cell[(2, "Warning")]
    assert 0.9 < float(cell[(0, "Soft-tissue share")]) <= 1.0
    # the standardisation interval of the lesion and of the patient's minimum, and the lesion inside the reference
    low, high = float(cell[(0, "Reference low")]), float(cell[(0, "Reference high")])
    assert low < score < high and (low, high) == (float(cell[(2, "Reference low")]), float(cell[(2, "Reference high")]))
    assert cell[(0, "Status within the reference's uncertainty")] == ("robust" if (low > 0.5) == (high > 0.5)
                                                                      else "uncertain")
    assert cell[(0, "Outside reference")] == "no" and cell[(1, "Outside reference")] == ""
    assert "NOT CLINICALLY CALIBRATED" in cell[(0, "Warning")]
    lines = CTTimeMRML.summary_lines(results)
    assert lines[0].startswith("STS_019 BS: INCOMPLETE: 1 of 2 lesions scored") and "set by LU_1" in lines[0]


@pytest.mark.skipif(os.name != "posix", reason="the lock holder uses fcntl")
def test_the_slicer_export_takes_the_run_folders_lock(scene, tmp_path):
    """While a `cttime` run holds the folder, the panel's export and board are refused, naming the run."""
    from conftest import folder_locked

    study = _load_study(scene, "STS_019")
    results = CTTimeMRML.compute([study], DEMO_REFERENCE)
    with folder_locked(tmp_path) as holder:
        for write in (lambda: CTTimeMRML.export(tmp_path, results, [study]),
                      lambda: CTTimeMRML.write_board(tmp_path, results, study)):
            with pytest.raises(CTTimeError, match=f"Another CTTime run \\(process {holder}\\) is writing to"):
                write()
        assert not (tmp_path / "lesions.csv").exists() and not list(tmp_path.glob("*.png"))
    assert [f.name for f in CTTimeMRML.export(tmp_path, results, [study])][:2] == ["lesions.csv", "patients.csv"]


def test_coloured_segmentation_written_by_slicer_reads_back(scene, tmp_path):
    study = _load_study(scene, "STS_019")
    CTTimeMRML.set_target(CTTimeMRML.segments(study.segmentation_node)[0][1], True)
    results = CTTimeMRML.compute([study], DEMO_REFERENCE)
    CTTimeMRML.apply_results(study, results)
    files = CTTimeMRML.export(tmp_path, results, [study])
    assert [f.name for f in files] == ["lesions.csv", "patients.csv", "STS_019_BS_cttime.seg.nrrd"]
    score = results.lesions["ct_time_score"].iloc[0]
    color = colormap.score_color(score)

    reread = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")  # Slicer's own reader
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(files[2]))
    assert storage.ReadData(reread)
    [(_, segment)] = CTTimeMRML.segments(reread)
    assert segment.GetName() == "LU_1"
    np.testing.assert_allclose(segment.GetColor(), color, atol=1e-6)
    assert CTTimeMRML.get_tag(segment, tags.SCORE_TAG) == f"{score:.6f}"
    assert CTTimeMRML.is_target(segment)

    seg = slicerio.read_segmentation(str(files[2]))  # slicerio, as other tools read it
    [entry] = seg["segments"]
    np.testing.assert_allclose(entry["color"], color, atol=1e-5)
    assert entry["tags"][tags.TARGET_TAG] == "true" and entry["tags"][tags.MODEL_TAG] == "CT-TIME"
    assert not entry.get("colorAutoGenerated", False)

    image = sitk.ReadImage(str(SAMPLE_DATA / "STS_019" / "CT_image.nii.gz"))  # the CLI's reader: same lesion
    [lesion] = segmentations.read_lesions(files[2], image)
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz"))) > 0
    np.testing.assert_array_equal(sitk.GetArrayFromImage(geometry.whole_mask(lesion.mask, image)).astype(bool),
                                  expected)
    assert lesion.lesion_id == "LU_1" and lesion.location == "lung"

    lesions = pd.read_csv(files[0])
    assert lesions["ct_time_score"].iloc[0] == pytest.approx(score, rel=1e-12)
    assert lesions["image"].iloc[0].endswith("CT_image.nii.gz")
    assert list(pd.read_csv(files[1]).columns) == list(results.patients.columns)


def test_location_and_target_tags(scene):
    study = _load_study(scene, "STS_019", lesion_name="node 3")
    _, segment = CTTimeMRML.segments(study.segmentation_node)[0]
    assert CTTimeMRML.segment_location(segment) == "lymph node" and not CTTimeMRML.is_target(segment)
    CTTimeMRML.set_location(segment, "bone")
    CTTimeMRML.set_target(segment, True)
    assert CTTimeMRML.get_tag(segment, tags.LOCATION_TAG) == "bone" and CTTimeMRML.is_target(segment)
    image = CTTimeMRML.volume_to_image(study.volume_node)
    [lesion] = CTTimeMRML.lesions_from_segmentation(study.segmentation_node, study.volume_node, image)
    assert lesion.location == "bone" and lesion.tags[tags.TARGET_TAG] == "true"
    with pytest.raises(CTTimeError, match="unknown location"):
        CTTimeMRML.set_location(segment, "brain")


def test_empty_segmentation_and_non_ct_volume_are_user_errors(scene):
    study = _load_study(scene, "STS_019")
    study.segmentation_node.GetSegmentation().RemoveAllSegments()
    with pytest.raises(CTTimeError, match="no segment"):
        CTTimeMRML.compute([study], DEMO_REFERENCE)
    slicer.util.arrayFromVolume(study.volume_node)[:] = 7  # not CT in HU
    study.volume_node.Modified()
    with pytest.raises(CTTimeError, match="does not look like CT"):
        CTTimeMRML.volume_to_image(study.volume_node)


def test_names_that_cannot_keep_their_identity_are_user_errors(scene):
    study = _load_study(scene, "STS_019", lesion_name="LU\r1")
    with pytest.raises(CTTimeError, match="segment name 'LU\\\\r1' holds the control character"):
        CTTimeMRML.compute([study], DEMO_REFERENCE)
    CTTimeMRML.segments(study.segmentation_node)[0][1].SetName("LU_1")
    other = CTTimeMRML.Study(study.segmentation_node, study.volume_node, "sts_019", "BS")
    with pytest.raises(CTTimeError, match="differ only in letter case"):
        CTTimeMRML.compute([study, other], DEMO_REFERENCE)


def test_tumour_board_figure_from_the_scene(scene, tmp_path):
    study = _load_study(scene, "STS_019")
    results = CTTimeMRML.compute([study], DEMO_REFERENCE)
    [path] = CTTimeMRML.write_board(tmp_path, results, study)
    png = sitk.ReadImage(str(path))
    assert png.GetSize()[0] > 500 and png.GetSize()[1] > 300


def test_dicom_seg_and_sr_from_the_scene_equal_the_cli(scene, tmp_path):
    """The panel's "Export DICOM SEG + SR" (given the CT's DICOM files, as Slicer's DICOM database holds them)
    writes what `cttime score --dicom` writes: the same masks, labels and values."""
    pytest.importorskip("highdicom", reason="highdicom's releases for Python 3.9 predate NumPy 2")
    import pydicom
    from dicom_fixtures import write_ct_series

    ct_files = [str(d.filename) for d in write_ct_series(
        sitk.ReadImage(str(SAMPLE_DATA / "STS_019" / "CT_image.nii.gz")), tmp_path / "ct")]
    study = _load_study(scene, "STS_019")
    results = CTTimeMRML.compute([study], DEMO_REFERENCE)
    seg_path, sr_path = CTTimeMRML.write_dicom(tmp_path / "scene", results, study, ct_files)
    cli = _cli(["STS_019"], tmp_path / "cli", DEMO_REFERENCE)  # the same voxels, as the CLI scores them
    from CTTimeLib.run import dicom_results, study as cli_study

    case = pipeline.Case("STS_019", "BS", str(SAMPLE_DATA / "STS_019" / "CT_image.nii.gz"),
                         str(SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz"), names={1: "LU_1"})
    image, lesions = cli_study.read_case(case)
    cli_files = dicom_results.write_study(tmp_path / "cli", ct_files, image, lesions, cli.lesions,
                                          cli.patients.iloc[0].to_dict())
    scene_seg, cli_seg = pydicom.dcmread(seg_path), pydicom.dcmread(cli_files[0])
    assert np.array_equal(scene_seg.pixel_array, cli_seg.pixel_array) and scene_seg.pixel_array.any()
    assert [s.SegmentLabel for s in scene_seg.SegmentSequence] == ["LU_1"]
    values = [[(item.ConceptNameCodeSequence[0].CodeValue, float(item.MeasuredValueSequence[0].FloatingPointValue))
               for item in pydicom.dcmread(path).ContentSequence[-2].ContentSequence[0].ContentSequence
               if item.ValueType == "NUM"] for path in (sr_path, cli_files[1])]
    assert values[0] == values[1] and len(values[0]) == 9  # score and its interval, 4 features, size
    assert scene_seg.PatientID == pydicom.dcmread(ct_files[0]).PatientID


def test_missing_packages_are_named_by_their_pip_requirement():
    assert CTTimeMRML.missing_packages() == []  # everything is installed in the test environment
    assert CTTimeMRML.missing_packages({"radiomics": "pyradiomics", "no_such_module_cttime": "cttime-missing"}) == [
        "cttime-missing"]


def test_progress_reaches_the_end_and_cancel_stops(scene):
    from CTTimeLib.core.errors import Cancelled

    studies = [_load_study(scene, case) for case in CASES]
    calls = []
    CTTimeMRML.compute(studies, DEMO_REFERENCE, progress=lambda done, total, message: calls.append((done, total)))
    assert calls[-1] == (200, 200) and all(d <= t for d, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    colours = [segment.GetColor() for s in studies for _, segment in CTTimeMRML.segments(s.segmentation_node)]
    with pytest.raises(Cancelled):
        CTTimeMRML.compute(studies, DEMO_REFERENCE, cancelled=lambda: True)
    assert colours == [segment.GetColor() for s in studies for _, segment in CTTimeMRML.segments(s.segmentation_node)]


def test_perturbations_give_the_clis_intervals_tags_table_and_export(scene, tmp_path):
    study = _load_study(scene, "STS_019")
    results = CTTimeMRML.compute([study], DEMO_REFERENCE, perturbations=3)
    cli = _cli(("STS_019",), tmp_path / "cli", str(DEMO_REFERENCE), perturbations=3).lesions
    columns = ["ct_time_score_low", "ct_time_score_high", "ct_time_perturbations"]
    np.testing.assert_allclose(results.lesions[columns].to_numpy(float), cli[columns].to_numpy(float), rtol=1e-9)
    row = results.lesions.iloc[0]
    assert row["ct_time_perturbations"] == 3 and row["ct_time_score_low"] <= row["ct_time_score"]
    CTTimeMRML.apply_results(study, results)
    lesion = CTTimeMRML.segments(study.segmentation_node)[0][1]
    assert CTTimeMRML.get_tag(lesion, tags.SCORE_INTERVAL_TAG) == \
        f"{row['ct_time_score_low']:.6f}-{row['ct_time_score_high']:.6f}"
    assert CTTimeMRML.get_tag(lesion, tags.STATUS_ROBUST_TAG) == ("robust" if row["ct_time_status_robust"]
                                                                  else "uncertain")
    table = scene.AddNewNodeByClass("vtkMRMLTableNode")
    CTTimeMRML.fill_table_node(table, results)
    header = [table.GetColumnName(i) for i in range(table.GetNumberOfColumns())]
    assert float(table.GetCellText(0, header.index("Score low"))) == pytest.approx(row["ct_time_score_low"], rel=1e-5)
    assert table.GetCellText(0, header.index("Re-delineations")) == "3"
    assert table.GetCellText(2, header.index("Status under re-delineation")) in ("robust", "uncertain")
    files = CTTimeMRML.export(tmp_path / "export", results, [study])
    assert [f.name for f in files][:3] == ["lesions.csv", "patients.csv", "perturbations.csv"]
    assert len(pd.read_csv(files[2])) == 3


def test_segment_editor_edits_raise_the_events_live_scores_observe(scene):
    """An effect's change of a segment's voxels (vtkSegmentationModifier) raises SourceRepresentationModified, which
    CTTimeMRML.edit_events() holds, and no SegmentModified (vtkSegmentation.h: not invoked when a representation's
    content changes)."""
    node = _load_study(scene, "STS_019").segmentation_node
    segment_id = CTTimeMRML.segments(node)[0][0]
    raised = []
    for event in CTTimeMRML.edit_events() + [slicer.vtkSegmentation.SegmentModified]:
        node.GetSegmentation().AddObserver(event, lambda caller, name, event=event: raised.append(event))
    edit_segment(node, segment_id, lambda mine: mine & (np.cumsum(mine, axis=0) > 1))
    assert slicer.vtkSegmentation.SourceRepresentationModified in raised
    assert slicer.vtkSegmentation.SegmentModified not in raised


def test_live_scores_rescore_only_the_edited_lesion(scene, tmp_path):
    """After a Compute, editing one segment's labelmap rescores that lesion alone, against the Compute's
    standardisation, as computing the edited study against the same means and SDs does."""
    study = _load_study(scene, "STS_019")
    node = study.segmentation_node
    labelmap = _read_volume(scene, "vtkMRMLLabelMapVolumeNode", SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz")
    upper = slicer.util.arrayFromVolume(labelmap)
    slices = np.flatnonzero(upper.any(axis=(1, 2)))
    upper[: slices[len(slices) // 2]] = 0  # the tumour's upper half: a second lesion
    labelmap.Modified()
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, node)
    first, second = [segment_id for segment_id, _ in CTTimeMRML.segments(node)]
    node.GetSegmentation().GetSegment(second).SetName("LU_2")
    results = CTTimeMRML.compute([study], pipeline.COHORT)
    live = CTTimeMRML.LiveScores(study, results)
    assert live.changed() == [] and live.update() == {}
    before = dict(live.scores)

    def without_last_slice(mine):
        mine[np.flatnonzero(mine.any(axis=(1, 2)))[-1]] = False
        return mine

    edit_segment(node, first, without_last_slice)
    assert live.changed() == [first]
    updated = live.update()
    assert list(updated) == [first] and live.scores[second] == before[second] and live.changed() == []
    assert updated[first].score != before[first].score and updated[first].status in ("inflamed", "uninflamed")
    expected = CTTimeMRML.compute([study], results.reference).lesions.set_index("lesion_id").loc["LU_1"]
    assert updated[first].score == pytest.approx(expected["ct_time_score"], rel=1e-12, abs=0)
    segment = node.GetSegmentation().GetSegment(first)
    assert CTTimeMRML.get_tag(segment, tags.SCORE_TAG) == f"{updated[first].score:.6f}"
    for got, want in zip(segment.GetColor(), colormap.score_color(updated[first].score)):
        assert got == pytest.approx(want, abs=1e-6)

    edit_segment(node, second, np.zeros_like)
    failed = live.update()
    assert list(failed) == [second] and failed[second].score is None and failed[second].status == "failed"
    assert "is empty" in failed[second].error and live.scores[first] == updated[first]

    moved = _read_volume(scene, "vtkMRMLLabelMapVolumeNode", SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz")
    whole = slicer.util.arrayFromVolume(moved)
    whole[:] = np.roll(whole.copy(), -40, axis=2)  # the tumour's mask 39 mm sideways: mostly over air and fat
    moved.Modified()
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(moved, node)
    (third,) = [segment_id for segment_id, _ in CTTimeMRML.segments(node) if segment_id not in (first, second)]
    node.GetSegmentation().GetSegment(third).SetName("LU_3")
    slipped = live.update()
    assert list(slipped) == [third] and slipped[third].status == "failed" and "drawn voxels" in slipped[third].error
    assert "the drawing lies mostly outside soft tissue; is the mask mirrored" in slipped[third].error

def _line_node(scene, name, start, end):
    """A real line markup drawn from LPS end points (Slicer keeps RAS)."""
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", name)
    for point in (start, end):
        node.AddControlPoint(-point[0], -point[1], point[2])
    return node


def test_lesions_proposed_from_line_markups_become_tagged_segments_scored_live(scene, tmp_path):
    """"Propose lesions from lines": each line markup (a second of the same name its short axis) becomes a segment
    of the study's segmentation named by it, with the mask CTTimeLib proposes and the CTTime.* tags of a proposed
    lesion; it is scored as proposed, and live like any segment; a line of a lesion the segmentation holds is
    refused before anything is added."""
    from CTTimeLib.delineation import marks_from_mask, propose

    study = _load_study(scene, "STS_019")
    node = study.segmentation_node
    ct = CTTimeMRML.volume_to_image(study.volume_node)
    mark = marks_from_mask(sitk.ReadImage(str(SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz")), ct, "LN_2")
    _line_node(scene, "LN_2", mark.start, mark.end)
    _line_node(scene, "LN_2", *mark.short_axis)
    assert [m.lesion_id for m in CTTimeMRML.marks_of_lines(CTTimeMRML.scene_lines(scene))] == ["LN_2"]
    found = CTTimeMRML.marks_of_lines(CTTimeMRML.scene_lines(scene))[0]
    np.testing.assert_allclose([found.start, found.end, *found.short_axis],
                               [mark.start, mark.end, *mark.short_axis], atol=1e-4)
    results = CTTimeMRML.compute([study], DEMO_REFERENCE)
    live = CTTimeMRML.LiveScores(study, results)
    lesions = CTTimeMRML.propose_segments(node, study.volume_node, CTTimeMRML.scene_lines(scene))
    assert [lesion.lesion_id for lesion in lesions] == ["LN_2"]
    (first, _), (added, segment) = CTTimeMRML.segments(node)
    assert segment.GetName() == "LN_2"
    assert CTTimeMRML.get_tag(segment, tags.DELINEATION_TAG) == "proposed from RECIST long and short axes"
    assert CTTimeMRML.get_tag(segment, tags.LOCATION_TAG) == "lymph node"
    exported = slicer.util.arrayFromSegmentBinaryLabelmap(node, added, study.volume_node)
    expected = sitk.GetArrayFromImage(geometry.whole_mask(propose(ct, found).mask, ct))
    assert exported.sum() > 100 and np.array_equal(exported != 0, expected != 0)
    assert live.changed() == [added] and live.update()[added].score is not None  # scored live
    rows = CTTimeMRML.compute([study], DEMO_REFERENCE).lesions.set_index("lesion_id")
    assert rows.loc["LU_1", "delineation"] == "manual"
    assert rows.loc["LN_2", "delineation"] == "proposed from RECIST long and short axes"
    table = {row[2]: row[-1] for row in CTTimeMRML.table_rows(CTTimeMRML.compute([study], DEMO_REFERENCE))}
    assert table["LN_2"] == "proposed from RECIST long and short axes" and table["LU_1"] == ""
    assert CTTimeMRML.propose_segments(node, study.volume_node, CTTimeMRML.scene_lines(scene)) == []  # done before
    _line_node(scene, "LU_1", mark.start, mark.end)
    with pytest.raises(CTTimeError, match="lesion.s. LU_1 are already delineated"):  # a segment drawn by hand
        CTTimeMRML.propose_segments(node, study.volume_node, CTTimeMRML.scene_lines(scene))
    assert len(CTTimeMRML.segments(node)) == 2
    one_end = scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", "LN_3")
    one_end.AddControlPoint(0.0, 0.0, 0.0)
    with pytest.raises(CTTimeError, match="LN_3.*1 placed end point"):
        CTTimeMRML.marks_of_lines([one_end])
