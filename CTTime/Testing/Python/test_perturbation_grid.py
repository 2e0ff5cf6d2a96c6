"""Perturbed delineations on the lesion's shared grid (``robustness.SharedGrid``) against the definition before it:
every perturbed mask resampled on its own pyradiomics grid (``per_mask_features`` below, the reference)."""

import math

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from conftest import SAMPLE_CASES, SAMPLE_DATA

from CTTimeLib.core.geometry import lesion_mask
from CTTimeLib.core.resources import DEMO_REFERENCE
from CTTimeLib.io.images import read_image
from CTTimeLib.io.segmentations import read_lesions
from CTTimeLib.scoring import robustness
from CTTimeLib.scoring.engine import EngineExtractor
from CTTimeLib.scoring.extraction import CTTimeError
from CTTimeLib.scoring.signature import load_model
from CTTimeLib.scoring.standardization import from_lesions, load

N = 4
MODEL = load_model()


def per_mask_features(image, mask, lesion_id, extractor, count):
    """The reference: each perturbed mask prepared (resampled onto its own pyradiomics grid) and computed alone."""
    perturbations = robustness.Perturbations(image, mask)
    results = []
    for index in range(count):
        try:
            results.append(extractor.features(extractor.prepare(
                image, perturbations.mask(index), f"{lesion_id} (perturbed delineation {index + 1})")))
        except CTTimeError as exc:
            results.append({"error": str(exc)})
    return results


def _compare(lesions, extractor, reference=None):
    """(intervals now, intervals by the reference, share of the perturbations prepared on the shared grid, largest
    relative feature difference) of (image, lesion) pairs; ``reference``: z-scores, else the lesions' own cohort."""
    rows, shared, largest = [], 0, 0.0
    for image, lesion in lesions:
        prepared = extractor.prepare(image, lesion.mask, lesion.lesion_id)
        grid = robustness.SharedGrid(image, robustness.Perturbations(image, lesion.mask), prepared,
                                     extractor.resampling)
        perturbations = robustness.Perturbations(image, lesion.mask)
        shared += sum(ready is not None for ready in grid.prepare([perturbations.array(i) for i in range(N)],
                                                                   [str(i) for i in range(N)]))
        now = robustness.perturbed_features(image, lesion.mask, lesion.lesion_id, extractor, N, prepared=prepared)
        before = per_mask_features(image, lesion.mask, lesion.lesion_id, extractor, N)
        assert [("error" in a) for a in now] == [("error" in b) for b in before], lesion.lesion_id
        for a, b in zip(now, before):
            for name in MODEL.features:
                if name in a:
                    largest = max(largest, abs(a[name] - b[name]) / max(abs(b[name]), 1e-300))
        rows.append((extractor.features(prepared), now, before))
    features = pd.DataFrame([own for own, _, _ in rows])
    reference = reference or from_lesions(features, MODEL.features, "the lesions themselves", "cohort")
    scores = MODEL.score(reference.standardize(features, MODEL.features)).to_numpy()
    intervals = {"now": [], "before": []}
    for score, (_, now, before) in zip(scores, rows):
        for key, payload in (("now", now), ("before", before)):
            perturbed = MODEL.score(reference.standardize(robustness.perturbed_frame(payload, MODEL.features),
                                                          MODEL.features)).to_numpy()
            intervals[key].append(robustness.interval(score, perturbed, MODEL.threshold))
    return intervals["now"], intervals["before"], shared / (N * len(rows)), largest


def _assert_agree(now, before):
    for (low, high, robust), (low_0, high_0, robust_0) in zip(now, before):
        assert robust == robust_0
        assert abs((high - low) - (high_0 - low_0)) <= 0.01
        assert math.isclose(low, low_0, abs_tol=0.01) and math.isclose(high, high_0, abs_tol=0.01)


def test_intervals_on_the_shared_grid_agree_with_per_mask_grids_on_the_36_sarcomas(shared_sts):
    """The same robust/uncertain status and widths within 0.01 on the 36 sarcomas (cohort z-scores); the shared
    grid prepares nearly every perturbation (else this would compare the reference with itself)."""
    lesions = []
    for folder in sorted(p for p in shared_sts.iterdir() if (p / "CT_image.nii.gz").is_file()):
        image = read_image(folder / "CT_image.nii.gz")
        lesions += [(image, lesion) for lesion in read_lesions(folder / "CT_mask.nii.gz", image)]
    assert len(lesions) == 36
    now, before, shared, largest = _compare(lesions, EngineExtractor().restricted(MODEL.features))
    _assert_agree(now, before)
    assert shared > 0.9
    assert largest < 1e-6  # the same points of the same B-spline; only rounding and nearest-neighbour ties differ


def test_intervals_on_the_shared_grid_agree_on_the_sample_data_with_both_extractors(extractor):
    reference = load(DEMO_REFERENCE, MODEL.features, MODEL.name)
    lesions = []
    for name in SAMPLE_CASES:
        image = read_image(SAMPLE_DATA / name / "CT_image.nii.gz")
        lesions += [(image, lesion) for lesion in read_lesions(SAMPLE_DATA / name / "CT_mask.nii.gz", image)]
    for features in (EngineExtractor().restricted(MODEL.features), extractor.restricted(MODEL.features)):
        now, before, shared, largest = _compare(lesions, features, reference)
        _assert_agree(now, before)
        assert shared == 1 and largest < 1e-6


def test_thick_slices_use_one_wider_grid_and_agree(sample_case):
    """On 5 mm slices the lesion's own grid (padDistance 5 mm) cannot hold a mask grown by a slice: those masks
    share one wider resampling, and still equal the per-mask grids."""
    image = read_image(sample_case[0])
    size = [image.GetSize()[0], image.GetSize()[1], int(image.GetSize()[2] * image.GetSpacing()[2] / 5.0)]
    thick = sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(),
                          [image.GetSpacing()[0], image.GetSpacing()[1], 5.0], image.GetDirection(), -1024,
                          image.GetPixelID())
    labels = sitk.Resample(sitk.ReadImage(str(sample_case[1])), thick, sitk.Transform(), sitk.sitkNearestNeighbor)
    mask = lesion_mask(sitk.GetArrayFromImage(labels) == 1, thick)
    extractor = EngineExtractor().restricted(MODEL.features)
    prepared = extractor.prepare(thick, mask, "thick")
    perturbations = robustness.Perturbations(thick, mask)
    grid = robustness.SharedGrid(thick, perturbations, prepared, extractor.resampling)
    ready = grid.prepare([perturbations.array(i) for i in range(8)], [str(i) for i in range(8)])
    assert all(item is not None for item in ready)
    assert len({id(item.image) for item in ready} | {id(prepared.image)}) == 2  # the lesion's grid and a wider one
    now = robustness.perturbed_features(thick, mask, "thick", extractor, 8, prepared=prepared)
    before = per_mask_features(thick, mask, "thick", extractor, 8)
    for a, b in zip(now, before):
        assert a.keys() == b.keys()
        for name in a:
            if name != "error":
                assert a[name] == pytest.approx(b[name], rel=1e-6)


def test_the_unperturbed_lesion_is_prepared_as_before(sample_case):
    """Perturbations reuse the lesion's prepared image without changing it."""
    image = read_image(sample_case[0])
    lesion = read_lesions(sample_case[1], image)[0]
    extractor = EngineExtractor()
    prepared = extractor.prepare(image, lesion.mask, lesion.lesion_id)
    before = sitk.GetArrayFromImage(prepared.image).copy()
    features = extractor.features(prepared)
    robustness.perturbed_features(image, lesion.mask, lesion.lesion_id, extractor.restricted(MODEL.features), N,
                                  prepared=prepared)
    assert np.array_equal(sitk.GetArrayFromImage(prepared.image), before)
    assert extractor.features(extractor.prepare(image, lesion.mask, lesion.lesion_id)) == features
