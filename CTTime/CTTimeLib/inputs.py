"""Inputs: a CT image and its lesions, each lesion a binary mask on the image grid.

Images: any file SimpleITK reads, or a folder holding a DICOM series.
Segmentations: a Slicer ``.seg.nrrd`` (segments in one or several layers; segment names become lesion IDs),
a labelmap (one integer label per lesion) or a binary mask, in NRRD, NIfTI or any format SimpleITK reads, or a
DICOM SEG / RTSTRUCT file (or a folder holding one; see ``dicom``).
A segmentation on another grid than the image is resampled onto it (nearest neighbour) when the two overlap.

Each lesion's mask is kept on the CT's grid but cropped to the lesion's bounding box (same spacing and direction,
its origin on a CT voxel): a study costs the size of its lesions, not the CT's size times the number of lesions.
``grid_offset`` tells where a mask lies on the CT and ``whole_mask`` pastes it into a CT-sized mask.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import CTTimeError

LOCATIONS = ("lung", "liver", "lymph node", "bone", "other")
LOCATION_TAG = "CTTime.Location"
TARGET_TAG = "CTTime.Target"

# First word of a lesion name -> location. The paper took "liver_*" as liver, "LU_*" / "lung_*" as lung and
# everything else as other; lymph nodes and bone are added the same way.
_LOCATION_WORDS = {
    "liver": "liver", "hep": "liver", "hepatic": "liver",
    "lu": "lung", "lung": "lung", "pulm": "lung", "pulmonary": "lung",
    "ln": "lymph node", "lymph": "lymph node", "node": "lymph node", "lymphnode": "lymph node", "nodal": "lymph node",
    "bone": "bone", "bo": "bone", "osseous": "bone", "oss": "bone",
}

# CT in Hounsfield units: air -1000, bone up to ~3000. Scanners fill the outside of the field of view with one
# constant below air (-2000, -2048, -3024, -3072, -32768 ...): an image minimum below HU_FLOOR is that padding and
# is ignored. Noise in air may dip below -1024 and metal on extended-scale CT exceeds 4000, so up to
# MAX_OUTSIDE_FRACTION of the other voxels may lie outside HU_NOISE_FLOOR..HU_CEILING.
HU_FLOOR, HU_NOISE_FLOOR, HU_CEILING = -1024, -1200, 4000
MAX_OUTSIDE_FRACTION = 0.01


@dataclass
class Lesion:
    """One lesion: its ID, binary mask (UInt8 0/1 on the CT's grid, cropped to the lesion), location and tags."""

    lesion_id: str
    mask: sitk.Image
    location: str = "other"
    tags: dict = field(default_factory=dict)


def infer_location(name):
    """Location from the lesion name's first word, e.g. "LU_1" -> lung, "liver_2" -> liver, else "other"."""
    first = re.split(r"[\s_\-.]+", str(name).strip().lower(), maxsplit=1)[0]
    return _LOCATION_WORDS.get(first, "other")


def normalize_location(value, lesion_id):
    """A given location checked against the known classes ("LN" and "lymph_node" are accepted too)."""
    text = str(value).strip().lower().replace("_", " ")
    if text in LOCATIONS:
        return text
    mapped = _LOCATION_WORDS.get(text.replace(" ", ""))
    if mapped:
        return mapped
    raise CTTimeError(f"Lesion {lesion_id}: unknown location {value!r}; use one of {', '.join(LOCATIONS)}.", "input")


def read_image(path):
    """Read a 3-D CT volume (file or DICOM series folder) and check that it looks like CT in HU."""
    path = Path(path)
    if not path.exists():
        raise CTTimeError(f"Image not found: {path}. Check the path (relative paths in a manifest are relative "
                          "to the manifest's folder).", "input")
    _check_complete(path, "Image", "image")
    try:
        image = _read_dicom_series(path) if path.is_dir() else sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise CTTimeError(f"Cannot read image {path}: {_first_line(exc)}. Give a CT volume SimpleITK can read "
                          "(NRRD, NIfTI, MHA, a DICOM series folder).", "image") from None
    check_ct(image, path)
    return image


def check_ct(image, name):
    """Refuse what is not one 3-D scalar CT volume in Hounsfield units."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise CTTimeError(f"Image {name} has {image.GetNumberOfComponentsPerPixel()} components per voxel (vector or "
                          "colour image); give a scalar CT volume in HU.", "image")
    if image.GetDimension() != 3:
        raise CTTimeError(f"Image {name} is {image.GetDimension()}-D; give one 3-D CT volume (split 4-D series "
                          "into single time points first).", "image")
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
    from .dicom import series_files

    files = series_files(folder)
    if not files:
        raise CTTimeError(f"Folder {folder} holds no DICOM image series; give a CT file or a DICOM series folder.",
                          "image")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    return reader.Execute()


def read_lesions(path, image, names=None, locations=None):
    """Read the lesions of a segmentation file, each as a mask on ``image``'s grid.

    ``names`` maps label values of a labelmap to lesion IDs (default "lesion_<label>"); ``locations`` maps lesion
    IDs to a location (default: the segment's CTTime.Location tag, else inferred from the name).
    """
    path = Path(path)
    if not path.exists():
        raise CTTimeError(f"Segmentation not found: {path}. Check the path.", "input")
    from . import dicom

    if path.name.lower().endswith(".seg.nrrd"):
        raw = _read_seg_nrrd(path)
    elif dicom.segmentation_file(path):
        raw = dicom.read_segmentation(path, image)
    else:
        raw = _read_labelmap(path, names or {})
    if not raw:
        raise CTTimeError(f"Segmentation {path} holds no lesion (no segment, no non-zero label).", "input")
    seen = set()
    lesions = []
    for lesion_id, mask, tags in raw:
        if lesion_id in seen:
            raise CTTimeError(f"Segmentation {path}: lesion ID {lesion_id!r} occurs twice; rename one segment so "
                              "every lesion has its own ID.", "input")
        seen.add(lesion_id)
        given = (locations or {}).get(lesion_id) or tags.get(LOCATION_TAG)
        location = normalize_location(given, lesion_id) if given else infer_location(lesion_id)
        lesions.append(Lesion(lesion_id, lesion_mask(sitk.GetArrayViewFromImage(mask), mask), location, tags))
    _check_overlap(path, image, [lesion.mask for lesion in lesions])
    return [Lesion(lesion.lesion_id, _on_image_grid(lesion.mask, image), lesion.location, lesion.tags)
            for lesion in lesions]


def _read_seg_nrrd(path):
    import slicerio

    try:
        segmentation = slicerio.read_segmentation(str(path))
    except Exception as exc:  # slicerio and pynrrd raise several types for a damaged file
        raise CTTimeError(f"Cannot read segmentation {path}: {_first_line(exc)}. Save it again from Slicer "
                          "(Segmentations > Export) or give a labelmap.", "input") from None
    geometry = _geometry_from_ijk_to_lps(np.asarray(segmentation["ijkToLPS"], dtype=float))
    utf8_names = seg_nrrd_segment_names(path)
    segments = segmentation.get("segments", [])
    lesions = []
    for index, segment in enumerate(segments):
        ijk = slicerio.segment_mask(segmentation, segment)
        mask = sitk.GetImageFromArray(np.ascontiguousarray(ijk.transpose(2, 1, 0), dtype=np.uint8))
        _set_geometry(mask, geometry)
        name = str((utf8_names[index] if len(utf8_names) == len(segments) else segment.get("name"))
                   or segment.get("id"))
        lesions.append((name, mask, dict(segment.get("tags", {}))))
    return lesions


def seg_nrrd_segment_names(path):
    """A .seg.nrrd's segment names as Slicer writes them (UTF-8; pynrrd's ASCII reader drops other characters),
    in segment order."""
    with open(path, "rb") as handle:
        header = handle.read(1 << 20).split(b"\n\n", 1)[0]
    found = re.findall(rb"^Segment(\d+)_Name:=(.*)$", header, re.MULTILINE)
    return [value.decode("utf-8", "replace") for _, value in sorted(found, key=lambda item: int(item[0]))]


def _read_labelmap(path, names):
    _check_complete(path, "Segmentation", "input")
    try:
        labelmap = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise CTTimeError(f"Cannot read segmentation {path}: {_first_line(exc)}. Give a .seg.nrrd, a labelmap or a "
                          "binary mask.", "input") from None
    if labelmap.GetNumberOfComponentsPerPixel() != 1 or labelmap.GetDimension() != 3:
        raise CTTimeError(f"Segmentation {path} is not a 3-D scalar labelmap (dimension {labelmap.GetDimension()}, "
                          f"{labelmap.GetNumberOfComponentsPerPixel()} components); export one labelmap per "
                          "CT volume.", "input")
    values = sitk.GetArrayViewFromImage(labelmap)
    if values.dtype.kind == "f" and (not np.all(np.isfinite(values)) or not np.array_equal(values, np.round(values))):
        raise CTTimeError(f"Segmentation {path} has non-integer values; a labelmap holds one integer label per "
                          "lesion (0 = background): export it again as a labelmap or binary mask.", "input")
    inside = np.flatnonzero(values)  # one pass over the labelmap; each label then costs its own voxels
    found = values.ravel()[inside]
    lesions = []
    for label in np.unique(found):
        kji = np.unravel_index(inside[found == label], values.shape)
        low = [int(axis.min()) for axis in kji]
        box = tuple(slice(first, int(axis.max()) + 1) for first, axis in zip(low, kji))
        mask = _image_like(values[box] == label, labelmap, low[::-1])
        lesions.append((str(names.get(int(label), f"lesion_{int(label)}")), mask, {}))
    return lesions


def _geometry_from_ijk_to_lps(matrix):
    columns = matrix[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    direction = columns / spacing
    return tuple(spacing), tuple(matrix[:3, 3]), tuple(direction.flatten())


def _set_geometry(image, geometry):
    spacing, origin, direction = geometry
    image.SetSpacing([float(v) for v in spacing])
    image.SetOrigin([float(v) for v in origin])
    image.SetDirection([float(v) for v in direction])


def lesion_mask(array, image, start=(0, 0, 0)):
    """A lesion mask from a KJI array on ``image``'s grid (the CT's, or a segmentation's own) whose first voxel is
    voxel ``start`` (x, y, z): UInt8 0/1, cropped to the box of its non-zero voxels (one empty voxel if none)."""
    array = np.asarray(array)
    box = nonzero_box(array) or (slice(0, 1),) * 3
    return _image_like(array[box] != 0, image, [start[axis] + box[2 - axis].start for axis in range(3)])


def nonzero_box(array):
    """Slices of the smallest box holding the non-zero voxels of a 3-D array (``None`` when there is none)."""
    found = [np.flatnonzero(array.any(axis=others)) for others in ((1, 2), (0, 2), (0, 1))]
    if any(axis.size == 0 for axis in found):
        return None
    return tuple(slice(int(axis[0]), int(axis[-1]) + 1) for axis in found)


def _image_like(array, grid, start):
    """A UInt8 image of a KJI array lying on ``grid``'s voxels from index ``start`` (x, y, z) on."""
    mask = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.uint8))
    mask.SetSpacing(grid.GetSpacing())
    mask.SetDirection(grid.GetDirection())
    mask.SetOrigin(grid.TransformIndexToPhysicalPoint([int(v) for v in start]))
    return mask


def grid_offset(mask, image, tolerance=1e-6):
    """The CT voxel (x, y, z index) under ``mask``'s first voxel when ``mask`` lies on the CT's grid (same
    spacing and direction, origin on a voxel centre, to ``tolerance`` mm); ``None`` otherwise."""
    if not (np.allclose(mask.GetSpacing(), image.GetSpacing(), rtol=0, atol=tolerance)
            and np.allclose(mask.GetDirection(), image.GetDirection(), rtol=0, atol=tolerance)):
        return None
    index = np.array(image.TransformPhysicalPointToContinuousIndex(mask.GetOrigin()))
    start = np.round(index)
    if np.any(np.abs(index - start) * np.array(image.GetSpacing()) > tolerance):
        return None
    return tuple(int(v) for v in start)


def whole_mask(mask, image):
    """A lesion mask pasted into a CT-sized mask with the CT's geometry (what pyradiomics is given)."""
    start = grid_offset(mask, image)
    if start is None or any(s < 0 or s + n > m for s, n, m in zip(start, mask.GetSize(), image.GetSize())):
        raise ValueError("the mask does not lie on the CT's grid")
    canvas = sitk.Image(image.GetSize(), mask.GetPixelID())  # zero-filled
    whole = sitk.Paste(canvas, mask, mask.GetSize(), [0, 0, 0], list(start))
    whole.CopyInformation(image)
    return whole


def _on_image_grid(mask, image):
    """A mask of any grid as a lesion mask on the image's grid: cut out of it when it lies on the image's grid
    (to 1e-4 mm), else resampled onto it by nearest neighbour."""
    start = grid_offset(mask, image, 1e-4)
    if start is None:
        resampled = sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        return lesion_mask(sitk.GetArrayViewFromImage(resampled), image)
    low = np.maximum(start, 0)
    high = np.minimum(np.add(start, mask.GetSize()), image.GetSize())
    if np.any(high <= low):  # wholly outside the CT: an empty lesion
        return lesion_mask(np.zeros((1, 1, 1), np.uint8), image)
    array = sitk.GetArrayViewFromImage(mask)[tuple(slice(int(a - s), int(b - s)) for a, b, s in
                                                   zip(low[::-1], high[::-1], start[::-1]))]
    return lesion_mask(array, image, low)


def _physical_box(image, index_low, index_high):
    corners = [image.TransformContinuousIndexToPhysicalPoint([float(c) for c in corner])
               for corner in np.array(np.meshgrid(*zip(index_low, index_high))).T.reshape(-1, 3)]
    return np.min(corners, axis=0), np.max(corners, axis=0)


def _check_overlap(path, image, masks):
    """A segmentation whose lesions lie wholly outside the image is an error, not a set of empty lesions
    (``masks``: cropped to their voxels, on their own grid)."""
    image_low, image_high = _physical_box(image, [-0.5] * 3, [s - 0.5 for s in image.GetSize()])
    drawn = [mask for mask in masks if sitk.GetArrayViewFromImage(mask).any()]
    for mask in drawn:
        low, high = _physical_box(mask, [-0.5] * 3, [s - 0.5 for s in mask.GetSize()])
        if np.all(low < image_high) and np.all(high > image_low):
            return
    if drawn:
        raise CTTimeError(f"Segmentation {path} does not overlap the image in space (size, spacing, origin or "
                          "direction differ and no lesion falls inside the CT); check that image and segmentation "
                          "belong to the same study and series.", "geometry")


def _check_complete(path, what, kind):
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


def _first_line(exc):
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
