"""Image and mask grids: lesion masks cropped to the lesion on the CT's grid, and voxel-to-LPS geometry.

A lesion mask is a UInt8 0/1 image on the CT's grid (same spacing and direction, its origin on a CT voxel),
cropped to the lesion's bounding box; ``grid_offset`` tells where it lies on the CT and ``whole_mask`` pastes it
into a CT-sized mask.
"""

import numpy as np
import SimpleITK as sitk

from .errors import CTTimeError

# A CT voxel measures 0.2 to 10 mm a side; outside 0.01..100 mm a header is damaged, not a scanner's choice.
SPACING_RANGE_MM = (0.01, 100.0)
RIGHT_ANGLE_TOLERANCE = 1e-3  # largest |cos| between two axes (0.06 degrees from a right angle)
DAMAGED_HEADER = ("the file's header is damaged or was written by a faulty converter: export it again (from the "
                  "PACS, or from Slicer as NRRD or NIfTI)")
REGULAR_GRID = ("resample it onto a regular grid (Slicer: Volumes > Acquisition geometry regularization, or Resample "
                "Scalar Volume) and score that")


def nonzero_box(array):
    """Slices of the smallest box holding the non-zero voxels of a 3-D array (``None`` when there is none)."""
    found = [np.flatnonzero(array.any(axis=others)) for others in ((1, 2), (0, 2), (0, 1))]
    if any(axis.size == 0 for axis in found):
        return None
    return tuple(slice(int(axis[0]), int(axis[-1]) + 1) for axis in found)


def lesion_mask(array, image, start=(0, 0, 0)):
    """A lesion mask from a KJI array on ``image``'s grid (the CT's, or a segmentation's own) whose first voxel is
    voxel ``start`` (x, y, z): UInt8 0/1, cropped to the box of its non-zero voxels (one empty voxel if none)."""
    array = np.asarray(array)
    box = nonzero_box(array) or (slice(0, 1),) * 3
    return image_like(array[box] != 0, image, [start[axis] + box[2 - axis].start for axis in range(3)])


def image_like(array, grid, start):
    """A UInt8 image of a KJI array lying on ``grid``'s voxels from index ``start`` (x, y, z) on."""
    mask = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.uint8))
    mask.SetSpacing(grid.GetSpacing())
    mask.SetDirection(grid.GetDirection())
    mask.SetOrigin(grid.TransformIndexToPhysicalPoint([int(v) for v in start]))
    return mask


def grid_offset(mask, image, tolerance=1e-6):
    """The CT voxel (x, y, z index) under ``mask``'s first voxel when ``mask`` lies on the CT's grid (same
    spacing and direction, origin on a voxel centre, to ``tolerance`` mm); ``None`` otherwise."""
    if not (np.allclose(mask.GetSpacing(), image.GetSpacing(), rtol=0, atol=tolerance)
            and np.allclose(mask.GetDirection(), image.GetDirection(), rtol=0, atol=tolerance)):
        return None
    index = np.array(image.TransformPhysicalPointToContinuousIndex(mask.GetOrigin()))
    start = np.round(index)
    if np.any(np.abs(index - start) * np.array(image.GetSpacing()) > tolerance):
        return None
    return tuple(int(v) for v in start)


def whole_mask(mask, image):
    """A lesion mask pasted into a CT-sized mask with the CT's geometry (what pyradiomics is given)."""
    start = grid_offset(mask, image)
    if start is None or any(s < 0 or s + n > m for s, n, m in zip(start, mask.GetSize(), image.GetSize())):
        raise ValueError("the mask does not lie on the CT's grid")
    canvas = sitk.Image(image.GetSize(), mask.GetPixelID())  # zero-filled
    whole = sitk.Paste(canvas, mask, mask.GetSize(), [0, 0, 0], list(start))
    whole.CopyInformation(image)
    return whole


def on_image_grid(mask, image):
    """A mask of any grid as a lesion mask on the image's grid: cut out of it when it lies on the image's grid
    (to 1e-4 mm), else resampled onto it by nearest neighbour."""
    start = grid_offset(mask, image, 1e-4)
    if start is None:
        resampled = sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        return lesion_mask(sitk.GetArrayViewFromImage(resampled), image)
    low = np.maximum(start, 0)
    high = np.minimum(np.add(start, mask.GetSize()), image.GetSize())
    if np.any(high <= low):  # wholly outside the CT: an empty lesion
        return lesion_mask(np.zeros((1, 1, 1), np.uint8), image)
    array = sitk.GetArrayViewFromImage(mask)[tuple(slice(int(a - s), int(b - s)) for a, b, s in
                                                   zip(low[::-1], high[::-1], start[::-1]))]
    return lesion_mask(array, image, low)


def physical_box(image, index_low, index_high):
    corners = [image.TransformContinuousIndexToPhysicalPoint([float(c) for c in corner])
               for corner in np.array(np.meshgrid(*zip(index_low, index_high))).T.reshape(-1, 3)]
    return np.min(corners, axis=0), np.max(corners, axis=0)


def geometry_from_ijk_to_lps(matrix):
    spacing, direction = matrix_grid(matrix)
    return tuple(spacing), tuple(matrix[:3, 3]), tuple(direction)


def set_geometry(image, geometry):
    spacing, origin, direction = geometry
    image.SetSpacing([float(v) for v in spacing])
    image.SetOrigin([float(v) for v in origin])
    image.SetDirection([float(v) for v in direction])


def ijk_to_lps(image):
    """The 4x4 voxel-index to LPS matrix of a SimpleITK image."""
    matrix = np.eye(4)
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    matrix[:3, :3] = direction @ np.diag(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    return matrix


def grid_problem(spacing, direction):
    """Why a grid (voxel spacing in mm; 3x3 direction cosines, one column per voxel axis, as 9 numbers row by row)
    cannot be a CT's, in words a radiologist reads; None when it can."""
    spacing = np.asarray(spacing, dtype=float)
    direction = np.asarray(direction, dtype=float).reshape(3, 3)
    size = " x ".join(f"{v:.4g}" for v in spacing)
    low, high = SPACING_RANGE_MM
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        return f"its voxel size ({size} mm) is not a real size (zero, negative or not a number); {DAMAGED_HEADER}."
    if np.any(spacing < low) or np.any(spacing > high):
        return (f"its voxel size ({size} mm) is not a CT's (each side lies between {low:g} and {high:g} mm); "
                f"{DAMAGED_HEADER}.")
    lengths = np.linalg.norm(direction, axis=0) if np.all(np.isfinite(direction)) else np.zeros(3)
    if np.any(lengths < 1e-6) or abs(np.linalg.det(direction / lengths)) < 1e-6:
        return ("its orientation is degenerate (an axis has no direction, is not a number, or two axes point the "
                f"same way), so no voxel has a place in the patient; {DAMAGED_HEADER}.")
    cosines = (direction / lengths).T @ (direction / lengths) - np.eye(3)
    if np.max(np.abs(cosines)) > RIGHT_ANGLE_TOLERANCE:
        angle = float(np.degrees(np.arccos(np.clip(np.max(np.abs(cosines)), 0, 1))))
        return (f"its voxel axes are not at right angles (two of them meet at {angle:.1f} degrees instead of 90; "
                f"e.g. a gantry-tilted acquisition stored without correction): {REGULAR_GRID}.")
    return None


def check_grid(image, what):
    """Refuse an image whose grid cannot be a CT's (``what``: e.g. "Image PATH"), kind "geometry"."""
    problem = grid_problem(image.GetSpacing(), image.GetDirection())
    if problem:
        raise CTTimeError(f"{what}: {problem}", "geometry")


def matrix_grid(matrix):
    """(spacing, direction) of a 4x4 voxel-to-LPS matrix, without dividing by a zero or NaN spacing."""
    columns = np.asarray(matrix, dtype=float)[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    usable = np.isfinite(spacing) & (spacing > 0)
    return spacing, (columns / np.where(usable, spacing, 1.0)).flatten()
