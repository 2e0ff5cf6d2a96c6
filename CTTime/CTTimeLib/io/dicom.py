"""DICOM: image series headers, and lesions from DICOM SEG or RTSTRUCT files (read with pydicom).

A segmentation given as a DICOM SEG file, an RTSTRUCT file, or a folder holding one, becomes one lesion per
segment (SEG: the segment label; RTSTRUCT: the ROI name). SEG frames are placed on their own grid (then resampled
onto the CT like any segmentation); RTSTRUCT contours are filled on the CT's grid, even-odd, so inner contours
are holes.
"""

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.errors import CTTimeError
from ..core.geometry import grid_problem, ijk_to_lps
from ..core.lesions import infer_location
from ..core.tags import LOCATION_TAG

SEGMENTATION_MODALITIES = ("SEG", "RTSTRUCT")


def _read(path, **kwargs):
    """A DICOM dataset, or None for a file that is not DICOM (no "DICM" after the 128-byte preamble)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            if handle.read(4) != b"DICM":
                return None
    except OSError:
        return None
    import pydicom

    try:
        return pydicom.dcmread(str(path), **kwargs)
    except Exception:  # not DICOM, or too damaged to read: pydicom raises many types for such files
        return None


def series_files(folder):
    """The files of the largest DICOM image series in a folder (sorted by position), or []."""
    series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    return list(max((sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid) for uid in series), key=len,
                    default=()))


def read_header(path):
    """The header (no pixels) of a DICOM file, else None."""
    return _read(path, stop_before_pixels=True)


def image_header(path):
    """The header (no pixels) of a DICOM image file or of the first file of a series folder, else None."""
    path = Path(path)
    files = series_files(path) if path.is_dir() else [path]
    return read_header(files[0]) if files else None


def segmentation_file(path):
    """``(file, modality)`` of the DICOM SEG or RTSTRUCT at ``path`` (a file or a folder holding one), else None."""
    path = Path(path)
    candidates = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for candidate in candidates:
        header = _read(candidate, stop_before_pixels=True, specific_tags=["Modality"])
        if header is not None and header.get("Modality") in SEGMENTATION_MODALITIES:
            return candidate, header.Modality
    return None


def segment_names(path):
    """The lesion IDs a DICOM SEG or RTSTRUCT declares (header only), else []."""
    found = segmentation_file(path)
    header = _read(found[0], stop_before_pixels=True) if found else None
    if header is None:
        return []
    if found[1] == "SEG":
        return [str(item.get("SegmentLabel") or f"segment_{item.SegmentNumber}") for item in header.SegmentSequence]
    return [str(item.ROIName) for item in header.get("StructureSetROISequence", [])]


def read_segmentation(path, image):
    """``[(lesion_id, mask, tags)]`` of a DICOM SEG or RTSTRUCT (``path``: file or folder)."""
    found = segmentation_file(path)
    if found is None:
        raise CTTimeError(f"{path} holds no DICOM SEG or RTSTRUCT file.", "input")
    dataset = _read(found[0])
    if dataset is None:
        raise CTTimeError(f"Cannot read DICOM segmentation {found[0]}.", "input")
    try:
        return _read_seg(dataset) if found[1] == "SEG" else _read_rtstruct(dataset, image)
    except (AttributeError, IndexError, KeyError, ValueError) as exc:
        raise CTTimeError(f"DICOM {found[1]} {found[0]} is incomplete or damaged ({type(exc).__name__}: {exc}); "
                          "export it again.", "input") from None


def _location_tags(description):
    for region in description.get("AnatomicRegionSequence", []):
        location = infer_location(str(region.get("CodeMeaning", "")))
        if location != "other":
            return {LOCATION_TAG: location}
    return {}


def _read_seg(dataset):
    shared = dataset.SharedFunctionalGroupsSequence[0]
    frames_info = dataset.PerFrameFunctionalGroupsSequence

    def functional(frame, name):
        return (frame.get(name) or shared.get(name))[0]

    orientation = np.array(functional(frames_info[0], "PlaneOrientationSequence").ImageOrientationPatient, float)
    row_direction, column_direction = orientation[:3], orientation[3:]
    normal = np.cross(row_direction, column_direction)
    measures = functional(frames_info[0], "PixelMeasuresSequence")
    row_spacing, column_spacing = (float(v) for v in measures.PixelSpacing)
    positions = np.array([functional(f, "PlanePositionSequence").ImagePositionPatient for f in frames_info], float)
    depth = positions @ normal
    distinct = np.unique(np.round(depth, 4))
    spacing = float(measures.get("SpacingBetweenSlices") or 0) or (
        float(np.min(np.diff(distinct))) if len(distinct) > 1 else float(measures.get("SliceThickness") or 1.0))
    slices = np.round((depth - depth.min()) / spacing).astype(int)
    pixels = dataset.pixel_array.reshape(len(frames_info), dataset.Rows, dataset.Columns)
    if dataset.get("SegmentationType") == "FRACTIONAL":
        pixels = pixels >= float(dataset.MaximumFractionalValue) / 2
    origin = positions[int(np.argmin(depth))]
    direction = np.column_stack([row_direction, column_direction, normal]).ravel()
    problem = grid_problem((column_spacing, row_spacing, spacing), direction)
    if problem:
        raise ValueError(problem)
    lesions = []
    for description in dataset.SegmentSequence:
        number = int(description.SegmentNumber)
        volume = np.zeros((slices.max() + 1, dataset.Rows, dataset.Columns), np.uint8)
        for index, frame in enumerate(frames_info):
            if int(functional(frame, "SegmentIdentificationSequence").ReferencedSegmentNumber) == number:
                volume[slices[index]] |= (pixels[index] > 0).astype(np.uint8)
        mask = sitk.GetImageFromArray(volume)
        mask.SetSpacing((column_spacing, row_spacing, spacing))
        mask.SetOrigin(tuple(float(v) for v in origin))
        mask.SetDirection(tuple(float(v) for v in direction))
        name = str(description.get("SegmentLabel") or f"segment_{number}")
        lesions.append((name, mask, _location_tags(description)))
    return lesions


def _read_rtstruct(dataset, image):
    from matplotlib.path import Path as Polygon

    names = {int(roi.ROINumber): str(roi.ROIName) for roi in dataset.StructureSetROISequence}
    size = image.GetSize()
    lps_to_index = np.linalg.inv(ijk_to_lps(image))
    lesions = []
    for roi in dataset.ROIContourSequence:
        volume = np.zeros(size[::-1], np.uint8)
        for contour in roi.get("ContourSequence", []):
            if contour.get("ContourGeometricType", "CLOSED_PLANAR") != "CLOSED_PLANAR":
                continue
            points = np.array(contour.ContourData, float).reshape(-1, 3)
            index = (lps_to_index @ np.column_stack([points, np.ones(len(points))]).T).T[:, :3]
            k = int(round(float(np.mean(index[:, 2]))))
            if not 0 <= k < size[2]:
                continue
            low = np.clip(np.floor(index[:, :2].min(axis=0)).astype(int), 0, None)
            high = np.minimum(np.ceil(index[:, :2].max(axis=0)).astype(int), np.array(size[:2]) - 1)
            if np.any(high < low):
                continue
            i, j = np.meshgrid(np.arange(low[0], high[0] + 1), np.arange(low[1], high[1] + 1))
            inside = Polygon(index[:, :2]).contains_points(np.column_stack([i.ravel(), j.ravel()]))
            volume[k, j.ravel()[inside], i.ravel()[inside]] ^= 1
        mask = sitk.GetImageFromArray(volume)
        mask.CopyInformation(image)
        lesions.append((names.get(int(roi.ReferencedROINumber), f"roi_{roi.ReferencedROINumber}"), mask, {}))
    return lesions
