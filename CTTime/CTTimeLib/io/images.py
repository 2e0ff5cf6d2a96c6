"""CT images: any file SimpleITK reads or a folder holding a DICOM series, checked to be one 3-D CT volume in HU."""

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.errors import CTTimeError
from ..core.geometry import DAMAGED_HEADER, REGULAR_GRID, check_grid
from .dicom import series_files

# CT in Hounsfield units: air -1000, bone up to ~3000. Scanners fill the outside of the field of view with one
# constant below air (-2000, -2048, -3024, -3072, -32768 ...): an image minimum below HU_FLOOR is that padding and
# is ignored. Noise in air may dip below -1024 and metal on extended-scale CT exceeds 4000, so up to
# MAX_OUTSIDE_FRACTION of the other voxels may lie outside HU_NOISE_FLOOR..HU_CEILING.
HU_FLOOR, HU_NOISE_FLOOR, HU_CEILING = -1024, -1200, 4000
MAX_OUTSIDE_FRACTION = 0.01


def read_image(path):
    """Read a 3-D CT volume (file or DICOM series folder) and check that it looks like CT in HU."""
    path = Path(path)
    if not path.exists():
        raise CTTimeError(f"Image not found: {path}. Check the path (relative paths in a manifest are relative "
                          "to the manifest's folder).", "input")
    check_complete(path, "Image", "image")
    check_header(path, "Image")
    try:
        image = _read_dicom_series(path) if path.is_dir() else sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise read_error(exc, f"Image {path}", "image", "Give a CT volume SimpleITK can read (NRRD, NIfTI, MHA, a "
                                                       "DICOM series folder).") from None
    check_ct(image, path)
    return image


# What ITK says when it refuses a grid: (words in its message, the problem in plain words, what to do).
_ITK_GRID_ERRORS = (
    (("zero-valued spacing",), "its voxel size has a side of zero mm", DAMAGED_HEADER),
    (("determinant is 0", "bad direction"), "its orientation is degenerate (an axis has no direction, or two axes "
                                            "point the same way)", DAMAGED_HEADER),
    (("orthonormal",), "its voxel axes are not at right angles (e.g. a gantry-tilted acquisition stored without "
                       "correction)", REGULAR_GRID),
    (("space directions", "space vector", "spacings", "elementspacing"),
     "its voxel size or orientation in the header is not a number", DAMAGED_HEADER),
)


def read_error(exc, what, kind, advice):
    """A reader's exception as a CTTimeError naming ``what`` (e.g. "Image PATH"): a grid ITK refuses in plain
    words (kind "geometry"), anything else with the exception's last line and ``advice``."""
    text = str(exc).lower()
    for words, problem, action in _ITK_GRID_ERRORS:
        if any(word in text for word in words):
            return CTTimeError(f"{what}: {problem}; {action}.", "geometry")
    return CTTimeError(f"Cannot read {what[0].lower() + what[1:]}: {first_line(exc)}. {advice}", kind)


def check_header(path, what):
    """NIfTI stores the voxel size in its header's pixdim; ITK reads a NaN or zero there as 1 mm without a word.
    Refuse such a header (kind "geometry") before ITK reads it."""
    name = path.name.lower()
    if path.is_dir() or not (name.endswith(".nii") or name.endswith(".nii.gz")):
        return
    import gzip
    import struct

    try:
        with (gzip.open(path, "rb") if name.endswith(".gz") else open(path, "rb")) as handle:
            header = handle.read(348)
    except (OSError, EOFError):
        return  # ITK reports an unreadable file
    if len(header) < 348:
        return
    order = "<" if struct.unpack("<i", header[:4])[0] == 348 else ">"
    dimensions = struct.unpack(order + "h", header[40:42])[0]
    pixdim = struct.unpack(order + "8f", header[76:108])[1:1 + max(1, min(dimensions, 3))]
    if not all(np.isfinite(v) and v != 0 for v in pixdim):
        size = " x ".join(f"{v:g}" for v in pixdim)
        raise CTTimeError(f"{what} {path}: its voxel size in the NIfTI header (pixdim {size} mm) is not a real size "
                          f"(zero or not a number; ITK would silently take 1 mm); {DAMAGED_HEADER}.", "geometry")


def check_ct(image, name):
    """Refuse what is not one 3-D scalar CT volume in Hounsfield units on a usable grid."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise CTTimeError(f"Image {name} has {image.GetNumberOfComponentsPerPixel()} components per voxel (vector or "
                          "colour image); give a scalar CT volume in HU.", "image")
    if image.GetDimension() != 3:
        raise CTTimeError(f"Image {name} is {image.GetDimension()}-D; give one 3-D CT volume (split 4-D series "
                          "into single time points first).", "image")
    check_grid(image, f"Image {name}")
    values = sitk.GetArrayViewFromImage(image)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise CTTimeError(f"Image {name} holds no usable values (empty, NaN or infinite voxels); give a CT volume "
                          "in HU.", "image")
    if values.min() < HU_FLOOR:
        values = values[values != values.min()]  # outside-the-field-of-view padding
    low, high = (float(values.min()), float(values.max())) if values.size else (np.nan, np.nan)
    outside = np.count_nonzero((values < HU_NOISE_FLOOR) | (values > HU_CEILING)) / max(values.size, 1)
    if not low <= -100 or outside > MAX_OUTSIDE_FRACTION:
        raise CTTimeError(f"Image {name} does not look like CT in Hounsfield units (values {low:g} to {high:g}, "
                          f"{outside:.1%} outside {HU_NOISE_FLOOR}..{HU_CEILING}; CT holds air or fat below -100 HU "
                          f"and, padding aside, at least {1 - MAX_OUTSIDE_FRACTION:.0%} of its voxels lie within "
                          f"{HU_NOISE_FLOOR}..{HU_CEILING}). CT-TIME is defined on CT only; check the rescale "
                          "slope/intercept or the modality.", "image")


def _read_dicom_series(folder):
    files = series_files(folder)
    if not files:
        raise CTTimeError(f"Folder {folder} holds no DICOM image series; give a CT file or a DICOM series folder.",
                          "image")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    return reader.Execute()


def check_complete(path, what, kind):
    """ITK reads a truncated .gz file without complaint (the missing voxels become 0): check the gzip stream."""
    if not path.name.lower().endswith(".gz"):
        return
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise CTTimeError(f"{what} {path} is damaged or incomplete ({exc}); copy or export it again.", kind) from None


def first_line(exc):
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
