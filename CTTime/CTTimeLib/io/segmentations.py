"""Segmentations: the lesions of a segmentation file, each as a mask cropped to the lesion on the CT's grid.

A Slicer segmentation (``.seg.nrrd``, or any NRRD whose header carries Slicer's ``Segment<N>_*`` fields; segments
in one or several layers; segment names become lesion IDs), a labelmap (one integer label per lesion) or a binary
mask in any format SimpleITK reads, or a DICOM SEG / RTSTRUCT file (or a folder holding one; see ``dicom``). A
segmentation on another grid than the image is resampled onto it (nearest neighbour) when the two overlap.

A labelmap's lesions are named, by priority: the names given (``--label-name``, the manifest's ``labels``), the
label's name in a colour table beside the labelmap (``label_tables``), else ``lesion_<label>``. NIfTI-1 has no
label table in its header, in NRRD only Slicer's segment fields name labels (read above), and ITK-SNAP keeps label
names in its workspace or an exported label description file: a colour table is the way to name the others.
"""

import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.errors import CTTimeError
from ..core.files import check_regular
from ..core.geometry import (check_grid, geometry_from_ijk_to_lps, grid_problem, image_like, lesion_mask,
                             matrix_grid, on_image_grid, physical_box, set_geometry)
from ..core.lesions import Lesion, default_label_name, infer_location, normalize_location
from ..core.tags import LOCATION_TAG
from ..core.text import check_name
from . import dicom
from .images import check_complete, check_header, check_size, first_line, read_error
from .label_tables import label_table, read_label_table


def read_lesions(path, image, names=None, locations=None, max_voxels=None, default_location=None):
    """Read the lesions of a segmentation file, each as a mask on ``image``'s grid.

    ``names`` maps label values of a labelmap to lesion IDs (default: the colour table beside it, else
    "lesion_<label>"); ``locations`` maps lesion IDs to a location (default: the segment's CTTime.Location tag,
    else inferred from the name, else ``default_location``, the study's, else "other"); ``max_voxels``: see
    ``io.images.voxel_limit``. A lesion ID with a control character is refused; a name or location given for a
    label or lesion the file does not hold is an error, not ignored.
    """
    path = Path(path)
    if not path.exists():
        raise CTTimeError(f"Segmentation not found: {path}. Check the path.", "input")
    check_regular(path, "Segmentation")
    if is_slicer_segmentation(path):
        check_size(path, "Segmentation", max_voxels)
        raw = _read_seg_nrrd(path)
    elif dicom.segmentation_file(path):
        raw = dicom.read_segmentation(path, image)
    else:
        check_size(path, "Segmentation", max_voxels)
        raw = _read_labelmap(path, names or {}, max_voxels)
    if names and not is_labelmap(path):
        raise CTTimeError(f"Segmentation {path} is a {'Slicer segmentation' if is_slicer_segmentation(path) else 'DICOM'}"
                          " file whose segments carry their own names; label names (--label-name, the manifest's "
                          "labels) apply to labelmaps only: rename the segments instead.", "input")
    if not raw:
        raise CTTimeError(f"Segmentation {path} holds no lesion (no segment, no non-zero label).", "input")
    unknown = sorted(set(locations or {}) - {lesion_id for lesion_id, _, _ in raw})
    if unknown:
        raise CTTimeError(f"Segmentation {path} has no lesion {', '.join(map(repr, unknown))} to give a location "
                          f"(--location, the manifest's locations); its lesions are "
                          f"{', '.join(repr(lesion_id) for lesion_id, _, _ in raw)}.", "input")
    seen = set()
    lesions = []
    for lesion_id, mask, tags in raw:
        check_name(lesion_id, f"Segmentation {path}: lesion ID")
        if lesion_id in seen:
            raise CTTimeError(f"Segmentation {path}: lesion ID {lesion_id!r} occurs twice; rename one segment so "
                              "every lesion has its own ID.", "input")
        seen.add(lesion_id)
        given = (locations or {}).get(lesion_id) or tags.get(LOCATION_TAG)
        location = normalize_location(given, lesion_id) if given else infer_location(lesion_id, default_location)
        lesions.append(Lesion(lesion_id, lesion_mask(sitk.GetArrayViewFromImage(mask), mask), location, tags))
    _check_overlap(path, image, [lesion.mask for lesion in lesions])
    return [Lesion(lesion.lesion_id, on_image_grid(lesion.mask, image), lesion.location, lesion.tags)
            for lesion in lesions]


def is_slicer_segmentation(path):
    """A .seg.nrrd, or another NRRD whose header carries Slicer's segment fields (``Segment0_ID:=`` ...)."""
    name = Path(path).name.lower()
    if name.endswith(".seg.nrrd"):
        return True
    if not name.endswith(".nrrd") or not Path(path).is_file():
        return False
    return bool(re.search(rb"^Segment0_(ID|Name|LabelValue):=", _nrrd_header(path), re.MULTILINE))


def is_labelmap(path):
    """A segmentation read as a labelmap (one integer label per lesion): neither Slicer's nor DICOM."""
    return not is_slicer_segmentation(path) and not dicom.segmentation_file(path)


def _nrrd_header(path):
    try:
        with open(path, "rb") as handle:
            return handle.read(1 << 20).split(b"\n\n", 1)[0]
    except OSError:
        return b""


def _read_seg_nrrd(path):
    import slicerio

    try:
        segmentation = slicerio.read_segmentation(str(path))
    except Exception as exc:  # slicerio and pynrrd raise several types for a damaged file
        _check_names_on_one_line(path)
        raise CTTimeError(f"Cannot read segmentation {path}: {first_line(exc)}. Save it again from Slicer "
                          "(Segmentations > Export) or give a labelmap.", "input") from None
    matrix = np.asarray(segmentation["ijkToLPS"], dtype=float)
    problem = grid_problem(*matrix_grid(matrix))
    if problem:
        raise CTTimeError(f"Segmentation {path}: {problem}", "geometry")
    geometry = geometry_from_ijk_to_lps(matrix)
    utf8_names = seg_nrrd_segment_names(path)
    segments = segmentation.get("segments", [])
    voxels = segmentation["voxels"]
    layers = voxels.shape[0] if voxels.ndim == 4 else 1
    lesions = []
    for index, segment in enumerate(segments):
        name = str((utf8_names[index] if len(utf8_names) == len(segments) else segment.get("name"))
                   or segment.get("id"))
        _check_layer(path, name, segment.get("layer", 0), segment.get("labelValue", 1), layers)
        ijk = slicerio.segment_mask(segmentation, segment)
        mask = sitk.GetImageFromArray(np.ascontiguousarray(ijk.transpose(2, 1, 0), dtype=np.uint8))
        set_geometry(mask, geometry)
        lesions.append((name, mask, dict(segment.get("tags", {}))))
    return lesions


def _check_layer(path, name, layer, label_value, layers):
    """A segment's layer must be one of the file's layers and its label value a positive whole number; else its
    mask would be another segment's voxels (a layer index of -1 is the last layer) or the background."""
    if not isinstance(layer, int) or not 0 <= layer < layers:
        raise CTTimeError(f"Segmentation {path}: segment {name!r} says it is stored in layer {layer}, but the file has "
                          f"{layers} layer(s) (0 to {layers - 1}); its voxels would be another segment's. The file is "
                          "damaged or was edited by hand: save it again from Slicer.", "input")
    if not isinstance(label_value, int) or label_value < 1:
        raise CTTimeError(f"Segmentation {path}: segment {name!r} has label value {label_value}; it must be a whole "
                          "number of at least 1 (0 is the background). Save the segmentation again from Slicer.",
                          "input")


def _check_names_on_one_line(path):
    """Say so when a .seg.nrrd cannot be read because a segment name holds a line break: the NRRD header has one
    field a line, so the rest of the name is a line that is no field."""
    lines = _nrrd_header(path).split(b"\n")
    for line, following in zip(lines, lines[1:]):
        named = re.match(rb"Segment(\d+)_Name:=(.*)$", line)
        if named and not following.startswith(b"#") and b":" not in following:
            name, rest = (part.decode("utf-8", "replace") for part in (named.group(2), following))
            raise CTTimeError(f"Segmentation {path}: the name of segment {int(named.group(1))} holds a line break "
                              f"({name!r}, then {rest!r} on a line of its own), so the file's header cannot be read. "
                              "Rename the segment on one line in Slicer and save the segmentation again.", "input")


def seg_nrrd_segment_names(path):
    """A .seg.nrrd's segment names as Slicer writes them (UTF-8; pynrrd's ASCII reader drops other characters),
    in segment order."""
    with open(path, "rb") as handle:
        header = handle.read(1 << 20).split(b"\n\n", 1)[0]
    found = re.findall(rb"^Segment(\d+)_Name:=(.*)$", header, re.MULTILINE)
    return [value.decode("utf-8", "replace") for _, value in sorted(found, key=lambda item: int(item[0]))]


def _read_labelmap(path, names, max_voxels):
    check_complete(path, "Segmentation", "input", max_voxels)
    check_header(path, "Segmentation")
    try:
        labelmap = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise read_error(exc, f"Segmentation {path}", "input", "Give a .seg.nrrd, a labelmap or a binary "
                                                               "mask.") from None
    if labelmap.GetNumberOfComponentsPerPixel() != 1 or labelmap.GetDimension() != 3:
        raise CTTimeError(f"Segmentation {path} is not a 3-D scalar labelmap (dimension {labelmap.GetDimension()}, "
                          f"{labelmap.GetNumberOfComponentsPerPixel()} components); export one labelmap per "
                          "CT volume.", "input")
    check_grid(labelmap, f"Segmentation {path}")
    values = sitk.GetArrayViewFromImage(labelmap)
    if values.dtype.kind == "f" and (not np.all(np.isfinite(values)) or not np.array_equal(values, np.round(values))):
        raise CTTimeError(f"Segmentation {path} has non-integer values; a labelmap holds one integer label per "
                          "lesion (0 = background): export it again as a labelmap or binary mask.", "input")
    inside = np.flatnonzero(values)  # one pass over the labelmap; each label then costs its own voxels
    found = values.ravel()[inside]
    labels = [int(label) for label in np.unique(found)]
    missing = sorted(set(names) - set(labels), key=str)
    if missing:
        raise CTTimeError(f"Segmentation {path} has no label {', '.join(map(str, missing))} to name (--label-name, the "
                          f"manifest's labels); its labels are {', '.join(map(str, labels)) or 'none'}.", "input")
    table = label_table(path)
    table_names = read_label_table(table) if table else {}
    lesions = []
    for label in labels:
        kji = np.unravel_index(inside[found == label], values.shape)
        low = [int(axis.min()) for axis in kji]
        box = tuple(slice(first, int(axis.max()) + 1) for first, axis in zip(low, kji))
        mask = image_like(values[box] == label, labelmap, low[::-1])
        lesions.append((str(names.get(label) or table_names.get(label) or default_label_name(label)), mask, {}))
    return lesions


def _check_overlap(path, image, masks):
    """A segmentation whose lesions lie wholly outside the image is an error, not a set of empty lesions
    (``masks``: cropped to their voxels, on their own grid)."""
    image_low, image_high = physical_box(image, [-0.5] * 3, [s - 0.5 for s in image.GetSize()])
    drawn = [mask for mask in masks if sitk.GetArrayViewFromImage(mask).any()]
    for mask in drawn:
        low, high = physical_box(mask, [-0.5] * 3, [s - 0.5 for s in mask.GetSize()])
        if np.all(low < image_high) and np.all(high > image_low):
            return
    if drawn:
        raise CTTimeError(f"Segmentation {path} does not overlap the image in space (size, spacing, origin or "
                          "direction differ and no lesion falls inside the CT); check that image and segmentation "
                          "belong to the same study and series.", "geometry")


def segment_names(path):
    """Lesion IDs a segmentation declares in its header (Slicer segmentation, DICOM SEG or RTSTRUCT), else []."""
    path = Path(path)
    if not path.is_file() and not path.is_dir():
        return []
    if is_slicer_segmentation(path):
        try:
            return seg_nrrd_segment_names(path)
        except OSError:  # unreadable file: reading the case reports it
            return []
    return dicom.segment_names(path)
