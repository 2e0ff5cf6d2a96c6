"""Where the bundled resources are, in the source tree, in Slicer and in a pip installation.

In the repository and in Slicer the library sits beside ``Resources/``; a pip installation ships the same
folder inside the package as ``CTTimeLib/Resources``.
"""

from pathlib import Path

_LIBRARY = Path(__file__).resolve().parent.parent  # CTTimeLib/


def _resources_root():
    for candidate in (_LIBRARY / "Resources", _LIBRARY.parent / "Resources"):
        if (candidate / "Models").is_dir():
            return candidate
    raise FileNotFoundError(f"CTTime resources not found beside {_LIBRARY}: reinstall CTTime")


RESOURCES = _resources_root()
PARAMETER_FILE = RESOURCES / "Parameters" / "CT-TIME.yaml"
MODEL_FILE = RESOURCES / "Models" / "CT-TIME.json"
DEMO_REFERENCE = RESOURCES / "References" / "demo-sts-reference.json"
SAMPLE_DATA = RESOURCES / "SampleData"
