"""A proposal: the lesion mask proposed from a RECIST mark, held against the mark and flagged where it disagrees."""

from dataclasses import dataclass, field
from typing import List

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..core.geometry import lesion_mask
from .lines import in_plane_diameter, line_on_grid
from .method import segment

ALGORITHM_NAME = "CTTime RECIST proposal"
ALGORITHM_VERSION = "1.0"
DIAMETER_TOLERANCE = 0.20  # largest relative difference between the proposal's diameter and the line's length
EDGE_SHARE = 0.1  # a proposal covering more of a face of its bounding region than this has leaked
SEPARATION_MIN = 0.05  # lesion and background histograms closer than this: no border was found
BONE_HU, BONE_SHARE = 300.0, 0.1  # a proposal with more than this share of voxels over BONE_HU holds bone
FOREIGN_HU, FOREIGN_SHARE, FOREIGN_MIN_MM = 100.0, 0.1, 3.0  # a stretch of the line this unlike the rest
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
    """The lesion mask proposed from ``mark`` (an io.marks.Mark) on ``image`` (the CT, in HU); deterministic. A
    mark that cannot give a lesion (no length, outside the CT, in air or bone) gives a flagged proposal, never an
    exception."""
    line = line_on_grid(image, mark)
    how = "proposed from RECIST long and short axes" if mark.short_axis is not None else "proposed from RECIST line"
    name = f"Lesion {mark.lesion_id}"
    if not np.all(np.isfinite(np.concatenate([line.start, line.end]))):
        return _empty(mark, image, line, how, f"{name}: its RECIST line's end points are not numbers, so nothing "
                      "was proposed; check the marks file.")
    if not line.length_mm >= min(line.spacing):
        return _empty(mark, image, line, how, f"{name}: its RECIST line is shorter than a voxel, so nothing was "
                      "proposed; draw the lesion's longest diameter on its largest axial slice.")
    found = segment(image, line)
    if found is None:
        return _empty(mark, image, line, how, f"{name}: its RECIST line lies outside the CT, so nothing was "
                      "proposed; check that the marks belong to this CT.")
    k = line.slice_index - int(found.low[0])
    diameter = in_plane_diameter(found.lesion[k], line.spacing[1:]) if 0 <= k < found.lesion.shape[0] else 0.0
    mask = lesion_mask(found.lesion.astype(np.uint8), image, [int(v) for v in found.low[::-1]])
    return Proposal(str(mark.lesion_id), mask, flags(name, image, found, line, diameter), how, line.length_mm,
                    diameter)


def _empty(mark, image, line, how, warning):
    mask = lesion_mask(np.zeros((1, 1, 1), np.uint8), image)
    return Proposal(str(mark.lesion_id), mask, [warning], how, line.length_mm, 0.0)


def flags(name, image, found, line, diameter):
    """The warnings of a proposal (``found``: its method.Segmentation) that disagrees with its line or with what a
    lesion looks like."""
    warnings = []
    if abs(line.start[0] - line.end[0]) > 0.5:
        warnings.append(f"{name}: its RECIST line's ends lie on different axial slices ({line.start[0]:.0f} and "
                        f"{line.end[0]:.0f}); the proposal is measured on slice {line.slice_index}; check that the "
                        "line was drawn on one axial slice.")
    values = sampled_values(image, line.samples(0.15, 0.85))
    if values.size and not SOFT_TISSUE_HU[0] <= np.median(values) <= SOFT_TISSUE_HU[1]:
        where = "air or lung" if np.median(values) < SOFT_TISSUE_HU[0] else "bone or contrast"
        warnings.append(f"{name}: its RECIST line lies mostly in {where} (median {np.median(values):.0f} HU), not "
                        "in soft tissue; check that the line was drawn on the lesion.")
    gap = foreign_run(image, line)
    if gap:
        warnings.append(f"{name}: its RECIST line crosses {gap[0]:.0f} mm of tissue unlike the rest of the line "
                        f"(median {gap[1]:.0f} HU against {gap[2]:.0f} HU) between its ends; check that it spans "
                        "one lesion, not two, and edit the proposal.")
    lesion = found.lesion
    if not lesion.any():
        warnings.append(f"{name}: the proposal is empty; check that its RECIST line lies on the lesion, or "
                        "delineate the lesion by hand.")
        return warnings
    if abs(diameter - line.length_mm) > DIAMETER_TOLERANCE * line.length_mm:
        warnings.append(f"{name}: the proposal's longest diameter on the line's slice ({diameter:.0f} mm) differs "
                        f"from the RECIST line ({line.length_mm:.0f} mm) by more than {DIAMETER_TOLERANCE:.0%}; "
                        "check the proposal's outline on that slice and edit it.")
    if reaches_region_edge(lesion, found.low, np.array(image.GetSize())[::-1]):
        warnings.append(f"{name}: the proposal reaches the edge of the region it may occupy around its RECIST line, "
                        "so it may have leaked into neighbouring tissue; check its outline, above and below the "
                        "line's slice too, and edit it.")
    elif found.separation < SEPARATION_MIN:
        warnings.append(f"{name}: the CT values inside and around the proposal hardly differ, so its outline comes "
                        "from the line's shape rather than from a visible border; check it against the lesion and "
                        "edit it.")
    box = tuple(slice(int(a), int(a) + n) for a, n in zip(found.low, lesion.shape))
    dense = float(np.mean(sitk.GetArrayViewFromImage(image)[box][lesion] > BONE_HU))
    if dense > BONE_SHARE:
        warnings.append(f"{name}: {dense:.0%} of the proposal is as dense as bone (over {BONE_HU:.0f} HU); check "
                        "that its RECIST line lies on the lesion and not on bone, and edit the proposal.")
    return warnings


def foreign_run(image, line):
    """The longest stretch of the line, away from its ends, whose values differ from the line's median by more
    than ``FOREIGN_HU`` (e.g. fat, air or bone between two lesions): (length mm, its median, the line's median)
    when it is longer than ``FOREIGN_SHARE`` of the line and ``FOREIGN_MIN_MM``; else None."""
    values = sampled_values(image, line.samples(0.05, 0.95))
    if values.size < 5:
        return None
    values = ndimage.median_filter(values, 3, mode="nearest")
    level = float(np.median(values))
    labels, count = ndimage.label(np.abs(values - level) > FOREIGN_HU)
    if not count:
        return None
    lengths = np.bincount(labels.ravel())[1:]
    longest = int(np.argmax(lengths)) + 1
    length_mm = lengths[longest - 1] * 0.9 * line.length_mm / (values.size - 1)
    if length_mm < max(FOREIGN_MIN_MM, FOREIGN_SHARE * line.length_mm):
        return None
    return length_mm, float(np.median(values[labels == longest])), level


def reaches_region_edge(lesion, low, shape):
    """Whether the lesion covers more than ``EDGE_SHARE`` of a face of its bounding region that lies inside the
    CT (a face on the CT's own edge does not count)."""
    high = low + np.array(lesion.shape)
    for axis in range(3):
        for index, inside in ((0, low[axis] > 0), (-1, high[axis] < shape[axis])):
            face = np.take(lesion, index, axis=axis)
            if inside and face.size > 1 and face.mean() > EDGE_SHARE:
                return True
    return False


def sampled_values(image, points):
    """CT values at the voxels nearest to KJI ``points`` inside the CT."""
    size = np.array(image.GetSize())[::-1]
    points = np.round(points).astype(int)
    points = points[np.all((points >= 0) & (points < size), axis=1)]
    return sitk.GetArrayViewFromImage(image)[tuple(points.T)].astype(float)
