"""EngineExtractor: the lesion's shape class and the signature's first-order, GLCM and GLSZM features, as
pyradiomics computes them with the fixed Table-2 file, with the ``prepare`` / ``features`` interface of
``scoring.extraction.FeatureExtractor`` (so a run can use either)."""

import copy

import numpy as np
import SimpleITK as sitk

from ...core.errors import CTTimeError
from ...core.geometry import grid_offset
from ...core.resources import PARAMETER_FILE
from ...core.version import __version__
from ..extraction import FEATURE_PREFIX, SIGNATURE, TABLE2_FEATURES, Prepared, finite, load_parameters, reported
from ..resampling import label_bounding_box, resample_on_grid
from . import operations

_SHAPE = f"{FEATURE_PREFIX}shape_"
_SZNU = f"{FEATURE_PREFIX}glszm_SizeZoneNonUniformity"
_TEXTURE = ("firstorder_90Percentile", "glcm_MaximumProbability", "glszm_SizeZoneNonUniformity")
ENGINE_FEATURES = tuple(name for name in TABLE2_FEATURES if name.startswith(f"{FEATURE_PREFIX}shape_")) + tuple(
    FEATURE_PREFIX + name for name in _TEXTURE)  # the shape class and the signature's other three


class EngineExtractor:
    """The fixed Table-2 extraction (1 mm B-spline resampling, re-segmentation -100..300 HU, bin width 25,
    symmetric GLCM at distance 1) of :data:`ENGINE_FEATURES`; lesions.csv keeps all 107 columns, the others empty."""

    feature_set = SIGNATURE
    features_by = "CTTime engine"
    thread_safe = True  # numpy and SimpleITK only, mostly outside Python's lock: a run overlaps two studies
    identity = f"CTTime engine {__version__}"
    pyradiomics_version = None
    feature_names = list(ENGINE_FEATURES)
    columns = list(TABLE2_FEATURES)

    def __init__(self, parameter_file=PARAMETER_FILE):
        parameters = load_parameters(parameter_file)
        if parameters != load_parameters(PARAMETER_FILE):
            raise CTTimeError(f"Parameter file {parameter_file} differs from CTTime's fixed Table-2 file; CTTime's "
                              "engine computes the fixed file only: install pyradiomics and use --features all.",
                              "input")
        setting = parameters["setting"]
        self.parameters, self.parameter_file, self.is_fixed, self.warning = parameters, str(parameter_file), True, None
        self._spacing, self._pad = setting["resampledPixelSpacing"], setting["padDistance"]
        self._window, self._bin_width = tuple(setting["resegmentRange"]), setting["binWidth"]
        self.resampling = self._spacing, sitk.sitkBSpline, self._pad  # (spacing, interpolator, padDistance)

    def restricted(self, feature_names):
        """The same extraction giving only ``feature_names`` (e.g. the signature's, for perturbed delineations)."""
        unknown = [name for name in feature_names if name not in ENGINE_FEATURES]
        if unknown:
            raise CTTimeError(f"CTTime's engine does not compute {', '.join(unknown)}.", "input")
        restricted = copy.copy(self)
        restricted.feature_names = list(feature_names)
        return restricted

    def extract(self, image, mask, lesion_id="lesion"):
        return self.features(self.prepare(image, mask, lesion_id))

    def prepare(self, image, mask, lesion_id="lesion"):
        """The lesion as pyradiomics sees it: resampled onto its 1 mm grid (image B-spline in its own pixel type,
        mask nearest neighbour; ``scoring.resampling``) or, on a CT already at 1 mm, cropped to the lesion plus
        padDistance."""
        voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
        if voxels == 0:
            raise CTTimeError(f"Lesion {lesion_id} is empty (no voxel inside the CT); delete the segment or draw it "
                              "again.", "mask")
        start = grid_offset(mask, image)
        if start is None:
            raise CTTimeError(f"Lesion {lesion_id}: its mask does not lie on the CT's voxel grid; put it there first "
                              "(CTTimeLib.core.geometry.on_image_grid), as CTTime's readers do.", "input")
        with reported(lesion_id, voxels):
            resampled = resample_on_grid(image, mask, self._spacing, sitk.sitkBSpline, self._pad)
            if resampled is not None:
                return Prepared(lesion_id, voxels, *resampled, True)
            box = label_bounding_box(mask)
            low = np.maximum(np.add(start, box[:3]) - self._pad, 0)
            high = np.minimum(np.add(start, box[:3]) + box[3:] + self._pad, image.GetSize())
            cropped = sitk.RegionOfInterest(image, [int(v) for v in high - low], [int(v) for v in low])
            on_crop = sitk.Resample(mask, cropped, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt32)
            return Prepared(lesion_id, voxels, cropped, on_crop, False)

    def features(self, prepared):
        """The features of a prepared lesion, checked to be finite."""
        result = self.features_of([prepared])[0]
        if isinstance(result, CTTimeError):
            raise result
        return result

    def features_of(self, prepared):
        """:meth:`features` of several prepared lesions (e.g. the perturbed delineations of one lesion) at once,
        the GLSZM zones of all of them in one pass: per lesion its features, or the CTTimeError that
        :meth:`features` raises for it."""
        results = []
        for lesion in prepared:
            try:
                with reported(lesion.lesion_id, lesion.voxels):
                    results.append(prepare_roi(sitk.GetArrayViewFromImage(lesion.image),
                                               sitk.GetArrayViewFromImage(lesion.mask), lesion.image.GetSpacing(),
                                               self._window, self._bin_width, self.feature_names))
            except CTTimeError as exc:
                results.append(exc)
        zoned = [result for result in results if not isinstance(result, CTTimeError)]
        if _SZNU in self.feature_names and zoned:
            for (values, _), value in zip(zoned, operations.size_zone_nonuniformities([l for _, l in zoned])):
                values[_SZNU] = value
        return [result if isinstance(result, CTTimeError) else _finite(lesion.lesion_id, result[0], self.feature_names)
                for lesion, result in zip(prepared, results)]


def _finite(lesion_id, values, names):
    try:
        return finite(lesion_id, {name: values[name] for name in names})
    except CTTimeError as exc:
        return exc


def compute(image, mask, spacing, window, bin_width, names=ENGINE_FEATURES):
    """``names`` (of :data:`ENGINE_FEATURES`) of one lesion from its resampled image and mask arrays (z, y, x) and
    voxel spacing (x, y, z); see :func:`prepare_roi`."""
    values, levels = prepare_roi(image, mask, spacing, window, bin_width, names)
    if _SZNU in names:
        values[_SZNU] = operations.glszm_size_zone_nonuniformity(levels)
    return values


def prepare_roi(image, mask, spacing, window, bin_width, names):
    """(values, gray levels) of one lesion in pyradiomics' order of steps: the ROI checked, re-segmented to
    ``window`` and checked again; shape on the ROI before re-segmentation, cropped to the re-segmented box (as
    pyradiomics crops it); the first-order and GLCM features of ``names`` on the re-segmented ROI, and its gray
    levels (0 outside) for the GLSZM, which is left to the caller (:func:`compute`, or many lesions in one pass).
    Only what ``names`` needs is computed."""
    roi = operations.labelled(mask)
    operations.check_roi(roi)
    kept = operations.resegment(image, roi, *window)
    box = operations.check_roi(kept)
    shape = [name[len(_SHAPE):] for name in names if name.startswith(_SHAPE)]
    values = {_SHAPE + name: value for name, value in operations.shape_features(roi[box], spacing, shape).items()}
    kept = kept[box]
    gray = image[box][kept]
    levels = np.zeros(kept.shape, dtype=np.intp)
    levels[kept] = operations.discretize(gray, bin_width)
    if FEATURE_PREFIX + "firstorder_90Percentile" in names:
        values[FEATURE_PREFIX + "firstorder_90Percentile"] = operations.percentile(gray, 90)
    if FEATURE_PREFIX + "glcm_MaximumProbability" in names:
        values[FEATURE_PREFIX + "glcm_MaximumProbability"] = operations.glcm_maximum_probability(levels)
    return values, levels
