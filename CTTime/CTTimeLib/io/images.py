"""CT images: any file SimpleITK reads or a folder holding a DICOM series, checked to be one 3-D CT volume in HU."""

import math
import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.errors import CTTimeError
from ..core.files import check_regular
from ..core.geometry import DAMAGED_HEADER, REGULAR_GRID, check_grid
from .dicom import series_files

# CT in Hounsfield units: air -1000, bone up to ~3000. Scanners fill the outside of the field of view with one
# constant below air (-2000, -2048, -3024, -3072, -32768 ...): an image minimum below HU_FLOOR is that padding and
# is ignored. Noise in air may dip below -1024 and metal on extended-scale CT exceeds 4000, so up to
# MAX_OUTSIDE_FRACTION of the other voxels may lie outside HU_NOISE_FLOOR..HU_CEILING.
HU_FLOOR, HU_NOISE_FLOOR, HU_CEILING = -1024, -1200, 4000
MAX_OUTSIDE_FRACTION = 0.01
# The largest image or segmentation read, in voxels: a whole-body CT of 512 x 512 x 2000 slices is 0.5 billion.
# A header declaring more (a damaged file, a decompression bomb) is refused before any voxel is read.
DEFAULT_MAX_VOXELS = 1_000_000_000
MAX_VOXELS_ENV = "CTTIME_MAX_VOXELS"
_BYTES_PER_VOXEL = 8  # the widest CT voxel type (float64): bounds the bytes a .gz may decompress to


def voxel_limit(max_voxels=None):
    """The voxel limit: ``max_voxels`` when given, else the CTTIME_MAX_VOXELS environment variable, else
    DEFAULT_MAX_VOXELS."""
    value = max_voxels if max_voxels is not None else os.environ.get(MAX_VOXELS_ENV) or DEFAULT_MAX_VOXELS
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = 0
    if limit < 1:
        raise CTTimeError(f"The voxel limit must be a whole number >= 1, got {value!r} (--max-voxels or "
                          f"{MAX_VOXELS_ENV}).", "input")
    return limit


def check_size(path, what, max_voxels=None, files=None):
    """Refuse an image whose header declares more voxels than ``voxel_limit(max_voxels)``, before reading it
    (``files``: a DICOM series' files; the header of the first, times their number). The error's kind is "size":
    it depends on the run's limit, not only on the file."""
    limit = voxel_limit(max_voxels)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(files[0] if files else path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:  # not an image ITK knows: reading it reports why
        return
    size = list(reader.GetSize())
    if files and len(files) > 1:
        size = size[:2] + [len(files) * math.prod(size[2:])]
    voxels = math.prod(size) * reader.GetNumberOfComponents()
    if voxels > limit:
        raise CTTimeError(f"{what} {path} declares {voxels:,} voxels ({' x '.join(map(str, size))}), more than the "
                          f"limit of {limit:,}. If the file is right, raise the limit with --max-voxels N or "
                          f"{MAX_VOXELS_ENV}=N; else export it again.", "size")


def read_image(path, max_voxels=None):
    """Read a 3-D CT volume (file or DICOM series folder) and check that it looks like CT in HU (``max_voxels``:
    see ``voxel_limit``)."""
    path = Path(path)
    if not path.exists():
        raise CTTimeError(f"Image not found: {path}. Check the path.", "input")
    check_regular(path, "Image", "image")
    files = series_files(path) if path.is_dir() else None
    if files:
        check_size(path, "Image", max_voxels, files)
    elif not path.is_dir():
        check_size(path, "Image", max_voxels)
    check_complete(path, "Image", "image", max_voxels)
    check_header(path, "Image")
    try:
        image = _read_dicom_series(path, files) if path.is_dir() else sitk.ReadImage(str(path))
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


def _read_dicom_series(folder, files):
    if not files:
        raise CTTimeError(f"Folder {folder} holds no DICOM image series; give a CT file or a DICOM series folder.",
                          "image")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    return reader.Execute()


def check_complete(path, what, kind, max_voxels=None):
    """ITK reads a truncated .gz file without complaint (the missing voxels become 0): check the gzip stream, and
    that it does not decompress to more than the voxel limit allows."""
    if not path.name.lower().endswith(".gz"):
        return
    import gzip
    import zlib

    limit = voxel_limit(max_voxels) * _BYTES_PER_VOXEL + (1 << 20)
    total = 0
    try:
        with gzip.open(path, "rb") as handle:
            while total <= limit:
                block = len(handle.read(1 << 24))
                if not block:
                    return
                total += block
    except (OSError, EOFError, zlib.error) as exc:
        raise CTTimeError(f"{what} {path} is damaged or incomplete ({exc}); copy or export it again.", kind) from None
    raise CTTimeError(f"{what} {path} decompresses to more than {limit:,} bytes, beyond the voxel limit of "
                      f"{voxel_limit(max_voxels):,}. If the file is right, raise the limit with --max-voxels N or "
                      f"{MAX_VOXELS_ENV}=N; else export it again.", "size")


def first_line(exc):
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
