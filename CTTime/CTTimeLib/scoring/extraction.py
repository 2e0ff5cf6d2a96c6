"""Extraction: the features of one lesion, from the fixed Table-2 parameter file.

Two extractors share one interface (``prepare`` resamples a lesion, ``features`` computes it; ``feature_names``
computed, lesions.csv ``columns``, ``identity`` for run.json and the cache, ``features_by`` for the standardization
column, ``thread_safe`` when ``features`` may run in several threads at once):

* ``FeatureExtractor``: pyradiomics itself, every feature the parameter file enables (the 107 of
  :data:`TABLE2_FEATURES` for the fixed file), so each equals what pyradiomics gives for the same image and mask;
* ``engine.EngineExtractor``: CTTime's own numpy code for the signature's four features and the shape class, equal
  to pyradiomics' to 1e-12 (``test_engine``), for the fixed file only; no compiler, no pyradiomics.

``scoring.extractors`` picks one for ``--features all|signature``.
"""

import contextlib
import copy
import logging
import re
import warnings
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..core.errors import CTTimeError
from ..core.files import check_regular
from ..core.geometry import grid_offset, whole_mask
from ..core.resources import PARAMETER_FILE
from .resampling import CROPPABLE, label_bounding_box, resample_on_grid

FEATURE_PREFIX = "original_"
ALL, SIGNATURE = "all", "signature"  # --features: pyradiomics' 107, or the engine's signature and shape features
FEATURE_SETS = (ALL, SIGNATURE)
_FEATURE_CLASSES = {  # the features the fixed Table-2 file enables, as pyradiomics 3.0.1 names them
    "shape": "Elongation Flatness LeastAxisLength MajorAxisLength Maximum2DDiameterColumn Maximum2DDiameterRow "
             "Maximum2DDiameterSlice Maximum3DDiameter MeshVolume MinorAxisLength Sphericity SurfaceArea "
             "SurfaceVolumeRatio VoxelVolume",
    "firstorder": "10Percentile 90Percentile Energy Entropy InterquartileRange Kurtosis Maximum Mean "
                  "MeanAbsoluteDeviation Median Minimum Range RobustMeanAbsoluteDeviation RootMeanSquared Skewness "
                  "TotalEnergy Uniformity Variance",
    "glcm": "Autocorrelation ClusterProminence ClusterShade ClusterTendency Contrast Correlation DifferenceAverage "
            "DifferenceEntropy DifferenceVariance Id Idm Idmn Idn Imc1 Imc2 InverseVariance JointAverage JointEnergy "
            "JointEntropy MCC MaximumProbability SumAverage SumEntropy SumSquares",
    "glrlm": "GrayLevelNonUniformity GrayLevelNonUniformityNormalized GrayLevelVariance HighGrayLevelRunEmphasis "
             "LongRunEmphasis LongRunHighGrayLevelEmphasis LongRunLowGrayLevelEmphasis LowGrayLevelRunEmphasis "
             "RunEntropy RunLengthNonUniformity RunLengthNonUniformityNormalized RunPercentage RunVariance "
             "ShortRunEmphasis ShortRunHighGrayLevelEmphasis ShortRunLowGrayLevelEmphasis",
    "glszm": "GrayLevelNonUniformity GrayLevelNonUniformityNormalized GrayLevelVariance HighGrayLevelZoneEmphasis "
             "LargeAreaEmphasis LargeAreaHighGrayLevelEmphasis LargeAreaLowGrayLevelEmphasis "
             "LowGrayLevelZoneEmphasis SizeZoneNonUniformity SizeZoneNonUniformityNormalized SmallAreaEmphasis "
             "SmallAreaHighGrayLevelEmphasis SmallAreaLowGrayLevelEmphasis ZoneEntropy ZonePercentage ZoneVariance",
    "gldm": "DependenceEntropy DependenceNonUniformity DependenceNonUniformityNormalized DependenceVariance "
            "GrayLevelNonUniformity GrayLevelVariance HighGrayLevelEmphasis LargeDependenceEmphasis "
            "LargeDependenceHighGrayLevelEmphasis LargeDependenceLowGrayLevelEmphasis LowGrayLevelEmphasis "
            "SmallDependenceEmphasis SmallDependenceHighGrayLevelEmphasis SmallDependenceLowGrayLevelEmphasis",
    "ngtdm": "Busyness Coarseness Complexity Contrast Strength"}
TABLE2_FEATURES = tuple(f"{FEATURE_PREFIX}{feature_class}_{name}" for feature_class, names in _FEATURE_CLASSES.items()
                        for name in names.split())  # lesions.csv's feature columns, whichever extractor ran
_FEATURE_CLASS_ORDER = tuple(_FEATURE_CLASSES)


def load_parameters(path):
    """The parameter file as a dict (YAML, safe loader)."""
    import yaml

    check_regular(path, "Parameter file")
    try:
        with open(path, encoding="utf-8") as handle:
            parameters = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise CTTimeError(f"Cannot read parameter file {path}: {exc}", "input") from None
    if not isinstance(parameters, dict):
        raise CTTimeError(f"Parameter file {path} is not a pyradiomics parameter mapping.", "input")
    return parameters


class FeatureExtractor:
    """pyradiomics set up once from a parameter file; ``extract(image, mask)`` gives one lesion's features.

    ``is_fixed`` is False when the file differs from CTTime's Table-2 file: features are then still pyradiomics'
    own, but CT-TIME scores computed from them are not valid, and every run says so.
    """

    feature_set = ALL
    features_by = None  # the standardization column names only an extractor other than pyradiomics
    thread_safe = False  # features() sets warning filters, which are process-wide

    def __init__(self, parameter_file=PARAMETER_FILE):
        import radiomics  # ImportError where pyradiomics is not installed (``extractors.make_extractor`` falls back)
        from radiomics.featureextractor import RadiomicsFeatureExtractor

        radiomics.setVerbosity(logging.ERROR)
        logging.getLogger("radiomics").setLevel(logging.ERROR)  # no record below ERROR is even made
        self.parameter_file = str(parameter_file)
        self.parameters = load_parameters(parameter_file)
        self.is_fixed = self.parameters == load_parameters(PARAMETER_FILE)
        try:
            self._extractor = RadiomicsFeatureExtractor(self.parameter_file)
        except Exception as exc:  # pykwalify schema errors and the like
            raise CTTimeError(f"Parameter file {parameter_file} is not valid for pyradiomics: {exc}", "input") from None
        self.feature_names = _enabled_feature_names(self._extractor)
        self.columns = self.feature_names  # lesions.csv's feature columns
        self.pyradiomics_version = radiomics.__version__
        self.identity = f"pyradiomics {radiomics.__version__}"
        self._resampling = _resampling_settings(self._extractor.settings)
        self._on_grid = _on_grid(self._extractor, self._resampling)

    def restricted(self, feature_names):
        """The same extraction computing only ``feature_names`` (e.g. the signature's, for perturbed delineations):
        a second pyradiomics extractor from the parameter dict with only those features enabled, so every value
        equals the full extraction's."""
        from radiomics.featureextractor import RadiomicsFeatureExtractor

        unknown = [name for name in feature_names if name not in self.feature_names]
        if unknown:
            raise CTTimeError(f"Parameter file {self.parameter_file} does not enable {', '.join(unknown)}.", "input")
        classes = {}
        for name in feature_names:
            feature_class, feature = name[len(FEATURE_PREFIX):].split("_", 1)
            classes.setdefault(feature_class, []).append(feature)
        restricted = copy.copy(self)
        restricted._extractor = RadiomicsFeatureExtractor(dict(copy.deepcopy(self.parameters), featureClass=classes))
        restricted._on_grid = _on_grid(restricted._extractor, self._resampling)
        restricted.feature_names = list(feature_names)
        return restricted

    @property
    def resampling(self):
        """(spacing, interpolator, padDistance) of the per-lesion resampling CTTime does for pyradiomics, or None."""
        return self._resampling

    @property
    def warning(self):
        return None if self.is_fixed else parameter_warning(self.parameter_file)

    def extract(self, image, mask, lesion_id="lesion"):
        """Features of one lesion: ``mask`` is a binary (0/1) mask on ``image``'s grid, CT-sized or cropped to the
        lesion (see ``core.geometry``), or any mask pyradiomics accepts with the image."""
        return self.features(self.prepare(image, mask, lesion_id))

    def prepare(self, image, mask, lesion_id="lesion"):
        """The first step of ``extract``: the image and mask pyradiomics will be given for this lesion. It holds
        the per-lesion resampling, which SimpleITK runs without Python's lock, so it can run in another thread
        while ``features`` computes the previous lesion (see ``run.study.extract_lesions``)."""
        voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
        if voxels == 0:
            raise CTTimeError(f"Lesion {lesion_id} is empty (no voxel inside the CT); delete the segment or draw it "
                              "again.", "mask")
        with reported(lesion_id, voxels):
            return Prepared(lesion_id, voxels, *self._inputs(image, mask))

    def features(self, prepared):
        """The second step of ``extract``: pyradiomics on a prepared lesion, its features checked to be finite."""
        extractor = self._on_grid if prepared.resampled else self._extractor
        with reported(prepared.lesion_id, prepared.voxels), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # here only: catch_warnings is not thread-safe, prepare may be threaded
            result = extractor.execute(prepared.image, prepared.mask, label=1)
        return finite(prepared.lesion_id, {name: float(result[name]) for name in self.feature_names})

    def _inputs(self, image, mask):
        """(image, mask, resampled) for pyradiomics: the CT and the CT-sized mask it would get or, when the file
        resamples, both already resampled onto pyradiomics' own grid from a crop of the CT (see
        scoring.resampling), so the per-lesion cost no longer grows with the CT. Other files get the CT unchanged,
        as do masks off the CT's grid."""
        if grid_offset(mask, image) is None:
            return image, mask, False
        if self._resampling is not None and label_bounding_box(mask) is not None:
            resampled = resample_on_grid(image, mask, *self._resampling)
            if resampled is not None:
                return (*resampled, True)
        return image, whole_mask(mask, image), False


def _on_grid(extractor, resampling):
    """The same extraction for lesions this class has already resampled (None when it does not resample)."""
    if resampling is None:
        return None
    on_grid = copy.deepcopy(extractor)
    on_grid.settings.update(resampledPixelSpacing=None, preCrop=False, additionalInfo=False)
    return on_grid


_PARAMETER_WARNING = ("parameter file {} differs from CTTime's fixed Table-2 file; CT-TIME scores are only valid with "
                      "the fixed file.")


def parameter_warning(path):
    """The warning every output of a run with another parameter file than the fixed one repeats."""
    return _PARAMETER_WARNING.format(path)


def parameter_warnings_in(texts):
    """The parameter-file warnings among warning texts (a rescore keeps those of the run it rescores)."""
    pattern = re.compile(re.escape(_PARAMETER_WARNING).replace(re.escape("{}"), ".+?"))
    return sorted({found for text in texts if isinstance(text, str) for found in pattern.findall(text)})


@contextlib.contextmanager
def reported(lesion_id, voxels):
    """pyradiomics' and SimpleITK's errors on a lesion (and the engine's, which are pyradiomics') as a CTTimeError
    naming the lesion."""
    try:
        yield
    except (ValueError, RuntimeError, IndexError, ZeroDivisionError) as exc:
        raise CTTimeError(f"Lesion {lesion_id} ({voxels} voxels): pyradiomics could not extract features: "
                          f"{_explain(exc)}", "mask") from None


def finite(lesion_id, features):
    """``features``, checked to be finite numbers."""
    bad = [name for name, value in features.items() if not np.isfinite(value)]
    if bad:
        raise CTTimeError(f"Lesion {lesion_id}: features {', '.join(bad)} are NaN or infinite (lesion too small or "
                          "too uniform for texture analysis); check the segmentation.", "features")
    return features


@dataclass
class Prepared:
    """A lesion resampled and ready for its features (see ``FeatureExtractor.prepare``)."""

    lesion_id: str
    voxels: int
    image: sitk.Image
    mask: sitk.Image
    resampled: bool


def _resampling_settings(settings):
    """(spacing, interpolator, padDistance) when pyradiomics resamples each lesion with an interpolator that can
    work on a crop and nothing before that needs the whole image (no normalisation); ``None`` otherwise."""
    spacing, interpolator = settings.get("resampledPixelSpacing"), settings.get("interpolator")
    if spacing is None or interpolator is None or settings.get("normalize", False):
        return None
    if isinstance(interpolator, str):  # pyradiomics takes an unknown name as B-spline
        interpolator = getattr(sitk, interpolator, sitk.sitkBSpline)
    if interpolator not in CROPPABLE:
        return None
    return spacing, interpolator, settings.get("padDistance", 5)


def _enabled_feature_names(extractor):
    from radiomics import getFeatureClasses

    classes = getFeatureClasses()
    names = []
    for feature_class in _FEATURE_CLASS_ORDER:
        if feature_class not in extractor.enabledFeatures:
            continue
        chosen = extractor.enabledFeatures[feature_class] or [
            name for name, deprecated in classes[feature_class].getFeatureNames().items() if not deprecated]
        names += [f"{FEATURE_PREFIX}{feature_class}_{name}" for name in sorted(chosen)]
    return names


def _explain(exc):
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "resegment" in text.lower() or "mask contains" in text.lower() or "label" in text.lower():
        text += (" - after re-segmentation to -100..300 HU too few voxels remain; check that the lesion is "
                 "soft tissue drawn on this CT")
    elif "single voxel" in text.lower() or "too small" in text.lower():
        text += " - the lesion is too small for radiomics; draw it on more voxels or delete the segment"
    return text
