"""The proposal's segmentation: the lesion's voxels around its RECIST line.

Each voxel's log odds of being lesion is the sum of a likelihood ratio and a shape prior. The likelihood ratio
compares two intensity histograms: the lesion's (the line's middle and the voxels taken as lesion) against the
background's (a shell around the lesion, then the voxels taken as background), re-estimated over a few rounds as
in GrabCut. The prior falls off across the surface of an ellipsoid spanned by the long axis, the short axis (or an
assumed one) and a depth across the slices. The log odds are smoothed, and the lesion is where they are positive,
between the planes through the line's ends, holes filled, the parts the line crosses. Large lesions are worked on
a coarser grid (a fixed number of voxels across the long axis), which bounds the cost per lesion.
"""

from dataclasses import replace
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

SHORT_TO_LONG = 0.65  # the short axis assumed when none was drawn, as a share of the long axis
DEPTH_TO_LONG = 0.6  # the prior's half extent across the line's plane, as a share of the long axis
REACH = 1.6  # the region the lesion may occupy: the prior ellipsoid scaled by this
PRIOR_SOFTNESS = 0.2  # how far (in normalised ellipsoid radius) the prior's log odds take to fall by one
BACKGROUND_SHELL = (1.15, 1.6)  # normalised radii of the shell that models the background in the first round
CORE = 0.5  # normalised radius of the core whose voxels join the line's samples in the lesion's first model,
CORE_RANGE_HU = 100.0  # those within this of the line's 5th to 95th percentiles (not air beside a lung nodule)
BIN_HU = 10.0  # histogram bin width
ROUNDS = 3  # rounds of re-estimating both histograms from the voxels taken as lesion and as background
SMOOTHING_MM = 1.5  # Gaussian smoothing of the log odds
SLAB_MARGIN_MM = 1.0  # tolerance beyond the planes through the line's ends
WORK_VOXELS = 32  # voxels across the long axis on the working grid, at most (never finer than the CT's)
LOWEST_HU, HIGHEST_HU = -1100.0, 2000.0


def ellipsoid_frame(line):
    """Unit axes (mm, KJI order) of the prior ellipsoid: along the line, across it in its slice, and the third
    perpendicular to both."""
    along = (line.end - line.start) * line.spacing
    along = along / np.linalg.norm(along)
    across = np.cross(along, [1.0, 0.0, 0.0])
    if np.linalg.norm(across) < 1e-6:  # a line across the slices: any in-plane direction will do
        across = np.array([0.0, 1.0, 0.0])
    across = across / np.linalg.norm(across)
    return along, across, np.cross(along, across)


def semi_axes(line):
    """The prior ellipsoid's semi-axes (mm) along the frame of ``ellipsoid_frame``."""
    short = line.short_mm if line.short_mm else SHORT_TO_LONG * line.length_mm
    return np.array([line.length_mm / 2, short / 2, DEPTH_TO_LONG * line.length_mm])


def bounding_region(line, shape):
    """(low, high) KJI voxel bounds of the region the lesion may occupy (the prior ellipsoid scaled by ``REACH``),
    clipped to an image of ``shape``; ``None`` when it lies wholly outside."""
    axes = semi_axes(line) * REACH
    frame = np.array(ellipsoid_frame(line))
    half = np.sqrt(((frame * axes[:, None]) ** 2).sum(axis=0)) / line.spacing + 1
    low = np.maximum(np.floor(line.centre - half).astype(int), 0)
    high = np.minimum(np.ceil(line.centre + half).astype(int) + 1, shape)
    if np.any(high <= low):
        return None
    return low, high


def frame_coordinates(line, shape):
    """Each voxel's offset (mm) from the line's centre along the three ellipsoid axes, over an array of ``shape``
    whose first voxel is index 0 of the line's grid (arrays broadcast from sparse axes)."""
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    offset = [(grid[a] - line.centre[a]) * line.spacing[a] for a in range(3)]
    return [offset[0] * unit[0] + offset[1] * unit[1] + offset[2] * unit[2] for unit in ellipsoid_frame(line)]


def prior_radius(coordinates, line):
    """Each voxel's normalised radius in the prior ellipsoid (1 on its surface)."""
    return np.sqrt(sum((c / axis) ** 2 for c, axis in zip(coordinates, semi_axes(line))))


def line_values(values, line):
    """The values along the line's middle 70% (its ends lie on the lesion's border)."""
    points = np.round(line.samples(0.15, 0.85)).astype(int)
    inside = np.all((points >= 0) & (points < values.shape), axis=1)
    return values[tuple(points[inside].T)]


def histogram_model(values, samples, low, count):
    """Log probability of each value under a histogram of ``samples`` (``BIN_HU`` bins from ``low``, Laplace-
    smoothed)."""
    counts = np.bincount(np.clip(((samples - low) // BIN_HU).astype(int), 0, count - 1), minlength=count) + 1.0
    log_probability = np.log(counts / counts.sum())
    return log_probability[np.clip(((values - low) // BIN_HU).astype(int), 0, count - 1)]


def histogram(samples, low, count):
    counts = np.bincount(np.clip(((samples - low) // BIN_HU).astype(int), 0, count - 1), minlength=count)
    return counts / max(counts.sum(), 1)


def lesion_log_odds(values, line):
    """Smoothed log odds of lesion per voxel of ``values`` (a KJI array, the line on its grid), and how far apart
    the last round's lesion and background histograms are (1 - their Bhattacharyya coefficient: 0 the same,
    1 disjoint)."""
    coordinates = frame_coordinates(line, values.shape)
    radius = prior_radius(coordinates, line)
    samples = line_values(values, line)
    prior = -(radius - 1.0) / PRIOR_SOFTNESS
    odds = ndimage.gaussian_filter(prior, SMOOTHING_MM / line.spacing)
    if samples.size == 0:
        return odds, 0.0
    low = float(values.min())
    count = int((values.max() - low) // BIN_HU) + 1
    p5, p95 = np.percentile(samples, [5, 95])
    core = (radius <= CORE) & (values >= p5 - CORE_RANGE_HU) & (values <= p95 + CORE_RANGE_HU)
    lesion_samples = np.concatenate([samples, values[core]])
    background = (radius >= BACKGROUND_SHELL[0]) & (radius <= BACKGROUND_SHELL[1])
    separation = 0.0
    for _ in range(ROUNDS):
        if not background.any():
            break
        separation = 1.0 - float(np.sum(np.sqrt(histogram(lesion_samples, low, count)
                                                * histogram(values[background], low, count))))
        ratio = histogram_model(values, lesion_samples, low, count) - histogram_model(values, values[background],
                                                                                     low, count)
        odds = ndimage.gaussian_filter(ratio + prior, SMOOTHING_MM / line.spacing)
        lesion = odds > 0
        lesion_samples = np.concatenate([samples, values[lesion]])
        background = ~lesion & (radius <= BACKGROUND_SHELL[1])
    return odds, separation


def working_image(crop, line):
    """The crop, averaged over blocks of voxels for a large lesion (no finer than ``WORK_VOXELS`` across the long
    axis); its values smoothed (1 mm Gaussian) and clipped to CT's range; and the line on that grid."""
    spacing = np.array(crop.GetSpacing(), dtype=float)
    factors = np.maximum(1, np.floor(line.length_mm / WORK_VOXELS / spacing)).astype(int)
    factors = np.minimum(factors, crop.GetSize())
    work = sitk.Cast(crop, sitk.sitkFloat32)
    if np.any(factors > 1):
        work = sitk.BinShrink(work, [int(f) for f in factors])
        shift, factors = ((factors - 1) / 2)[::-1], factors[::-1]
        line = replace(line, start=(line.start - shift) / factors, end=(line.end - shift) / factors,
                       spacing=line.spacing * factors)
    values = ndimage.gaussian_filter(sitk.GetArrayFromImage(work), 1.0 / line.spacing, mode="nearest")
    return work, np.clip(values, LOWEST_HU, HIGHEST_HU), line


class Segmentation(NamedTuple):
    """The lesion's voxels (KJI boolean array over its bounding region), the region's low KJI corner on the CT,
    and how far apart the lesion's and its surroundings' intensity histograms are (see ``lesion_log_odds``)."""

    lesion: np.ndarray
    low: np.ndarray
    separation: float


def segment(image, line):
    """The lesion's ``Segmentation`` around ``line``; ``None`` when its region lies outside the CT."""
    region = bounding_region(line, np.array(image.GetSize())[::-1])
    if region is None:
        return None
    low, high = region
    crop = image[int(low[2]):int(high[2]), int(low[1]):int(high[1]), int(low[0]):int(high[0])]
    local = replace(line, start=line.start - low, end=line.end - low)
    work, values, work_line = working_image(crop, local)
    odds, separation = lesion_log_odds(values, work_line)
    lesion = kept_parts(odds > 0, work_line)
    if work.GetSize() == crop.GetSize():
        return Segmentation(lesion, low, separation)
    # the log odds, signed as the kept parts say, interpolated onto the CT's grid
    signed = np.where(lesion, np.maximum(odds, 1e-3), np.minimum(odds, -1e-3))
    signed = sitk.GetImageFromArray(signed.astype(np.float32))
    signed.CopyInformation(work)
    fine = sitk.Resample(signed, crop, sitk.Transform(), sitk.sitkLinear, -1.0, sitk.sitkFloat32)
    return Segmentation(kept_parts(sitk.GetArrayFromImage(fine) > 0, local), low, separation)


def kept_parts(lesion, line):
    """``lesion`` between the planes through the line's ends, its holes filled slice by slice, and only the
    connected parts that the line's middle crosses."""
    along = frame_coordinates(line, lesion.shape)[0]
    lesion = lesion & (np.abs(along) <= line.length_mm / 2 + SLAB_MARGIN_MM)
    for k in np.flatnonzero(lesion.any(axis=(1, 2))):
        lesion[k] = ndimage.binary_fill_holes(lesion[k])
    return component_on_line(lesion, line)


def component_on_line(lesion, line):
    """The connected parts of ``lesion`` that the line's middle crosses."""
    labels, _ = ndimage.label(lesion)
    points = np.round(line.samples(0.1, 0.9)).astype(int)
    inside = np.all((points >= 0) & (points < lesion.shape), axis=1)
    touched = np.unique(labels[tuple(points[inside].T)])
    return np.isin(labels, touched[touched > 0])
