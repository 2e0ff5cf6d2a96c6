"""Python packages the module needs that Slicer does not bundle, and which of them are missing."""

import importlib.util

# Python packages CTTime needs that Slicer does not bundle: import name -> pip requirement.
REQUIRED_PACKAGES = {"radiomics": "pyradiomics", "pandas": "pandas", "sklearn": "scikit-learn",
                     "slicerio": "slicerio", "nrrd": "pynrrd", "yaml": "PyYAML"}


BOARD_PACKAGES = {"matplotlib": "matplotlib"}  # for the tumour-board figure (CTTimeLib.figures.tumour_board)
DICOM_PACKAGES = {"highdicom": "highdicom"}  # for the DICOM SEG + SR export (bundled from Slicer 5.12 on)


def missing_packages(packages=None):
    """pip requirements of the packages that cannot be imported here (in the order they must be installed)."""
    packages = REQUIRED_PACKAGES if packages is None else packages
    return [requirement for name, requirement in packages.items() if importlib.util.find_spec(name) is None]
