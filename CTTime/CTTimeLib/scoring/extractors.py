"""Which extractor computes a run's features: pyradiomics (``extraction.FeatureExtractor``, "all") or CTTime's
engine (``engine.EngineExtractor``, "signature"), with the fallback to the engine where pyradiomics is missing."""

from ..core.errors import CTTimeError
from ..core.resources import PARAMETER_FILE
from .engine import EngineExtractor
from .extraction import ALL, FEATURE_SETS, SIGNATURE, FeatureExtractor


def make_extractor(features=ALL, parameter_file=PARAMETER_FILE):
    """The extractor for ``features`` and a note for the user when "all" falls back to CTTime's engine because
    pyradiomics cannot be imported (else None)."""
    if features not in FEATURE_SETS:
        raise CTTimeError(f"Unknown feature set {features!r}; choose one of {', '.join(FEATURE_SETS)}.", "input")
    try:
        return extractor_for(features, parameter_file), None
    except ImportError:
        return extractor_for(SIGNATURE, parameter_file), (
            "pyradiomics cannot be imported here, so CTTime's engine computed the signature's four features and the "
            "shape class (equal to pyradiomics' to 1e-12); the other feature columns of lesions.csv are left empty. "
            "Install pyradiomics for all 107 features.")


def extractor_for(features, parameter_file=PARAMETER_FILE):
    """The extractor of ``features`` exactly: "all" is pyradiomics (ImportError without it), "signature" the
    engine."""
    if features == ALL:
        return FeatureExtractor(parameter_file)
    return EngineExtractor(parameter_file)
