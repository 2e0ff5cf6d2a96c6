"""The per-lesion fast path (lesion_resampling) gives pyradiomics' own grid, voxels and 107 features.

Real sarcoma CTs of ../shared, mirror-padded in-plane to a full-size-like volume so that the crop around a lesion
is smaller than the image; lesions cut at the image border; several lesions in one labelmap.
"""

import logging
import warnings

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from CTTimeLib.core import geometry
from CTTimeLib.core.resources import PARAMETER_FILE
from CTTimeLib.io.images import read_image
from CTTimeLib.io.segmentations import read_lesions
from CTTimeLib.run import study
from CTTimeLib.scoring import resampling
from CTTimeLib.scoring.extraction import FeatureExtractor

PAD = 100  # in-plane voxels of mirror padding: the volume becomes ~350 x 350 voxels, like a cropped chest CT
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def direct():
    """pyradiomics itself, from the same parameter file."""
    import radiomics
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    radiomics.setVerbosity(logging.ERROR)
    return RadiomicsFeatureExtractor(str(PARAMETER_FILE))


def load(shared_sts, case, low=(PAD, PAD, 0), high=(PAD, PAD, 0), keep=None):
    """A shared case as (image, binary mask); ``keep`` = (start, size) crops it first, then it is mirror-padded."""
    image = sitk.ReadImage(str(shared_sts / case / "CT_image.nii.gz"))
    mask = sitk.Cast(sitk.ReadImage(str(shared_sts / case / "CT_mask.nii.gz")) != 0, sitk.sitkUInt8)
    mask.CopyInformation(image)
    if keep:
        image, mask = (sitk.RegionOfInterest(item, keep[1], keep[0]) for item in (image, mask))
    image = sitk.MirrorPad(image, list(low), list(high))
    mask = sitk.ConstantPad(mask, list(low), list(high))
    mask.CopyInformation(image)
    return image, mask


def relative_differences(fast, reference, names):
    out = {}
    for name in names:
        a, b = float(fast[name]), float(reference[name])
        out[name] = 0.0 if a == b else abs(a - b) / max(abs(a), abs(b))
    return out


def assert_same_features(fast, reference, names):
    differences = relative_differences(fast, reference, names)
    worst = max(differences, key=differences.get)
    assert differences[worst] <= TOLERANCE, f"{worst}: {fast[worst]!r} vs {reference[worst]!r}"


def border_lesions(shared_sts):
    """Tumours cut by the image border: at the low x and z edges, and at the high x and z edges."""
    return {
        "low border": load(shared_sts, "STS_019", low=(0, PAD, 0), keep=((60, 0, 20), (76, 134, 27))),
        "high border": load(shared_sts, "STS_025", high=(0, PAD, 0), keep=((0, 0, 0), (81, 138, 26))),
    }


def test_grid_is_pyradiomics_grid(shared_sts):
    from radiomics import imageoperations

    image, mask = load(shared_sts, "STS_008")
    one_slice = sitk.GetArrayFromImage(mask)
    one_slice[np.arange(one_slice.shape[0]) != 25] = 0  # a lesion on one slice: z is not resampled
    one_slice = sitk.GetImageFromArray(one_slice)
    one_slice.CopyInformation(image)
    cases = [(image, mask, 5), (image, mask, 0), (image, one_slice, 10)] + [
        (i, m, 5) for i, m in border_lesions(shared_sts).values()]
    for image, mask, pad_distance in cases:
        expected_image, expected_mask = imageoperations.resampleImage(
            image, sitk.Cast(mask, sitk.sitkUInt32), resampledPixelSpacing=[1, 1, 1], interpolator="sitkBSpline",
            padDistance=pad_distance)
        box = resampling.label_bounding_box(mask)
        grid = resampling.resampling_grid(image, box, [1, 1, 1], pad_distance)
        origin, spacing, size, direction = grid
        assert origin == expected_image.GetOrigin()
        assert tuple(spacing) == expected_image.GetSpacing()
        assert tuple(size) == expected_image.GetSize()
        assert tuple(direction) == expected_image.GetDirection()
        _, resampled_mask = resampling.resample_lesion(image, mask, grid, sitk.sitkBSpline)
        assert resampled_mask.GetPixelID() == expected_mask.GetPixelID()
        assert np.array_equal(sitk.GetArrayViewFromImage(resampled_mask), sitk.GetArrayViewFromImage(expected_mask))
    assert tuple(resampling.resampling_grid(image, resampling.label_bounding_box(
        one_slice), [1, 1, 1], 10)[1]) == (1.0, 1.0, image.GetSpacing()[2])


def test_no_grid_when_spacing_already_wanted(shared_sts):
    image, mask = load(shared_sts, "STS_019", low=(0, 0, 0), high=(0, 0, 0))
    box = resampling.label_bounding_box(mask)
    assert resampling.resampling_grid(image, box, image.GetSpacing(), 5) is None
    assert resampling.label_bounding_box(sitk.Image(image.GetSize(), sitk.sitkUInt8)) is None


def test_margin_is_needed_and_enough(shared_sts, direct, extractor):
    """Voxels and features at several crop margins: a tight crop changes them, 24 voxels and more do not."""
    from radiomics import imageoperations

    image, mask = load(shared_sts, "STS_008")
    box = resampling.label_bounding_box(mask)
    grid = resampling.resampling_grid(image, box, [1, 1, 1], 5)
    start, extent = resampling._crop_region(grid, image, resampling.MARGIN)
    assert all(e < s for e, s in zip(extent[:2], image.GetSize()[:2])), "the test must crop in-plane"
    expected, _ = imageoperations.resampleImage(image, sitk.Cast(mask, sitk.sitkUInt32), interpolator="sitkBSpline",
                                                resampledPixelSpacing=[1, 1, 1], padDistance=5)
    expected = sitk.GetArrayFromImage(expected)
    reference = direct.execute(image, mask, label=1)
    on_grid = extractor._on_grid
    worst = {}
    for margin in (0, 24, resampling.MARGIN, 40):
        resampled = resampling.resample_lesion(image, mask, grid, sitk.sitkBSpline, margin)
        voxels = sitk.GetArrayFromImage(resampled[0])
        changed = np.count_nonzero(voxels != expected) / voxels.size
        features = on_grid.execute(*resampled, label=1)
        worst[margin] = (changed, max(relative_differences(features, reference, extractor.feature_names).values()))
        if margin >= 24:
            assert changed < 1e-5, (margin, changed)  # at most a float32 rounding step in a rare voxel
            assert np.allclose(voxels, expected, rtol=1e-6, atol=0)
    assert worst[0][0] > 0.1 and worst[0][1] > 1e-6, "without margin the B-spline prefilter must differ"
    assert all(worst[m][1] <= TOLERANCE for m in (24, 40, resampling.MARGIN)), worst


def test_border_lesions_equal_pyradiomics(shared_sts, direct, extractor):
    assert extractor._resampling is not None, "the fixed parameter file must take the per-lesion path"
    for name, (image, mask) in border_lesions(shared_sts).items():
        assert geometry.grid_offset(mask, image) == (0, 0, 0) and mask.GetSize() == image.GetSize()
        assert_same_features(extractor.extract(image, mask, name), direct.execute(image, mask, label=1),
                             extractor.feature_names)


def test_multi_lesion_labelmap_through_pipeline(shared_sts, direct, extractor, tmp_path):
    """One image, three labels (a tumour split into pieces), read and extracted as the pipeline does."""
    image, mask = load(shared_sts, "STS_008")
    labels = sitk.GetArrayFromImage(mask)
    x_middle = int(np.median(np.nonzero(labels)[2]))
    z_middle = int(np.median(np.nonzero(labels)[0]))
    labels[:, :, x_middle:] *= 2
    labels[z_middle:][labels[z_middle:] == 2] = 3
    labelmap = sitk.GetImageFromArray(labels)
    labelmap.CopyInformation(image)
    image_path, labelmap_path = tmp_path / "ct.nrrd", tmp_path / "labels.nrrd"
    sitk.WriteImage(image, str(image_path), True)
    sitk.WriteImage(labelmap, str(labelmap_path), True)

    image = read_image(image_path)
    lesions = read_lesions(labelmap_path, image)
    filters = list(warnings.filters)
    rows = study.extract_lesions(image, lesions, extractor, {"patient_id": "P"})
    assert warnings.filters == filters  # the second thread leaves the process's warning filters as they were
    assert [row["lesion_id"] for row in rows] == ["lesion_1", "lesion_2", "lesion_3"]
    assert all(row["error"] == "" for row in rows)
    for label, (row, lesion) in enumerate(zip(rows, lesions), start=1):
        alone = sitk.Cast(labelmap == label, sitk.sitkUInt8)
        assert np.prod(lesion.mask.GetSize()) < np.prod(image.GetSize()) / 10  # kept cropped to the lesion
        assert np.array_equal(sitk.GetArrayFromImage(geometry.whole_mask(lesion.mask, image)),
                              sitk.GetArrayViewFromImage(alone))
        assert_same_features(row, direct.execute(image, alone, label=1), extractor.feature_names)


def test_other_parameter_files_use_pyradiomics_unchanged(shared_sts, tmp_path):
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    parameters = yaml.safe_load(PARAMETER_FILE.read_text(encoding="utf-8"))
    parameters["setting"]["normalize"] = True  # whole-image statistics: no per-lesion crop possible
    path = tmp_path / "normalized.yaml"
    path.write_text(yaml.safe_dump(parameters), encoding="utf-8")
    extractor = FeatureExtractor(path)
    assert extractor._resampling is None and not extractor.is_fixed
    image, mask = load(shared_sts, "STS_019", low=(0, 0, 0), high=(0, 0, 0))
    reference = RadiomicsFeatureExtractor(str(path)).execute(image, mask, label=1)
    assert_same_features(extractor.extract(image, mask), reference, extractor.feature_names)
    cropped = geometry.lesion_mask(sitk.GetArrayViewFromImage(mask), image)  # as read_lesions keeps lesions
    assert cropped.GetSize() != image.GetSize()
    assert_same_features(extractor.extract(image, cropped), reference, extractor.feature_names)
