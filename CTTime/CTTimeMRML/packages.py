"""Python packages the module needs that Slicer does not bundle, and which of them are missing.

Scoring needs only ``Resources/requirements.txt`` (wheels on every platform); the tumour-board figure needs
matplotlib; the optional export of all 107 pyradiomics features needs pyradiomics, which compiles from source on
Slicer >= 5.10 (Python 3.12) and so needs a C compiler.
"""

import importlib.metadata
import importlib.util
import re
from pathlib import Path

REQUIREMENTS_FILE = Path(__file__).resolve().parents[1] / "Resources" / "requirements.txt"
_IMPORT_NAMES = {"PyYAML": "yaml", "pynrrd": "nrrd", "scikit-learn": "sklearn", "pyradiomics": "radiomics"}
BOARD_PACKAGES = {"matplotlib": "matplotlib"}  # for the tumour-board figure (CTTimeLib.figures.tumour_board)
ALL_FEATURES_PACKAGES = {"radiomics": "pyradiomics"}  # for the export of all 107 features
DICOM_PACKAGES = {"highdicom": "highdicom"}  # for the DICOM SEG + SR export (bundled from Slicer 5.12 on)
# Slicer's own packages that an install must keep at their running version: highdicom >= 0.23 needs pydicom 3, and
# Slicer 5.10's pydicom 2.4 replaced by 3.x cannot be imported until Slicer restarts.
KEPT_PACKAGES = ("pydicom",)


def requirements():
    """The lines of requirements.txt: pip requirements such as ``pandas>=1.3``."""
    lines = REQUIREMENTS_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def required_packages():
    """Import name -> pip requirement for every line of requirements.txt."""
    packages = {}
    for requirement in requirements():
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        packages[_IMPORT_NAMES.get(name, name)] = requirement
    return packages


def missing_packages(packages=None):
    """pip requirements of the packages that cannot be imported here (in the order they must be installed)."""
    packages = required_packages() if packages is None else packages
    return [requirement for name, requirement in packages.items() if importlib.util.find_spec(name) is None]


def pinned_requirements(requirements):
    """``requirements`` plus ``name==version`` of each installed KEPT_PACKAGES package, so that pip picks versions
    of the requirements that fit Slicer's own (highdicom 0.22 on pydicom 2.4) instead of replacing them."""
    pins = []
    for name in KEPT_PACKAGES:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return list(requirements) + pins
