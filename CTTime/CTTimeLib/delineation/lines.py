"""A RECIST line on the CT's voxel grid, and the RECIST line of a delineated lesion."""

from dataclasses import dataclass
from typing import Optional

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from ..core.geometry import grid_offset, on_image_grid
from ..io.marks import Mark


@dataclass
class Line:
    """A mark in the CT's voxel frame: ends and short-axis ends as continuous KJI indices, the voxel spacing (KJI,
    mm), and lengths in mm (``short_mm`` None without a short axis)."""

    start: np.ndarray
    end: np.ndarray
    spacing: np.ndarray
    length_mm: float
    short_mm: Optional[float] = None

    @property
    def centre(self):
        return (self.start + self.end) / 2

    @property
    def slice_index(self):
        """The axial slice (K index) the line is measured on: the one under its centre."""
        return int(round(float(self.centre[0])))

    def samples(self, low=0.0, high=1.0, count=None):
        """Continuous KJI points along the line from fraction ``low`` to ``high`` of its length, about two a mm."""
        count = count or max(2, int(np.ceil(2 * self.length_mm * (high - low))) + 1)
        fractions = np.linspace(low, high, count)
        return self.start + np.outer(fractions, self.end - self.start)


def line_on_grid(image, mark):
    """The mark's line on ``image``'s voxel grid (ends may lie outside the image)."""
    def index(point):
        return np.array(image.TransformPhysicalPointToContinuousIndex([float(v) for v in point]))[::-1]

    spacing = np.array(image.GetSpacing(), dtype=float)[::-1]
    start, end = index(mark.start), index(mark.end)
    short = None
    if mark.short_axis is not None:
        short = float(np.linalg.norm((index(mark.short_axis[1]) - index(mark.short_axis[0])) * spacing))
    return Line(start, end, spacing, float(np.linalg.norm((end - start) * spacing)), short)


def longest_chord(points_mm):
    """The two of ``points_mm`` (N x 2) farthest apart, as indices into it."""
    candidates = np.arange(len(points_mm))
    if len(points_mm) > 3:
        try:
            candidates = ConvexHull(points_mm).vertices
        except QhullError:  # collinear points: every point is a candidate
            pass
    hull = points_mm[candidates]
    distances = ((hull[:, None, :] - hull[None, :, :]) ** 2).sum(axis=-1)
    i, j = np.unravel_index(int(np.argmax(distances)), distances.shape)
    return int(candidates[i]), int(candidates[j])


def boundary_points(section):
    """JI indices of the boundary pixels of a 2-D boolean section."""
    return np.argwhere(section & ~ndimage.binary_erosion(section))


def in_plane_diameter(section, spacing_ji):
    """The longest distance (mm) between two boundary pixel centres of a 2-D boolean section (0 when empty)."""
    points = boundary_points(section) * spacing_ji
    if len(points) < 2:
        return 0.0
    i, j = longest_chord(points)
    return float(np.linalg.norm(points[i] - points[j]))


def marks_from_mask(mask, image, lesion_id, source="derived from mask"):
    """The RECIST line of a delineated lesion (a mask of any grid, resampled onto ``image``'s): on the axial slice
    where the lesion's in-plane diameter is largest, the two boundary pixel centres farthest apart; the short axis
    is the longest chord of boundary pixels within 5 degrees of perpendicular to it. ``None`` for an empty mask."""
    lesion = on_image_grid(mask, image)
    array = sitk.GetArrayViewFromImage(lesion) != 0
    if not array.any():
        return None
    spacing_ji = np.array(image.GetSpacing(), dtype=float)[1::-1]
    best = None
    for k in np.flatnonzero(array.any(axis=(1, 2))):
        points = boundary_points(array[k]).astype(float)
        if len(points) == 1:
            chord = (0, 0)
        else:
            chord = longest_chord(points * spacing_ji)
        length = float(np.linalg.norm((points[chord[0]] - points[chord[1]]) * spacing_ji))
        if best is None or length > best[0]:
            best = (length, k, points, chord)
    _, k, points, (i, j) = best
    short = short_axis(points * spacing_ji, points[j] - points[i], spacing_ji)
    offset = np.array(grid_offset(lesion, image, 1e-4))

    def lps(point_ji):
        index = offset + np.array([point_ji[1], point_ji[0], k], dtype=float)
        return tuple(float(v) for v in image.TransformContinuousIndexToPhysicalPoint(list(index)))

    short_ends = None if short is None else (lps(points[short[0]]), lps(points[short[1]]))
    return Mark(str(lesion_id), lps(points[i]), lps(points[j]), short_ends, None, source)


def short_axis(points_mm, long_ji, spacing_ji):
    """Indices of the longest chord of ``points_mm`` within 5 degrees of perpendicular to the long axis; ``None``
    when there is none."""
    long_mm = long_ji * spacing_ji
    norm = np.linalg.norm(long_mm)
    if norm == 0 or len(points_mm) < 2:
        return None
    difference = points_mm[:, None, :] - points_mm[None, :, :]
    length = np.linalg.norm(difference, axis=-1)
    cosine = np.abs(difference @ (long_mm / norm)) / np.where(length > 0, length, np.inf)
    candidate = np.where((cosine < np.sin(np.radians(5))) & (length > 0), length, 0.0)
    if not candidate.any():
        return None
    i, j = np.unravel_index(int(np.argmax(candidate)), candidate.shape)
    return int(i), int(j)



def jittered(mark, image, distance_mm, rng):
    """``mark`` with each end moved ``distance_mm`` in a random direction within the CT's slice plane (``rng``: a
    numpy Generator), as a reader's hand would; the short axis is dropped."""
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)

    def moved(point):
        angle = rng.uniform(0.0, 2.0 * np.pi)
        step = distance_mm * (np.cos(angle) * direction[:, 0] + np.sin(angle) * direction[:, 1])
        return tuple(float(v) for v in np.add(point, step))

    return Mark(mark.lesion_id, moved(mark.start), moved(mark.end), None, mark.location, mark.source)
