"""Extraction: the 107 original pyradiomics features of one lesion, from the fixed Table-2 parameter file.

One parameter file drives one pyradiomics ``RadiomicsFeatureExtractor``; every lesion goes through it, so each
feature equals what pyradiomics gives for the same image, mask and file.
"""

import logging
import warnings

import numpy as np
import SimpleITK as sitk

from .errors import CTTimeError
from .resources import PARAMETER_FILE

FEATURE_PREFIX = "original_"
_FEATURE_CLASS_ORDER = ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")


def load_parameters(path):
    """The parameter file as a dict (YAML, safe loader)."""
    import yaml

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

    def __init__(self, parameter_file=PARAMETER_FILE):
        import radiomics
        from radiomics.featureextractor import RadiomicsFeatureExtractor

        radiomics.setVerbosity(logging.ERROR)
        self.parameter_file = str(parameter_file)
        self.parameters = load_parameters(parameter_file)
        self.is_fixed = self.parameters == load_parameters(PARAMETER_FILE)
        try:
            self._extractor = RadiomicsFeatureExtractor(self.parameter_file)
        except Exception as exc:  # pykwalify schema errors and the like
            raise CTTimeError(f"Parameter file {parameter_file} is not valid for pyradiomics: {exc}", "input") from None
        self.feature_names = _enabled_feature_names(self._extractor)
        self.pyradiomics_version = radiomics.__version__

    @property
    def warning(self):
        if self.is_fixed:
            return None
        return (f"WARNING: parameter file {self.parameter_file} differs from CTTime's fixed Table-2 file; "
                "CT-TIME scores are only valid with the fixed file.")

    def extract(self, image, mask, lesion_id="lesion"):
        """Features of one lesion: ``mask`` is a binary (0/1) image on ``image``'s grid."""
        voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
        if voxels == 0:
            raise CTTimeError(f"Lesion {lesion_id} is empty (no voxel inside the CT); delete the segment or draw it "
                              "again.", "mask")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = self._extractor.execute(image, mask, label=1)
            except (ValueError, RuntimeError, IndexError, ZeroDivisionError) as exc:
                raise CTTimeError(f"Lesion {lesion_id} ({voxels} voxels): pyradiomics could not extract features: "
                                  f"{_explain(exc)}", "mask") from None
        features = {name: float(result[name]) for name in self.feature_names}
        bad = [name for name, value in features.items() if not np.isfinite(value)]
        if bad:
            raise CTTimeError(f"Lesion {lesion_id}: features {', '.join(bad)} are NaN or infinite (lesion too small "
                              "or too uniform for texture analysis); check the segmentation.", "features")
        return features


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
    return text
