"""The proposal's segmentation: a lesion's voxels from the CT around its RECIST line."""

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

SHORT_TO_LONG = 0.65  # short axis assumed when none was drawn (median ratio of the 36 sarcomas: 0.78)
DEPTH_TO_LONG = 0.6  # the lesion's half extent across the slices, as a share of the long axis
REACH = 1.6  # the region the lesion may occupy: the prior ellipsoid scaled by this


def ellipsoid_frame(line):
    """Unit axes (mm, KJI) of the lesion's prior ellipsoid: along the line, across it in its slice, and the third
    perpendicular to both."""
    along = (line.end - line.start) * line.spacing
    along = along / np.linalg.norm(along)
    across = np.cross(along, [1.0, 0.0, 0.0])
    if np.linalg.norm(across) < 1e-6:  # a line along the slice axis: any in-plane direction will do
        across = np.array([0.0, 1.0, 0.0])
    across = across / np.linalg.norm(across)
    return along, across, np.cross(along, across)


def semi_axes(line):
    short = line.short_mm if line.short_mm else SHORT_TO_LONG * line.length_mm
    return np.array([line.length_mm / 2, short / 2, DEPTH_TO_LONG * line.length_mm])


def bounding_region(line, shape):
    """(low, high) KJI voxel bounds of the region the lesion may occupy, clipped to an image of ``shape``; ``None``
    when it lies wholly outside."""
    axes = semi_axes(line) * REACH
    frame = np.array(ellipsoid_frame(line))
    half = np.sqrt(((frame * axes[:, None]) ** 2).sum(axis=0)) / line.spacing + 1
    low = np.maximum(np.floor(line.centre - half).astype(int), 0)
    high = np.minimum(np.ceil(line.centre + half).astype(int) + 1, shape)
    if np.any(high <= low):
        return None
    return low, high


def prior_radius(line, low, shape):
    """Each voxel's normalised radius in the prior ellipsoid (1 on its surface) over a box from ``low``."""
    grid = np.indices(shape, dtype=float)
    offset = [(grid[a] + low[a] - line.centre[a]) * line.spacing[a] for a in range(3)]
    axes = semi_axes(line)
    total = 0.0
    for unit, axis in zip(ellipsoid_frame(line), axes):
        total = total + ((offset[0] * unit[0] + offset[1] * unit[1] + offset[2] * unit[2]) / axis) ** 2
    return np.sqrt(total)


def within_slab(line, low, shape):
    """The voxels between the planes through the line's ends perpendicular to it: a RECIST line is the longest
    diameter, so no part of the lesion on its slice lies beyond them."""
    grid = np.indices(shape, dtype=float)
    along = ellipsoid_frame(line)[0]
    position = sum((grid[a] + low[a] - line.centre[a]) * line.spacing[a] * along[a] for a in range(3))
    return np.abs(position) <= line.length_mm / 2 + SLAB_MARGIN_MM


def line_values(values, line, low):
    """The smoothed CT values along the line's middle 70% (its ends lie on the lesion's border)."""
    points = np.round(line.samples(0.15, 0.85) - low).astype(int)
    inside = np.all((points >= 0) & (points < values.shape), axis=1)
    return values[tuple(points[inside].T)]


PRIOR_SOFTNESS = 0.2  # width (in normalised radius) of the prior's fall from lesion to background
BACKGROUND_SHELL = (1.15, 1.6)  # normalised radii of the shell whose voxels model the background at first
BIN_HU = 10.0
SLAB_MARGIN_MM = 1.0
ROUNDS = 3
SMOOTHING_MM = 1.5


def histogram_model(values, samples, low, count):
    """Log probability of each value under a histogram of ``samples`` (``BIN_HU`` bins, Laplace-smoothed)."""
    counts = np.bincount(np.clip(((samples - low) // BIN_HU).astype(int), 0, count - 1), minlength=count) + 1.0
    log_probability = np.log(counts / counts.sum())
    return log_probability[np.clip(((values - low) // BIN_HU).astype(int), 0, count - 1)]


def segment(image, line):
    """The lesion's voxels as a KJI boolean array over the bounding region, and the region's low KJI corner;
    ``None`` when the region lies outside the CT."""
    region = bounding_region(line, np.array(image.GetSize())[::-1])
    if region is None:
        return None
    low, high = region
    crop = image[int(low[2]):int(high[2]), int(low[1]):int(high[1]), int(low[0]):int(high[0])]
    values = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.Cast(crop, sitk.sitkFloat32), 1.0))
    values = np.clip(values, -1100.0, 2000.0)
    radius = prior_radius(line, low, values.shape)
    samples = line_values(values, line, low)
    if samples.size == 0:
        return np.zeros(values.shape, bool), low
    prior = -(radius - 1.0) / PRIOR_SOFTNESS  # log prior odds of lesion
    vmin = float(values.min())
    count = int((values.max() - vmin) // BIN_HU) + 1
    lesion_samples = np.concatenate([samples, values[radius <= 0.5]])
    background_samples = values[(radius >= BACKGROUND_SHELL[0]) & (radius <= BACKGROUND_SHELL[1])]
    if background_samples.size == 0:
        background_samples = values[radius > 1]
    sigma = SMOOTHING_MM / line.spacing
    slab = within_slab(line, low, values.shape)
    for _ in range(ROUNDS):
        ratio = histogram_model(values, lesion_samples, vmin, count) - histogram_model(values, background_samples, vmin, count)
        odds = ndimage.gaussian_filter(ratio + prior, sigma)
        lesion = (odds > 0) & slab
        lesion_samples = np.concatenate([samples, values[lesion]])
        background_samples = values[~lesion & (radius <= BACKGROUND_SHELL[1])]
        if background_samples.size == 0:
            break
    for k in range(lesion.shape[0]):
        lesion[k] = ndimage.binary_fill_holes(lesion[k])
    return component_on_line(lesion, line, low), low


def component_on_line(lesion, line, low):
    """The connected parts of ``lesion`` that the line's middle crosses."""
    labels, _ = ndimage.label(lesion)
    points = np.round(line.samples(0.1, 0.9) - low).astype(int)
    inside = np.all((points >= 0) & (points < lesion.shape), axis=1)
    touched = np.unique(labels[tuple(points[inside].T)])
    return np.isin(labels, touched[touched > 0])
