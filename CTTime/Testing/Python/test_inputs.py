"""Inputs: lesion locations from names, DICOM series folders, segmentations on another grid than the image."""

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import slicerio

from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.geometry import ijk_to_lps, whole_mask
from CTTimeLib.core.lesions import infer_location, normalize_location
from CTTimeLib.io.images import read_image
from CTTimeLib.io.segmentations import read_lesions
from CTTimeLib.run import pipeline, study
from CTTimeLib.run.manifest import read_manifest


@pytest.mark.parametrize("name, location", [
    ("liver_1", "liver"), ("LU_2", "lung"), ("lung_right", "lung"), ("LN_3", "lymph node"),
    ("lymph node 4", "lymph node"), ("bone_5", "bone"), ("adrenal_1", "other"), ("lesion_1", "other"),
    ("Liver-seg", "liver"), ("lumbar", "other")])
def test_location_from_the_lesion_name(name, location):
    assert infer_location(name) == location


def test_given_locations_are_checked():
    assert normalize_location("Lymph_Node", "L1") == "lymph node" and normalize_location("LN", "L1") == "lymph node"
    with pytest.raises(CTTimeError, match="Lesion L1: unknown location 'spleen'"):
        normalize_location("spleen", "L1")


def write_dicom_series(image, folder):
    """Write a CT volume as a DICOM series (one file per slice), as a scanner would export it."""
    folder.mkdir()
    image = sitk.Cast(image, sitk.sitkInt16)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    direction = image.GetDirection()
    orientation = "\\".join(f"{v:.6f}" for v in (direction[0], direction[3], direction[6],
                                                 direction[1], direction[4], direction[7]))
    for k in range(image.GetDepth()):
        piece = image[:, :, k]
        for tag, value in (("0008|0060", "CT"), ("0020|000d", "1.2.826.0.1.3680043.2.1125.1"),
                           ("0020|000e", "1.2.826.0.1.3680043.2.1125.1.2"), ("0020|0037", orientation),
                           ("0020|0032", "\\".join(f"{v:.6f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k)))),
                           ("0020|0013", str(k + 1)), ("0018|0050", f"{image.GetSpacing()[2]:.6f}"),
                           ("0008|0018", f"1.2.826.0.1.3680043.2.1125.1.3.{k + 1}")):
            piece.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(piece)


def test_dicom_series_folder_reads_as_the_volume(sample_case, tmp_path):
    original = sitk.ReadImage(str(sample_case[0]))
    write_dicom_series(original, tmp_path / "dicom")
    image = read_image(tmp_path / "dicom")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(original).astype(np.int16))
    np.testing.assert_allclose(image.GetOrigin(), original.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(image.GetSpacing(), original.GetSpacing(), atol=1e-4)


def test_seg_nrrd_on_a_cropped_grid_is_placed_exactly(sample_case, tmp_path, extractor):
    """Slicer may save a segmentation cropped to its extent: it is resampled onto the image without a shift."""
    image = read_image(sample_case[0])
    full = sitk.ReadImage(str(sample_case[1]))
    array = sitk.GetArrayFromImage(full)
    k, j, i = [np.nonzero(array.any(axis=axes))[0] for axes in ((1, 2), (0, 2), (0, 1))]
    cropped = full[int(i[0]) - 2:int(i[-1]) + 3, int(j[0]) - 2:int(j[-1]) + 3, int(k[0]) - 1:int(k[-1]) + 2]
    segmentation = slicerio.create_segmentation(cropped.GetSize(), ijk_to_lps(cropped))
    slicerio.add_segment(segmentation, sitk.GetArrayFromImage(cropped).transpose(2, 1, 0) > 0, {"name": "liver_1"})
    slicerio.write_segmentation(str(tmp_path / "cropped.seg.nrrd"), segmentation)
    (lesion,) = read_lesions(tmp_path / "cropped.seg.nrrd", image)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(whole_mask(lesion.mask, image)), array)
    assert lesion.location == "liver"
    via_file = study.extract_case(pipeline.Case("P", "BS", str(sample_case[0]), str(tmp_path / "cropped.seg.nrrd")),
                                  extractor)[0]
    direct = extractor.extract(image, full, "whole")
    assert all(via_file[name] == direct[name] for name in extractor.feature_names)


def test_segment_reaching_beyond_the_ct_keeps_its_voxels_inside(sample_case, tmp_path):
    """A segmentation on the CT's grid but extending past its edge (Slicer allows it): the lesion is the part
    inside the CT, as nearest-neighbour resampling onto the CT gives it, and stays cropped."""
    image = read_image(sample_case[0])
    tumour = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_case[1]))) > 0
    k, j, i = [np.nonzero(tumour.any(axis=axes))[0] for axes in ((1, 2), (0, 2), (0, 1))]
    shift = int(i[0]) + 5  # the segmentation's grid starts left of the CT: the lesion's first 5 columns are outside
    segmentation = sitk.GetImageFromArray(tumour.astype(np.uint8))
    segmentation.SetSpacing(image.GetSpacing())
    segmentation.SetDirection(image.GetDirection())
    segmentation.SetOrigin(image.TransformIndexToPhysicalPoint([-shift, 0, 0]))
    sitk.WriteImage(segmentation, str(tmp_path / "beyond.nrrd"))
    (lesion,) = read_lesions(tmp_path / "beyond.nrrd", image)
    expected = sitk.Resample(segmentation, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(whole_mask(lesion.mask, image)),
                                  sitk.GetArrayFromImage(expected))
    assert 0 < sitk.GetArrayViewFromImage(lesion.mask).sum() < tumour.sum()
    assert np.prod(lesion.mask.GetSize()) < tumour.size / 10


def test_binary_mask_and_label_names(sample_case):
    image = read_image(sample_case[0])
    (default,) = read_lesions(sample_case[1], image)
    (named,) = read_lesions(sample_case[1], image, names={1: "LN_7"}, locations={"LN_7": "bone"})
    assert default.lesion_id == "lesion_1" and default.location == "other"
    assert (named.lesion_id, named.location) == ("LN_7", "bone")


# ---- labelmap lesions named by the labelmap's own label names ---------------------------------------------------

def _two_label_labelmap(sample_case, folder, name="lesions.nii.gz"):
    """The sample tumour split in two labels (upper and lower slices), as a labelmap beside which tables go."""
    mask = sitk.ReadImage(str(sample_case[1]))
    array = sitk.GetArrayFromImage(mask).astype(np.uint8)
    slices = np.flatnonzero(array.any(axis=(1, 2)))
    array[slices[len(slices) // 2]:] *= 2
    labels = sitk.GetImageFromArray(array)
    labels.CopyInformation(mask)
    sitk.WriteImage(labels, str(folder / name))
    return folder / name


SLICER_CTBL = "# Color table file {}\n# 3 values\n0 Background 0 0 0 0\n1 LU_right_lower 216 101 79 255\n" \
              "2 liver_segment_7 241 214 145 255\n3 unused 1 2 3 255\n"
ITK_SNAP = ("################################################\n# ITK-SnAP Label Description File\n"
            "################################################\n    0     0    0    0        0  0  0    \"Clear Label\"\n"
            "    1   255    0    0        1  1  1    \"LN hilar\"\n    2     0  255    0        1  1  1    \"bone T7\"\n")
SLICER_CSV = "LabelValue,Name,Color_R,Color_G,Color_B,Color_A\n1,lung nodule,216,101,79,255\n2,other mass,1,2,3,255\n"


@pytest.mark.parametrize("table_name, text, expected", [
    ("lesions_ColorTable.ctbl", SLICER_CTBL, [("LU_right_lower", "lung"), ("liver_segment_7", "liver")]),
    ("lesions.ctbl", SLICER_CTBL, [("LU_right_lower", "lung"), ("liver_segment_7", "liver")]),
    ("lesions_ColorTable.txt", ITK_SNAP, [("LN hilar", "lymph node"), ("bone T7", "bone")]),
    ("lesions_ColorTable.csv", SLICER_CSV, [("lung nodule", "lung"), ("other mass", "other")]),
])
def test_labelmap_lesions_take_names_and_locations_from_a_colour_table(sample_case, tmp_path, table_name, text,
                                                                       expected):
    labelmap = _two_label_labelmap(sample_case, tmp_path)
    (tmp_path / table_name).write_text(text.format(tmp_path / table_name), encoding="utf-8")
    image = read_image(sample_case[0])
    read = read_lesions(labelmap, image)
    assert [(lesion.lesion_id, lesion.location) for lesion in read] == expected
    named = read_lesions(labelmap, image, names={2: "LU_given"})  # a name given wins over the table
    assert [lesion.lesion_id for lesion in named] == [expected[0][0], "LU_given"]


def test_a_broken_colour_table_is_named_in_the_error(sample_case, tmp_path):
    labelmap = _two_label_labelmap(sample_case, tmp_path)
    (tmp_path / "lesions_ColorTable.ctbl").write_text("1 LU_1 1 2 3 255\nnot a line\n", encoding="utf-8")
    with pytest.raises(CTTimeError, match=r"lesions_ColorTable.ctbl, line 2: expected"):
        read_lesions(labelmap, read_image(sample_case[0]))


def test_a_nrrd_with_slicer_segment_fields_is_a_slicer_segmentation(sample_case, tmp_path):
    """A labelmap saved as plain .nrrd with Slicer's Segment<N>_* header fields (VolView, MONAI Label, scripts)
    keeps its segment names: they are the NRRD's label names."""
    image = read_image(sample_case[0])
    segmentation = slicerio.create_segmentation(image.GetSize(), ijk_to_lps(image))
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_case[1]))).astype(bool)
    slicerio.add_segment(segmentation, mask.transpose(2, 1, 0), {"id": "S1", "name": "liver_dome",
                                                                 "color": [1, 0, 0]})
    slicerio.write_segmentation(str(tmp_path / "labels.nrrd"), segmentation)
    (lesion,) = read_lesions(tmp_path / "labels.nrrd", image)
    assert (lesion.lesion_id, lesion.location) == ("liver_dome", "liver")
    assert np.array_equal(sitk.GetArrayFromImage(whole_mask(lesion.mask, image)).astype(bool), mask)


def test_a_study_location_places_the_lesions_nothing_else_places(sample_case, tmp_path):
    """`--location lung` (and a manifest's location column) is the location of every lesion whose tag or name does
    not place it; a lesion named liver_2 or given its own --location keeps that."""
    from test_hostile_inputs import cttime

    labelmap = _two_label_labelmap(sample_case, tmp_path)
    score = ["score", "--image", sample_case[0], "--segmentation", labelmap, "--patient", "P", "--reference", "demo",
             "--perturbations", "0", "--features", "signature"]
    code, out, _ = cttime(*score, "--out", tmp_path / "one", "--location", "lung")
    table = pd.read_csv(tmp_path / "one" / "lesions.csv", keep_default_na=False)
    assert code == 0 and list(table["location"]) == ["lung", "lung"] and "unnamed labelmap" not in out
    code, _, _ = cttime(*score, "--out", tmp_path / "two", "--location", "LN", "--label-name", "2=liver_2")
    table = pd.read_csv(tmp_path / "two" / "lesions.csv", keep_default_na=False)
    assert code == 0 and list(table["location"]) == ["lymph node", "liver"]
    code, _, err = cttime(*score, "--out", tmp_path / "three", "--location", "lung", "--location", "liver")
    assert code == 2 and "--location without LESION= gives the location of the study's lesions, once" in err
    code, _, err = cttime(*score, "--out", tmp_path / "three", "--location", "lungs")
    assert code == 2 and "--location lungs: unknown location; use one of lung, liver" in err
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame([dict(patient_id="P", timepoint="BS", image=sample_case[0], segmentation=labelmap, location="lung",
                       locations="lesion_2=bone")]).to_csv(manifest, index=False)
    cases = read_manifest(manifest)
    assert cases[0].location == "lung" and "location" not in cases[0].extras
    image, lesions = study.read_case(cases[0])
    assert [lesion.location for lesion in lesions] == ["lung", "bone"]
    pd.DataFrame([dict(patient_id="P", timepoint="BS", image=sample_case[0], segmentation=labelmap,
                       location="chest")]).to_csv(manifest, index=False)
    with pytest.raises(CTTimeError, match="line 2: location chest: unknown location"):
        read_manifest(manifest)


def test_unnamed_labels_left_at_other_are_said_and_a_new_colour_table_misses_the_cache(sample_case, tmp_path):
    labelmap = _two_label_labelmap(sample_case, tmp_path)
    case = pipeline.Case("P", "BS", str(sample_case[0]), str(labelmap))
    options = pipeline.Options(standardize="demo")
    first = pipeline.run([case], tmp_path / "out", options)
    assert first.summary["unnamed_labels_located_other"] == ["P BS lesion_1", "P BS lesion_2"]
    (tmp_path / "lesions.ctbl").write_text(SLICER_CTBL, encoding="utf-8")
    second = pipeline.run([case], tmp_path / "out", options)
    assert second.summary["studies_from_cache"] == 0  # the names changed: extracted again, not a stale ID
    assert list(second.lesions["lesion_id"]) == ["LU_right_lower", "liver_segment_7"]
    assert list(second.lesions["location"]) == ["lung", "liver"] and second.summary["unnamed_labels_located_other"] == []
    np.testing.assert_allclose(second.lesions["ct_time_score"], first.lesions["ct_time_score"], rtol=1e-12)
