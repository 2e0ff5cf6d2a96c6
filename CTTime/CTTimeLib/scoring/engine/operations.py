"""The image operations of pyradiomics' segment-based extraction with CTTime's fixed Table-2 settings, on numpy
arrays in z, y, x order (numpy and SimpleITK only): the ROI checks, re-segmentation, fixed-bin-width
discretisation and the features of the CT-TIME signature and the shape class. Each follows pyradiomics 3.0.1's
definition and arithmetic, so the features equal pyradiomics' own to rounding (see ``test_engine``); where
pyradiomics raises, these raise ``ValueError`` with pyradiomics' message.
"""

import numpy as np
import SimpleITK as sitk

from . import mesh

# The 13 GLCM directions (z, y, x) in pyradiomics' order: offsets run from +1 to -1, the z offset slowest, and of
# each pair of opposite directions the first generated is kept.
GLCM_ANGLES = [d for d in ((1 - k // 9, 1 - k // 3 % 3, 1 - k % 3) for k in range(27)) if any(d)][:13]


def check_roi(mask):
    """The bounding box (slices, z, y, x) of a non-empty boolean mask, checked as pyradiomics' ``checkMask`` does
    with its defaults (at least two dimensions)."""
    box = tuple(slice(int(found[0]), int(found[-1]) + 1) for found in
                (np.flatnonzero(mask.any(axis=others)) for others in ((1, 2), (0, 2), (0, 1))))
    dimensions = sum(part.stop - part.start > 1 for part in box)
    if dimensions == 0:
        raise ValueError("mask only contains 1 segmented voxel! Cannot extract features for a single voxel.")
    if dimensions < 2:
        raise ValueError(f"mask has too few dimensions (number of dimensions {dimensions}, minimum required 2)")
    return box


def labelled(mask_values):
    """The boolean ROI of label 1 in a mask array, checked as pyradiomics' ``getMask`` does."""
    roi = mask_values == 1
    if not roi.any():
        if (mask_values == mask_values.flat[0]).all():
            raise ValueError("No labels found in this mask (i.e. nothing is segmented)!")
        values = np.unique(mask_values)
        raise ValueError(f"Label (1) not present in mask. Choose from {values[values != 0]}")
    if roi.all():
        raise ValueError("No labels found in this mask (i.e. nothing is segmented)!")
    return roi


def resegment(image, roi, low, high):
    """The ROI without the voxels outside [low, high]; fails as pyradiomics does when one voxel or none is left."""
    kept = roi & (image >= low) & (image <= high)
    count = int(np.count_nonzero(kept))
    if count <= 1:
        raise ValueError(f"Resegmentation excluded too many voxels with label 1 (retained {count} voxel(s))! "
                         "Cannot extract features")
    return kept


def discretize(values, bin_width):
    """Gray levels 1, 2, ... of ``values`` (the ROI's voxels, in the image's own type) with bins of ``bin_width``
    counted from 0, the edges computed in the values' type as pyradiomics' ``getBinEdges`` does."""
    low, high = values.min(), values.max()
    return np.digitize(values, np.arange(low - low % bin_width, high + 2 * bin_width, bin_width))


def percentile(values, q):
    """pyradiomics' first-order percentile (numpy's linear interpolation) of the ROI's voxels, as floats."""
    return float(np.percentile(values.astype(np.float64), q))


def glcm_maximum_probability(levels):
    """GLCM Maximum Probability: for each of the 13 directions at distance 1, the largest entry of the symmetric,
    normalised co-occurrence matrix, averaged over the directions that hold any pair. ``levels``: gray levels, 0
    outside the ROI (pairs with a 0 are counted in row and column 0 and dropped)."""
    top = int(levels.max()) + 1
    levels = levels.astype(np.int16 if top * top <= np.iinfo(np.int16).max else np.intp)
    maxima = []
    for offset in GLCM_ANGLES:
        here = tuple(slice(max(0, -d), n - max(0, d)) for d, n in zip(offset, levels.shape))
        there = tuple(slice(max(0, d), n - max(0, -d)) for d, n in zip(offset, levels.shape))
        codes = levels[here] * levels.dtype.type(top) + levels[there]
        pairs = np.bincount(codes.ravel(), minlength=top * top).reshape(top, top)[1:, 1:]
        count = int(pairs.sum())
        if count:
            maxima.append(float((pairs + pairs.T).max()) / float(2 * count))
    return float(np.mean(np.array(maxima))) if maxima else float("nan")


def glszm_size_zone_nonuniformity(levels, voxels_per_pass=4_000_000):
    """GLSZM Size-Zone Non-Uniformity: zones are 26-connected voxels of one gray level; the sum over zone sizes of
    the squared number of zones of that size, divided by the number of zones. ``levels``: gray levels 1, 2, ..., 0
    outside the ROI."""
    return size_zone_nonuniformities([levels], voxels_per_pass)[0]


def size_zone_nonuniformities(arrays, voxels_per_pass=4_000_000):
    """:func:`glszm_size_zone_nonuniformity` of several ROIs' gray levels at once. Each level of each ROI goes to a
    slab of its own, slabs stacked along z with an empty plane between them, so that one pass of SimpleITK's fully
    connected components finds the zones of many (as many as fit in ``voxels_per_pass``): a pass costs about
    1 ms before its first voxel."""
    arrays = [levels.astype(np.uint8) if levels.max() <= np.iinfo(np.uint8).max else levels for levels in arrays]
    shape = np.max([levels.shape for levels in arrays], axis=0)
    slab = (int(shape[0]) + 1, int(shape[1]), int(shape[2]))
    slabs = [(number, level) for number, levels in enumerate(arrays) for level in np.unique(levels[levels > 0])]
    per_pass = max(1, voxels_per_pass // int(np.prod(slab)))
    sizes = [[] for _ in arrays]
    for first in range(0, len(slabs), per_pass):
        group = slabs[first:first + per_pass]
        stacked = np.zeros((len(group),) + slab, dtype=np.uint8)
        for index, (number, level) in enumerate(group):
            levels = arrays[number]
            np.equal(levels, level, out=stacked[(index,) + tuple(slice(0, n) for n in levels.shape)].view(bool))
        zones = sitk.GetArrayFromImage(_components(stacked.reshape((-1,) + slab[1:]))).ravel()
        inside = np.flatnonzero(zones)
        labels = zones[inside]
        owner = np.zeros(int(labels.max()) + 1 if labels.size else 1, dtype=np.intp)  # label -> its slab
        owner[labels] = inside // int(np.prod(slab))
        counts = np.bincount(labels, minlength=owner.size)
        roi_of_slab = np.array([number for number, _ in group])
        roi_of_label = roi_of_slab[owner[1:]]
        for number in np.unique(roi_of_slab):
            sizes[number].append(counts[1:][roi_of_label == number])
    nonuniformities = []
    for found in sizes:
        zones_of_size = np.bincount(np.concatenate(found))
        nonuniformities.append(float(np.sum(zones_of_size.astype(np.float64) ** 2)) / float(zones_of_size.sum()))
    return nonuniformities


MESH_FEATURES = ("MeshVolume", "SurfaceArea", "Sphericity", "SurfaceVolumeRatio")  # need the mesh's area, volume
DIAMETER_FEATURES = ("Maximum2DDiameterColumn", "Maximum2DDiameterRow", "Maximum2DDiameterSlice", "Maximum3DDiameter")


def _components(array, threaded_from=1_000_000):
    """SimpleITK's fully connected components of a UInt8 array; one thread below ``threaded_from`` voxels, where
    starting threads costs more than it saves (and a run already overlaps lesions and studies in threads)."""
    components = sitk.ConnectedComponentImageFilter()
    components.SetFullyConnected(True)
    if array.size < threaded_from:
        components.SetNumberOfThreads(1)
    return components.Execute(sitk.GetImageFromArray(array))


def shape_features(mask, spacing, names=None):
    """pyradiomics' 14 shape features of a boolean mask (z, y, x) cropped to its box, with voxel ``spacing`` (x, y,
    z, as SimpleITK gives it): the mesh's volume, area and diameters, and the principal axes of the voxels.
    ``names``: the features wanted (None: all); the mesh and the diameters are only computed when wanted."""
    padded = np.pad(mask, 1)
    spacing = np.array(spacing[::-1], dtype=np.float64)  # z, y, x
    wanted = set(MESH_FEATURES + DIAMETER_FEATURES if names is None else names)
    if wanted & set(MESH_FEATURES):
        area, volume = mesh.surface_and_volume(padded, spacing)
    slice_, column, row, largest = mesh.diameters(padded, spacing) if wanted & set(DIAMETER_FEATURES) else \
        (np.nan,) * 4
    # principal axes: pyradiomics' arithmetic step by step (same array layout, so the same sums)
    coordinates = np.array(np.nonzero(padded), dtype=int).transpose((1, 0))
    count = len(coordinates)
    physical = coordinates * spacing[None, :]
    physical -= np.mean(physical, axis=0)
    physical /= np.sqrt(count)
    eigenvalues = np.linalg.eigvals(np.dot(physical.T.copy(), physical))
    eigenvalues[(eigenvalues < 0) & (eigenvalues > -1e-10)] = 0
    eigenvalues.sort()
    least, minor, major = eigenvalues
    z, y, x = spacing

    def axis_length(value):
        return float(np.sqrt(value) * 4) if value >= 0 else np.nan

    def ratio(small):
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.sqrt(small / major)) if small >= 0 and major >= 0 else np.nan

    values = {
        "Elongation": ratio(minor),
        "Flatness": ratio(least),
        "LeastAxisLength": axis_length(least),
        "MajorAxisLength": axis_length(major),
        "Maximum2DDiameterColumn": column,
        "Maximum2DDiameterRow": row,
        "Maximum2DDiameterSlice": slice_,
        "Maximum3DDiameter": largest,
        "MinorAxisLength": axis_length(minor),
        "VoxelVolume": float(count * (z * x * y)),
    }
    if wanted & set(MESH_FEATURES):
        values.update(MeshVolume=volume, Sphericity=float((36 * np.pi * volume ** 2) ** (1.0 / 3.0) / area),
                      SurfaceArea=area, SurfaceVolumeRatio=area / volume)
    return values if names is None else {name: values[name] for name in names}
