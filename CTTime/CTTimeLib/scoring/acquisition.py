"""Acquisition check: a study's kVp, kernel, slice thickness and contrast, against CT-TIME's training domain.

The signature was trained on contrast-enhanced CT at 120 kVp, reconstructed with a soft-tissue kernel, slice
thickness about 1.25-3 mm (paper, Table 1). Where the image has DICOM headers, every lesion row records the
acquisition and ``acquisition_warning`` says what lies outside that domain; scores of such studies are less
certain. Images without headers (NIfTI, NRRD) say only their voxel spacing: their slice spacing stands in for the
slice thickness (``slice_spacing_mm``, flagged as "slice spacing ... (stand-in for thickness ..."; overlap or gaps
make the two differ), and ``acquisition_not_checked`` names what could not be checked (kVp, kernel, contrast).
"""

import re

from ..io import dicom

COLUMNS = ("kvp", "convolution_kernel", "slice_thickness_mm", "slice_spacing_mm", "contrast_agent",
           "acquisition_warning", "acquisition_not_checked")
NO_HEADER = "kVp, kernel and contrast (no DICOM header)"  # what an image without DICOM headers cannot tell
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
    if not _thickness_in_domain(thickness):
        problems.append(f"slice thickness {thickness:g} mm (training: about 1.25-3 mm)")
    if contrast is None:
        problems.append("contrast not recorded (training CTs were contrast-enhanced)")
    elif contrast.strip().lower() in _NO_CONTRAST:
        problems.append("no contrast agent (training CTs were contrast-enhanced)")
    return "; ".join(problems)


def _thickness_in_domain(millimetres):
    return millimetres is None or SLICE_THICKNESS_MM[0] <= millimetres <= SLICE_THICKNESS_MM[1]


def check_spacing(spacing):
    """What an image without DICOM headers shows outside the training domain: its slice spacing, standing in for
    the slice thickness ("" when within it)."""
    if _thickness_in_domain(spacing):
        return ""
    return f"slice spacing {spacing:g} mm (stand-in for thickness; training: about 1.25-3 mm)"


def warning_text(acquisition_warning):
    """A study's acquisition warning as it reads among a lesion's warnings ("" when there is none)."""
    if not isinstance(acquisition_warning, str) or not acquisition_warning:
        return ""
    return f"outside CT-TIME's training domain (scores less certain): {acquisition_warning}"


def describe(image_path, image=None):
    """The acquisition columns of a study. Without a DICOM header: its slice spacing from ``image`` (the CT as
    read, SimpleITK) and what could not be checked; {} without ``image`` either."""
    header = dicom.image_header(image_path)
    if header is None:
        if image is None:
            return {}
        spacing = float(image.GetSpacing()[2])
        return {"slice_spacing_mm": spacing, "acquisition_warning": check_spacing(spacing),
                "acquisition_not_checked": NO_HEADER}
    kvp = _number(header.get("KVP"))
    kernel = header.get("ConvolutionKernel")
    if kernel is not None:
        kernel = str(kernel) if isinstance(kernel, str) else "\\".join(str(v) for v in kernel)
    thickness = _number(header.get("SliceThickness"))
    contrast = header.get("ContrastBolusAgent")
    contrast = str(contrast) if contrast is not None else None
    return {"kvp": kvp, "convolution_kernel": kernel, "slice_thickness_mm": thickness, "contrast_agent": contrast,
            "acquisition_warning": check(kvp, kernel, thickness, contrast)}
