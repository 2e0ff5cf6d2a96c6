"""The coloured .seg.nrrd round trip: names, colours, tags and overlapping layers, read back by independent
readers (pynrrd's raw header and voxels, and 3D Slicer's own vtkMRMLSegmentationStorageNode)."""

import re

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from CTTimeLib import colormap
from CTTimeLib.inputs import Lesion, read_image, read_lesions
from CTTimeLib.outputs import write_colored_segmentation

ROWS = {"LU_1": {"ct_time_score": 0.2, "ct_time_status": "uninflamed", "standardization": "cohort z-score: n=3"},
        "liver_2": {"ct_time_score": 0.8, "ct_time_status": "inflamed", "standardization": "cohort z-score: n=3"},
        "bone|3 é": {"ct_time_score": np.nan, "ct_time_status": None, "standardization": "",
                     "error": "Lesion bone|3 é is empty"}}


@pytest.fixture(scope="module")
def written(tmp_path_factory, sample_case):
    image = read_image(sample_case[0])
    tumour = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_case[1]))) > 0
    slices = np.nonzero(tumour.any(axis=(1, 2)))[0]
    upper = tumour.copy()
    upper[slices[len(slices) // 2]:] = False
    masks = {"LU_1": upper, "liver_2": tumour, "bone|3 é": np.zeros_like(tumour)}  # liver_2 overlaps LU_1
    lesions = []
    for lesion_id, array in masks.items():
        mask = sitk.GetImageFromArray(array.astype(np.uint8))
        mask.CopyInformation(image)
        lesions.append(Lesion(lesion_id, mask, {"LU_1": "lung", "liver_2": "liver"}.get(lesion_id, "bone"),
                              {"CTTime.Target": "1"}))
    path = tmp_path_factory.mktemp("seg") / "P_BS_cttime.seg.nrrd"
    write_colored_segmentation(path, image, lesions, ROWS)
    return path, image, masks


def segment_fields(header):
    segments = {}
    for key, value in header.items():
        match = re.match(r"Segment(\d+)_(\w+)$", key)
        if match:
            segments.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return [segments[i] for i in sorted(segments)]


def test_raw_nrrd_header_and_voxels(written):
    path, image, masks = written
    voxels, header = nrrd.read(str(path))
    segments = segment_fields(header)
    assert [s["Name"] for s in segments] == ["LU_1", "liver_2", "bone|3 e"]  # ASCII in the header
    assert voxels.ndim == 4 and voxels.shape[0] == 2  # two layers: the overlapping lesion sits in the second
    for segment in segments:
        color = [float(v) for v in segment["Color"].split()]
        name = {"bone|3 e": "bone|3 é"}.get(segment["Name"], segment["Name"])
        row = ROWS[name]
        assert color == pytest.approx(colormap.score_color(row["ct_time_score"]), abs=1e-6)
        tags = dict(t.split(":", 1) for t in segment["Tags"].split("|") if t)
        assert tags["CTTime.Status"] == (row["ct_time_status"] or "failed")
        assert tags["CTTime.Target"] == "1" and tags["CTTime.Model"] == "CT-TIME"
        assert "|" not in tags.get("CTTime.Error", "")
        layer = voxels[int(segment["Layer"])] == int(segment["LabelValue"])
        np.testing.assert_array_equal(layer.transpose(2, 1, 0), masks[name])
    assert np.allclose(header["space origin"], image.GetOrigin())
    np.testing.assert_allclose(np.diag(header["space directions"][1:]), image.GetSpacing())


def test_slicer_storage_node_reads_names_colours_and_tags(written):
    slicer = pytest.importorskip("slicer")  # slicer-core: 3D Slicer's own MRML libraries
    import vtk

    path, _, masks = written
    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 3 and segmentation.GetNumberOfLayers() == 2
    value = vtk.mutable("")
    for index, name in enumerate(masks):
        segment = segmentation.GetSegment(segmentation.GetNthSegmentID(index))
        assert segment.GetName() == name.replace("é", "e")
        row = ROWS[name]
        assert segment.GetColor() == pytest.approx(colormap.score_color(row["ct_time_score"]), abs=1e-5)
        assert segment.GetTag("CTTime.Score", value)
        assert str(value) == ("" if np.isnan(row["ct_time_score"]) else f"{row['ct_time_score']:.6f}")
        assert segment.GetTag("CTTime.Location", value) and str(value) == {"LU_1": "lung", "liver_2": "liver"}.get(
            name, "bone")


def test_cttime_reads_its_own_output_back(written):
    path, image, masks = written
    lesions = read_lesions(path, image)
    assert [lesion.lesion_id for lesion in lesions] == ["LU_1", "liver_2", "bone|3 e"]
    assert [lesion.location for lesion in lesions] == ["lung", "liver", "bone"]  # from the CTTime.Location tags
    for lesion in lesions:
        np.testing.assert_array_equal(sitk.GetArrayFromImage(lesion.mask) > 0,
                                      masks[lesion.lesion_id.replace(" e", " é")])
