"""Features equal pyradiomics' own extractor with the fixed parameter file, for every lesion of a multi-lesion
labelmap or .seg.nrrd (overlapping segments included)."""

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import slicerio

from CTTimeLib.core.geometry import ijk_to_lps
from CTTimeLib.core.resources import PARAMETER_FILE
from CTTimeLib.run import pipeline, study
from CTTimeLib.scoring.extraction import FeatureExtractor

REL_TOL = 1e-9


@pytest.fixture(scope="module")
def multi_lesion(tmp_path_factory, sample_case):
    """STS_019 with its tumour split into an upper and a lower lesion, as a labelmap and as a .seg.nrrd whose
    third segment (the whole tumour) overlaps both and so lies in a second layer."""
    folder = tmp_path_factory.mktemp("multi")
    image_path, mask_path = sample_case
    mask = sitk.ReadImage(str(mask_path))
    array = sitk.GetArrayFromImage(mask)
    slices = np.nonzero(array.any(axis=(1, 2)))[0]
    middle = slices[len(slices) // 2]
    labels = np.zeros_like(array)
    labels[:middle][array[:middle] > 0] = 1
    labels[middle:][array[middle:] > 0] = 2
    labelmap = sitk.GetImageFromArray(labels)
    labelmap.CopyInformation(mask)
    sitk.WriteImage(labelmap, str(folder / "labels.nrrd"))
    segmentation = slicerio.create_segmentation(mask.GetSize(), ijk_to_lps(mask))
    for name, part in (("LU_upper", labels == 1), ("liver_lower", labels == 2), ("whole tumour", array > 0)):
        slicerio.add_segment(segmentation, part.transpose(2, 1, 0), {"name": name})
    slicerio.write_segmentation(str(folder / "lesions.seg.nrrd"), segmentation)
    return {"image": image_path, "mask": mask_path, "labels": folder / "labels.nrrd",
            "seg": folder / "lesions.seg.nrrd", "folder": folder}


@pytest.fixture(scope="module")
def direct(multi_lesion):
    """pyradiomics called directly, once per label, with CTTime's parameter file."""
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    extractor = RadiomicsFeatureExtractor(str(PARAMETER_FILE))
    image = str(multi_lesion["image"])
    return {"LU_upper": extractor.execute(image, str(multi_lesion["labels"]), label=1),
            "liver_lower": extractor.execute(image, str(multi_lesion["labels"]), label=2),
            "whole tumour": extractor.execute(image, str(multi_lesion["mask"]), label=1)}


def assert_equal_features(row, reference, names):
    for name in names:
        expected = float(reference[name])
        assert abs(row[name] - expected) <= REL_TOL * max(abs(expected), 1e-300), (name, row[name], expected)


def test_parameter_file_gives_107_original_features(extractor):
    names = extractor.feature_names
    assert len(names) == 107 and len(set(names)) == 107
    counts = pd.Series([n.split("_")[1] for n in names]).value_counts().to_dict()
    assert counts == {"shape": 14, "firstorder": 18, "glcm": 24, "glrlm": 16, "glszm": 16, "gldm": 14, "ngtdm": 5}
    assert extractor.is_fixed and extractor.warning is None
    settings = extractor.parameters["setting"]
    assert settings["resampledPixelSpacing"] == [1, 1, 1] and settings["interpolator"] == "sitkBSpline"
    assert settings["resegmentRange"] == [-100, 300] and settings["binWidth"] == 25
    assert settings["normalize"] is False


def test_labelmap_lesions_equal_pyradiomics(multi_lesion, direct, extractor, tmp_path):
    case = pipeline.Case("P1", "BS", str(multi_lesion["image"]), str(multi_lesion["labels"]),
                         names={1: "LU_upper", 2: "liver_lower"})
    rows = {r["lesion_id"]: r for r in study.extract_case(case, extractor)}
    assert set(rows) == {"LU_upper", "liver_lower"}
    assert rows["LU_upper"]["location"] == "lung" and rows["liver_lower"]["location"] == "liver"
    for lesion_id in rows:
        assert rows[lesion_id]["error"] == ""
        assert_equal_features(rows[lesion_id], direct[lesion_id], extractor.feature_names)


def test_seg_nrrd_segments_in_two_layers_equal_pyradiomics(multi_lesion, direct, extractor):
    header = slicerio.read_segmentation(str(multi_lesion["seg"]), skip_voxels=True)
    assert {s["layer"] for s in header["segments"]} == {0, 1}  # the whole tumour overlaps: second layer
    case = pipeline.Case("P1", "BS", str(multi_lesion["image"]), str(multi_lesion["seg"]))
    rows = {r["lesion_id"]: r for r in study.extract_case(case, extractor)}
    assert set(rows) == set(direct)
    for lesion_id, reference in direct.items():
        assert_equal_features(rows[lesion_id], reference, extractor.feature_names)


def test_a_changed_parameter_file_is_flagged(tmp_path):
    text = PARAMETER_FILE.read_text().replace("binWidth: 25", "binWidth: 10")
    changed = tmp_path / "changed.yaml"
    changed.write_text(text)
    extractor = FeatureExtractor(changed)
    assert not extractor.is_fixed
    assert "only valid with the fixed file" in extractor.warning


def _pyradiomics_share(image, mask):
    """pyradiomics' own count: voxels after re-segmentation / voxels after its resampling (its diagnostics)."""
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    reference = RadiomicsFeatureExtractor(str(PARAMETER_FILE))
    reference.disableAllFeatures()  # the diagnostics come with the resampling and re-segmentation alone
    result = reference.execute(image, mask, label=1)
    return int(result["diagnostics_Mask-resegmented_VoxelNum"]) / int(result["diagnostics_Mask-interpolated_VoxelNum"])


def test_soft_tissue_share_is_what_pyradiomics_keeps(shared_sts, sample_case, extractor):
    """The share counted on the prepared (resampled) image and mask equals pyradiomics' own diagnostics, for real
    sarcomas (shares 0.92 to 1.00) and for a lesion drawn across air and fat (0.40)."""
    import hostile_corpus as corpus

    from CTTimeLib.core.geometry import whole_mask
    from CTTimeLib.io.images import read_image
    from CTTimeLib.io.segmentations import read_lesions
    from CTTimeLib.scoring.soft_tissue import SHARE_THRESHOLD, soft_tissue_share

    ct = corpus.ct()
    cases = [(ct, corpus.mask_image(corpus.sloppy_lesion(), ct))]
    for folder in (shared_sts / "STS_035", shared_sts / "STS_003", sample_case[0].parent):
        image = read_image(folder / "CT_image.nii.gz")
        cases.append((image, whole_mask(read_lesions(folder / "CT_mask.nii.gz", image)[0].mask, image)))
    shares = []
    for image, mask in cases:
        prepared = extractor.prepare(image, mask)
        shares.append(soft_tissue_share(prepared.image, prepared.mask, extractor.parameters))
        assert shares[-1] == _pyradiomics_share(image, mask)
    assert shares[0] < SHARE_THRESHOLD < min(shares[1:]) and min(shares[1:]) > 0.9
