"""A proposal: the lesion mask proposed from a RECIST mark, held against the mark and flagged where it disagrees."""

from dataclasses import dataclass, field
from typing import List

import numpy as np
import SimpleITK as sitk

from ..core.geometry import lesion_mask
from .lines import in_plane_diameter, line_on_grid
from .method import segment

ALGORITHM_NAME = "CTTime RECIST proposal"
ALGORITHM_VERSION = "1.0"
DIAMETER_TOLERANCE = 0.20  # largest relative difference between the proposal's diameter and the line's length
FILLED_SHARE = 0.9  # a proposal covering more of its bounding region than this has not found the lesion's border
SOFT_TISSUE_HU = (-300.0, 300.0)  # a lesion line whose median value lies outside is in air, lung or bone


@dataclass
class Proposal:
    """A lesion's proposed mask (the Lesion-mask convention of core/geometry.py), its warnings (plain English, each
    naming the lesion), how it was made, the line's length and the proposal's longest in-plane diameter (mm) on
    the line's slice."""

    lesion_id: str
    mask: sitk.Image
    warnings: List[str] = field(default_factory=list)
    delineation: str = "proposed from RECIST line"
    line_length_mm: float = 0.0
    diameter_mm: float = 0.0


def propose(image, mark):
    """The lesion mask proposed from ``mark`` (a io.marks.Mark) on ``image`` (the CT, in HU); deterministic."""
    line = line_on_grid(image, mark)
    how = "proposed from RECIST long and short axes" if mark.short_axis is not None else "proposed from RECIST line"
    name = f"Lesion {mark.lesion_id}"
    if line.length_mm < min(line.spacing):
        return _proposal(mark, image, None, None, line, how,
                         [f"{name}: its RECIST line has no length, so nothing was proposed; draw the lesion's "
                          "longest diameter on its largest axial slice."])
    found = segment(image, line)
    if found is None:
        return _proposal(mark, image, None, None, line, how,
                         [f"{name}: its RECIST line lies outside the CT, so nothing was proposed; check that the "
                          "marks belong to this CT."])
    lesion, low = found
    return _proposal(mark, image, lesion, low, line, how, [])


def _proposal(mark, image, lesion, low, line, how, warnings):
    name = f"Lesion {mark.lesion_id}"
    if lesion is None:
        lesion, low = np.zeros((1, 1, 1), bool), np.zeros(3, int)
    k = line.slice_index - int(low[0])
    section = lesion[k] if 0 <= k < lesion.shape[0] else np.zeros(lesion.shape[1:], bool)
    diameter = in_plane_diameter(section, line.spacing[1:])
    if not warnings:
        warnings = _flags(name, image, lesion, low, line, diameter)
    mask = lesion_mask(lesion.astype(np.uint8), image, [int(v) for v in low[::-1]])
    return Proposal(str(mark.lesion_id), mask, warnings, how, line.length_mm, diameter)


def _flags(name, image, lesion, low, line, diameter):
    flags = []
    values = _line_values(image, line)
    if values.size and not SOFT_TISSUE_HU[0] <= np.median(values) <= SOFT_TISSUE_HU[1]:
        where = "air or lung" if np.median(values) < SOFT_TISSUE_HU[0] else "bone or contrast"
        flags.append(f"{name}: its RECIST line lies mostly in {where} (median {np.median(values):.0f} HU), not in "
                     "soft tissue; check that the line was drawn on the lesion.")
    if not lesion.any():
        flags.append(f"{name}: the proposal is empty; check that its RECIST line lies on the lesion, or delineate "
                     "the lesion by hand.")
        return flags
    if abs(diameter - line.length_mm) > DIAMETER_TOLERANCE * line.length_mm:
        flags.append(f"{name}: the proposal's longest diameter on the line's slice ({diameter:.0f} mm) differs from "
                     f"the RECIST line ({line.length_mm:.0f} mm) by more than {DIAMETER_TOLERANCE:.0%}; check the "
                     "proposal's outline on that slice and edit it.")
    if lesion.mean() > FILLED_SHARE:
        flags.append(f"{name}: the proposal fills the whole region it may grow in, so it found no border of the "
                     "lesion; check its outline and edit it.")
    return flags


def _line_values(image, line):
    size = np.array(image.GetSize())[::-1]
    points = np.round(line.samples(0.15, 0.85)).astype(int)
    points = points[np.all((points >= 0) & (points < size), axis=1)]
    return sitk.GetArrayViewFromImage(image)[tuple(points.T)].astype(float)
