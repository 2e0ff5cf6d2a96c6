"""CTTime's engine: the features of the CT-TIME signature and pyradiomics' shape class, computed exactly as
pyradiomics 3.0.1 computes them with the fixed Table-2 parameter file, with numpy, SimpleITK and scipy only.

    operations  pure image operations on numpy arrays: pyradiomics' ROI checks, re-segmentation, bin edges, the
                first-order percentile, GLCM Maximum Probability, GLSZM Size-Zone Non-Uniformity, shape
    mesh        pyradiomics' marching-cubes mesh (derived cube table): surface, volume, maximum diameters
    extractor   EngineExtractor, with the ``prepare`` / ``features`` interface of ``scoring.extraction``
"""

from .extractor import ENGINE_FEATURES, EngineExtractor

__all__ = ["ENGINE_FEATURES", "EngineExtractor"]
