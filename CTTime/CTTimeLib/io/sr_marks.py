"""RECIST lines from a DICOM SR: TID 1500 length measurements as OHIF and QuantitativeReporting write them.

Each measurement group (TID 1501/1410) names its lesion (OHIF: the free-text finding label, else the tracking
identifier) and holds length measurements (Length, Long Axis, Short Axis) whose line is a two-point SCOORD
POLYLINE on a referenced CT image (the NUM's own, as OHIF writes it, or the group's image region) or a SCOORD3D in
patient coordinates. SCOORD points are image pixel coordinates (column, row; 0, 0 is the top left corner of the top
left pixel), placed in LPS with the referenced slice's position, orientation and pixel spacing, read from the CT's
DICOM series.
"""

from pathlib import Path

import numpy as np

from ..core.errors import CTTimeError
from .dicom import read_header, series_files

MEASUREMENT_GROUP = ("125007", "DCM")
TRACKING_IDENTIFIER = ("112039", "DCM")
FINDING = ("121071", "DCM")
OHIF_FREE_TEXT = "CORNERSTONEFREETEXT"  # OHIF's code value for a measurement's free-text label
LENGTHS = {("410668003", "SCT"): False, ("G-D7FE", "SRT"): False, ("103339001", "SCT"): False,
           ("G-A185", "SRT"): False, ("103340004", "SCT"): True, ("G-A186", "SRT"): True}  # code -> is short axis


def is_dicom(path):
    with open(path, "rb") as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"


def _code(item, attribute="ConceptNameCodeSequence"):
    sequence = getattr(item, attribute, None)
    if not sequence:
        return None
    code = sequence[0]
    value = code.get("CodeValue") or code.get("LongCodeValue") or code.get("URNCodeValue") or ""
    return str(value), str(code.get("CodingSchemeDesignator", ""))


def _children(item):
    return list(getattr(item, "ContentSequence", None) or [])


def _groups(item):
    """Every measurement group in the SR's content tree (depth first)."""
    for child in _children(item):
        if child.get("ValueType") == "CONTAINER" and _code(child) == MEASUREMENT_GROUP:
            yield child
        else:
            yield from _groups(child)


def _lesion_id(group, number):
    tracking, label = "", ""
    for child in _children(group):
        if _code(child) == TRACKING_IDENTIFIER and child.get("ValueType") == "TEXT":
            tracking = str(child.get("TextValue", "")).strip()
        if _code(child) == FINDING and _code(child, "ConceptCodeSequence") and \
                _code(child, "ConceptCodeSequence")[0] == OHIF_FREE_TEXT:
            label = str(child.ConceptCodeSequence[0].get("CodeMeaning", "")).strip()
    if label:
        return label
    if tracking and not ("@" in tracking and ":" in tracking):  # OHIF's tool tag, e.g. "...Tools@^4.0.0:Length"
        return tracking
    return f"length_{number}"


def _scoord(item):
    """The first SCOORD or SCOORD3D among an item's children."""
    for child in _children(item):
        if child.get("ValueType") in ("SCOORD", "SCOORD3D"):
            return child
    return None


def sr_lines(path, image_path):
    """The length measurements of an SR, each (lesion ID, start, end, where, is a short axis) in LPS mm
    (``image_path``: the CT's DICOM series folder)."""
    import pydicom

    try:
        dataset = pydicom.dcmread(str(path))
    except Exception as exc:  # pydicom raises many types for damaged files
        raise CTTimeError(f"Marks file {path} is not a readable DICOM file ({str(exc)[:120]}).", "input") from None
    if dataset.get("Modality") != "SR":
        raise CTTimeError(f"Marks file {path} is DICOM but not a structured report (modality "
                          f"{dataset.get('Modality')!r}); give the SR holding the length measurements.", "input")
    slices = _Slices(image_path, path)
    lines = []
    for number, group in enumerate(_groups(dataset), start=1):
        lesion_id = _lesion_id(group, number)
        region = _scoord(group)
        for child in _children(group):
            short = LENGTHS.get(_code(child))
            if child.get("ValueType") != "NUM" or short is None:
                continue
            scoord = _scoord(child) or region
            where = f"measurement group {number} ({lesion_id})"
            if scoord is None:
                raise CTTimeError(f"Marks file {path}, {where}: the length has no line (no SCOORD or SCOORD3D); "
                                  "export the measurements with their graphics.", "input")
            start, end = _end_points(scoord, slices, path, where)
            lines.append((lesion_id, start, end, where, short))
    if not lines:
        raise CTTimeError(f"Marks file {path} holds no length measurement (TID 1500 measurement group with a Length, "
                          "Long Axis or Short Axis and its line); measure each lesion with the length tool.", "input")
    return lines


def _end_points(scoord, slices, path, where):
    kind = scoord.get("ValueType")
    data = [float(v) for v in (scoord.get("GraphicData") or [])]
    size = 3 if kind == "SCOORD3D" else 2
    if scoord.get("GraphicType") != "POLYLINE" or len(data) != 2 * size or not np.all(np.isfinite(data)):
        raise CTTimeError(f"Marks file {path}, {where}: the line is not a two-point POLYLINE (it is a "
                          f"{scoord.get('GraphicType')} of {len(data) // size} point(s)); measure with the length "
                          "tool.", "input")
    if kind == "SCOORD3D":
        return tuple(data[:3]), tuple(data[3:])
    images = [c for c in _children(scoord) if c.get("ValueType") == "IMAGE"]
    references = getattr(images[0], "ReferencedSOPSequence", None) if images else None
    if not references:
        raise CTTimeError(f"Marks file {path}, {where}: the line names no image it was drawn on.", "input")
    to_lps = slices.geometry(str(references[0].ReferencedSOPInstanceUID), where)
    return to_lps(data[:2]), to_lps(data[2:])


class _Slices:
    """The CT series' slices by SOP instance UID, read on first need."""

    def __init__(self, image_path, path):
        self.image_path, self.path, self.by_uid = image_path, path, None

    def geometry(self, uid, where):
        """Pixel (column, row) -> LPS point on the slice ``uid``."""
        if self.by_uid is None:
            folder = Path(self.image_path) if self.image_path else None
            files = series_files(folder) if folder is not None and folder.is_dir() else []
            if not files:
                raise CTTimeError(f"Marks file {self.path}: its lines are drawn on the CT's slices (SCOORD), so they "
                                  f"need the CT as its DICOM series folder (--image FOLDER); {self.image_path} is not "
                                  "one.", "input")
            headers = (read_header(file) for file in files)
            self.by_uid = {str(h.SOPInstanceUID): h for h in headers if h is not None and "SOPInstanceUID" in h}
        header = self.by_uid.get(uid)
        if header is None:
            raise CTTimeError(f"Marks file {self.path}, {where}: the line lies on a slice the CT lacks (image {uid} "
                              f"is not in the series {self.image_path}); give the CT series it was measured on.",
                              "input")
        try:
            position = np.array([float(v) for v in header.ImagePositionPatient])
            row_axis, column_axis = np.array([float(v) for v in header.ImageOrientationPatient]).reshape(2, 3)
            between_rows, between_columns = (float(v) for v in header.PixelSpacing)
        except (AttributeError, ValueError, TypeError):
            raise CTTimeError(f"Marks file {self.path}, {where}: slice {uid} of the CT lacks its position, orientation "
                              "or pixel spacing.", "input") from None

        def to_lps(pixel):
            column, row = (v - 0.5 for v in pixel)  # pixel coordinates of a pixel centre -> its indices
            point = position + column * between_columns * row_axis + row * between_rows * column_axis
            return tuple(float(v) for v in point)

        return to_lps
