"""Acquisition check: a study's kVp, kernel, slice thickness and contrast, against CT-TIME's training domain.

The signature was trained on contrast-enhanced CT at 120 kVp, reconstructed with a soft-tissue kernel, slice
thickness about 1.25-3 mm (paper, Table 1). Where the image has DICOM headers, every lesion row records the
acquisition and ``acquisition_warning`` says what lies outside that domain; scores of such studies are less
certain. Images without headers (NIfTI, NRRD) get empty columns: nothing is known, nothing is flagged.
"""

import re

from ..io import dicom

COLUMNS = ("kvp", "convolution_kernel", "slice_thickness_mm", "contrast_agent", "acquisition_warning")
TRAINING_KVP = 120.0
SLICE_THICKNESS_MM = (1.0, 3.0)  # "about 1.25-3 mm", with a quarter millimetre of slack below
_NO_CONTRAST = {"", "none", "no", "n", "non", "nil", "without", "0"}
# Sharp (lung, bone, edge-enhancing) kernels, by vendor convention: named, or Siemens-style letter + sharpness >= 50
_SHARP_WORDS = re.compile(r"lung|bone|sharp|edge|detail", re.IGNORECASE)
_SIEMENS_SHARPNESS = re.compile(r"^[BIQDH][a-z]{0,2}(\d{2})", re.IGNORECASE)


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def kernel_is_sharp(kernel):
    """True for a lung, bone or edge-enhancing reconstruction kernel (a heuristic over vendor names)."""
    text = str(kernel or "").strip()
    sharpness = _SIEMENS_SHARPNESS.match(text)
    return bool(_SHARP_WORDS.search(text) or (sharpness and int(sharpness.group(1)) >= 50))


def check(kvp, kernel, thickness, contrast):
    """What lies outside the training domain, as one text ("" when nothing does)."""
    problems = []
    if kvp is not None and abs(kvp - TRAINING_KVP) > 0.5:
        problems.append(f"{kvp:g} kVp (training: 120 kVp)")
    if kernel and kernel_is_sharp(kernel):
        problems.append(f"sharp kernel {kernel} (training: soft tissue)")
    if thickness is not None and not SLICE_THICKNESS_MM[0] <= thickness <= SLICE_THICKNESS_MM[1]:
        problems.append(f"slice thickness {thickness:g} mm (training: about 1.25-3 mm)")
    if contrast is None:
        problems.append("contrast not recorded (training CTs were contrast-enhanced)")
    elif contrast.strip().lower() in _NO_CONTRAST:
        problems.append("no contrast agent (training CTs were contrast-enhanced)")
    return "; ".join(problems)


def warning_text(acquisition_warning):
    """A study's acquisition warning as it reads among a lesion's warnings ("" when there is none)."""
    if not isinstance(acquisition_warning, str) or not acquisition_warning:
        return ""
    return f"outside CT-TIME's training domain (scores less certain): {acquisition_warning}"


def describe(image_path):
    """The acquisition columns of a study, or {} when its image has no DICOM header."""
    header = dicom.image_header(image_path)
    if header is None:
        return {}
    kvp = _number(header.get("KVP"))
    kernel = header.get("ConvolutionKernel")
    if kernel is not None:
        kernel = str(kernel) if isinstance(kernel, str) else "\\".join(str(v) for v in kernel)
    thickness = _number(header.get("SliceThickness"))
    contrast = header.get("ContrastBolusAgent")
    contrast = str(contrast) if contrast is not None else None
    return dict(zip(COLUMNS, (kvp, kernel, thickness, contrast, check(kvp, kernel, thickness, contrast))))
