"""RECIST marks: a lesion's long axis (and optionally its short axis) as end points in LPS millimetres.

``read_marks`` reads them from a Slicer markups file (``.mrk.json``, one Line node per measurement, the node name
the lesion ID, LPS or RAS), a CSV (``lesion_id,x1,y1,z1,x2,y2,z2`` in LPS mm, optional ``location``) or a DICOM SR
with TID 1500 length measurements (``sr_marks``), and checks them against the CT: a second line with a lesion's ID
is its short axis (the longer of the two is the long axis), a third is refused, and so is a line of zero length,
one off the CT or on a slice the CT lacks. Every problem names the file and the lesion and says what to do.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..core.errors import CTTimeError
from ..core.files import check_regular
from ..core.lesions import normalize_location
from ..core.text import control_characters

Point = Tuple[float, float, float]

MAX_MARKS_BYTES = 50 * 1024 * 1024  # a file of marks is kilobytes; anything this large is not one
CSV_COLUMNS = ("lesion_id", "x1", "y1", "z1", "x2", "y2", "z2")
FORMATS = "a Slicer markups file (.mrk.json), a CSV (lesion_id,x1,y1,z1,x2,y2,z2 in LPS mm) or a DICOM SR (TID 1500)"


@dataclass(frozen=True)
class Mark:
    """One lesion's RECIST measurement: the long axis from ``start`` to ``end`` (LPS mm, DICOM patient
    coordinates), the short axis if one was drawn, an optional location, and the file it came from."""

    lesion_id: str
    start: Point
    end: Point
    short_axis: Optional[Tuple[Point, Point]] = None
    location: Optional[str] = None
    source: str = ""

    @property
    def length_mm(self):
        return float(np.linalg.norm(np.subtract(self.end, self.start)))


@dataclass(frozen=True)
class Line:
    """One line as read from a file, before lines of the same lesion are paired (``where``: e.g. "line 3")."""

    lesion_id: str
    start: Point
    end: Point
    where: str
    location: Optional[str] = None
    short: bool = False  # the file says it is a short axis (an SR's "Short Axis")


def read_marks(path, image=None, image_path=None):
    """The marks of a file (see the module), checked against ``image`` when given (a SimpleITK CT). An SR drawn on
    the CT's slices needs ``image_path``, the CT's DICOM series folder, for the slices' geometry."""
    path = Path(path)
    if not path.exists():
        raise CTTimeError(f"Marks file not found: {path}. Check the path; give {FORMATS}.", "input")
    check_regular(path, "Marks file")
    if path.is_dir() or path.stat().st_size > MAX_MARKS_BYTES:
        raise CTTimeError(f"Marks file {path} is {'a folder' if path.is_dir() else 'larger than 50 MB'}, not a file "
                          f"of marks; give {FORMATS}.", "input")
    name = path.name.lower()
    if name.endswith(".json"):
        lines = _markups_lines(path)
    elif name.endswith(".csv"):
        lines = _csv_lines(path)
    else:
        from .sr_marks import is_dicom, sr_lines

        if not is_dicom(path):
            raise CTTimeError(f"Marks file {path} is not one CTTime reads: give {FORMATS}.", "input")
        lines = [Line(lesion_id, start, end, where, short=short)
                 for lesion_id, start, end, where, short in sr_lines(path, image_path)]
    marks = pair_lines(lines, path)
    if image is not None:
        check_on_image(marks, image, path)
    return marks


def pair_lines(lines, path):
    """One Mark per lesion ID: a lesion's second line is its short axis (the longer is the long axis); a third line,
    an empty or control-character ID, or an unknown location is a CTTimeError naming ``path``."""
    if not lines:
        raise CTTimeError(f"Marks file {path} holds no line; draw one line per lesion (its RECIST long axis).",
                          "input")
    grouped = {}
    for line in lines:
        if not line.lesion_id.strip():
            raise CTTimeError(f"Marks file {path}, {line.where}: the line has no lesion ID; name it after its lesion "
                              "(e.g. LU_1).", "input")
        if control_characters(line.lesion_id):
            raise CTTimeError(f"Marks file {path}, {line.where}: lesion ID {line.lesion_id!r} holds the control "
                              f"character(s) {' '.join(control_characters(line.lesion_id))}; rename it.", "input")
        grouped.setdefault(line.lesion_id, []).append(line)
    marks = []
    for lesion_id, group in grouped.items():
        if len(group) > 2:
            raise CTTimeError(f"Marks file {path}: lesion {lesion_id} has {len(group)} lines ({', '.join(line.where for line in group)}); "
                              "give one line (long axis) or two (long and short axis) per lesion, and rename lines "
                              "that belong to other lesions.", "input")
        group = sorted(group, key=lambda line: (line.short, -_length(line)))
        long, short = group[0], group[1] if len(group) == 2 else None
        locations = {line.location for line in group if line.location}
        if len(locations) > 1:
            raise CTTimeError(f"Marks file {path}: lesion {lesion_id} is given two locations "
                              f"({', '.join(sorted(locations))}); give one.", "input")
        try:
            location = normalize_location(locations.pop(), lesion_id) if locations else None
        except CTTimeError as exc:
            raise CTTimeError(f"Marks file {path}: {exc}", "input") from None
        marks.append(Mark(lesion_id, long.start, long.end, (short.start, short.end) if short else None, location,
                          f"{path} ({', '.join(line.where for line in group)})"))
    return marks


def _length(line):
    return float(np.linalg.norm(np.subtract(line.end, line.start)))


def check_on_image(marks, image, path):
    """Refuse marks that cannot be proposed on ``image``: of zero length (under half a voxel), an end point off the
    CT's slices in-plane, or on a slice the CT lacks (beyond its first or last slice)."""
    smallest = min(image.GetSpacing())
    size = np.array(image.GetSize(), dtype=float)
    for mark in marks:
        axes = [("long axis", mark.start, mark.end)]
        if mark.short_axis:
            axes.append(("short axis", *mark.short_axis))
        for what, start, end in axes:
            length = float(np.linalg.norm(np.subtract(end, start)))
            if length < smallest / 2:
                raise CTTimeError(f"Marks file {path}: the {what} of lesion {mark.lesion_id} has zero length "
                                  f"({length:.3g} mm, under half a voxel); draw it from one edge of the lesion to the "
                                  "other.", "input")
            for point in (start, end):
                index = np.array(image.TransformPhysicalPointToContinuousIndex([float(v) for v in point]))
                text = ", ".join(f"{v:.1f}" for v in point)
                if np.any(index[:2] < -0.5) or np.any(index[:2] > size[:2] - 0.5):
                    raise CTTimeError(f"Marks file {path}: the {what} of lesion {mark.lesion_id} ends off the CT (LPS "
                                      f"{text} mm lies outside its slices); check that the marks were drawn on this "
                                      "CT (and, for a .mrk.json, its coordinateSystem).", "input")
                if index[2] < -0.5 or index[2] > size[2] - 0.5:
                    first, last = (image.TransformIndexToPhysicalPoint([0, 0, k])[2]
                                   for k in (0, image.GetSize()[2] - 1))
                    raise CTTimeError(f"Marks file {path}: the {what} of lesion {mark.lesion_id} lies on a slice the CT "
                                      f"lacks (LPS {text} mm; the CT's slices run from z = {first:.1f} to {last:.1f} "
                                      "mm); check that the marks belong to this CT and that its series is complete.",
                                      "input")


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _point(value, where, path):
    if not isinstance(value, list) or len(value) != 3 or not all(_number(v) for v in value):
        raise CTTimeError(f"Marks file {path}, {where}: a control point's position is not three finite numbers "
                          f"({str(value)[:60]}); save the markups again from Slicer.", "input")
    return tuple(float(v) for v in value)


def _markups_lines(path):
    """The Line nodes of a Slicer markups file (``markups-schema-v1.0.x``), in LPS mm."""
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise CTTimeError(f"Marks file {path} is not valid JSON ({str(exc)[:120]}); save the markups again from "
                          "Slicer (File > Save Data, .mrk.json).", "input") from None
    except OSError as exc:
        raise CTTimeError(f"Cannot read marks file {path}: {exc.strerror or exc}.", "input") from None
    markups = payload.get("markups") if isinstance(payload, dict) else None
    if not isinstance(markups, list):
        raise CTTimeError(f"Marks file {path} is not a Slicer markups file (a JSON object with a \"markups\" list); "
                          "save the lines from Slicer as .mrk.json.", "input")
    lines, other = [], []
    for number, markup in enumerate(markups, start=1):
        where = f"markup {number}"
        if not isinstance(markup, dict):
            raise CTTimeError(f"Marks file {path}, {where}: not a markup (a JSON object).", "input")
        if markup.get("type") != "Line":
            other.append(str(markup.get("type"))[:20])
            continue
        system = markup.get("coordinateSystem", "LPS")
        if system not in ("LPS", "RAS"):
            raise CTTimeError(f"Marks file {path}, {where}: coordinateSystem {str(system)[:20]!r} is neither LPS nor "
                              "RAS.", "input")
        units = markup.get("coordinateUnits", "mm")
        scale = {"mm": 1.0, "um": 0.001}.get(units[0] if isinstance(units, list) and units else units)
        if scale is None:
            raise CTTimeError(f"Marks file {path}, {where}: coordinateUnits {str(units)[:30]!r} is neither mm nor um.",
                              "input")
        points = markup.get("controlPoints")
        if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
            raise CTTimeError(f"Marks file {path}, {where}: controlPoints is not a list of points.", "input")
        lesion_id = _markup_name(markup, points, path, number, len(markups))
        where = f"line {lesion_id!r} ({where})"
        defined = [p for p in points if p.get("positionStatus", "defined") == "defined"]
        if len(defined) != 2:
            raise CTTimeError(f"Marks file {path}, {where}: a line needs its two end points placed, it has "
                              f"{len(defined)}; place both in Slicer and save again.", "input")
        start, end = (np.multiply(_point(p.get("position"), where, path), scale) for p in defined)
        if system == "RAS":
            start, end = (point * (-1.0, -1.0, 1.0) for point in (start, end))
        lines.append(Line(lesion_id, tuple(map(float, start)), tuple(map(float, end)), where))
    if not lines and other:
        raise CTTimeError(f"Marks file {path} holds no Line markup (only {', '.join(sorted(set(other)))}); draw each "
                          "lesion's long axis with Slicer's line tool.", "input")
    return lines


def _markup_name(markup, points, path, number, count):
    """A line's lesion ID: its node name; for files without one, the name in its points' labels ("%N-%d", as Slicer
    writes them), else the file name when the file holds one markup."""
    name = markup.get("name")
    if isinstance(name, str) and name.strip():
        return name
    label = points[0].get("label") if points else None
    if markup.get("labelFormat", "%N-%d") == "%N-%d" and isinstance(label, str) and "-" in label:
        stem, _, index = label.rpartition("-")
        if index.isdigit() and stem.strip():
            return stem
    if count == 1:
        return Path(path).name.split(".")[0]
    raise CTTimeError(f"Marks file {path}, markup {number}: the line has no name; name each line after its lesion "
                      "in Slicer (e.g. LU_1) and save again.", "input")


def _csv_lines(path):
    """The rows of a marks CSV (``CSV_COLUMNS`` in LPS mm, optional ``location``)."""
    from .tables import read_csv  # pandas: not at import (Slicer's module loads without it)

    table = read_csv(path, "Marks file", CSV_COLUMNS, text=("lesion_id", "location"))
    lines = []
    for number, row in enumerate(table.to_dict("records"), start=2):  # line 1 is the header
        where = f"line {number}"
        values = []
        for column in CSV_COLUMNS[1:]:
            try:
                value = float(row[column])
            except (TypeError, ValueError):
                value = float("nan")
            if not math.isfinite(value):
                raise CTTimeError(f"Marks file {path}, {where} (lesion {row['lesion_id']}): {column} "
                                  f"{str(row[column])[:30]!r} is not a number; give LPS millimetres.", "input")
            values.append(value)
        lines.append(Line(row["lesion_id"], tuple(values[:3]), tuple(values[3:]), where,
                          row.get("location") or None))
    return lines
