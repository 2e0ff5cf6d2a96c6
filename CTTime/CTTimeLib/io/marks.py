"""RECIST marks: a lesion's long axis (and optionally its short axis) as end points in LPS millimetres."""

from dataclasses import dataclass
from typing import Optional, Tuple

Point = Tuple[float, float, float]


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
