"""Volumes and masks between MRML and SimpleITK.

MRML's IJK-to-RAS matrix and ITK's LPS geometry differ by the sign of the first two axes; numpy arrays from Slicer
and from SimpleITK are both in KJI (slice, row, column) order.
"""

import numpy as np
import SimpleITK as sitk

from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.geometry import ijk_to_lps, lesion_mask
from CTTimeLib.io.images import check_ct

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def lps_geometry(ijk_to_ras):
    """(spacing, origin, direction) of an ITK image for a 4x4 MRML IJK-to-RAS matrix."""
    ijk_to_lps = RAS_TO_LPS @ np.asarray(ijk_to_ras, dtype=float)
    columns = ijk_to_lps[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    if not np.all(spacing > 0):
        raise CTTimeError("The volume's IJK-to-RAS matrix is singular (zero spacing); reload the CT.", "geometry")
    return tuple(spacing), tuple(ijk_to_lps[:3, 3]), tuple((columns / spacing).flatten())


def ijk_to_ras(image):
    """The 4x4 MRML IJK-to-RAS matrix of a SimpleITK image."""
    return RAS_TO_LPS @ ijk_to_lps(image)


def image_from_kji(array, ijk_to_ras_matrix):
    """A SimpleITK image from a KJI-ordered array (as Slicer and SimpleITK give them) and an IJK-to-RAS matrix."""
    array = np.asarray(array)
    if array.ndim != 3:
        raise CTTimeError(f"Expected a 3-D volume, got an array of shape {array.shape}.", "image")
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    spacing, origin, direction = lps_geometry(ijk_to_ras_matrix)
    image.SetSpacing([float(v) for v in spacing])
    image.SetOrigin([float(v) for v in origin])
    image.SetDirection([float(v) for v in direction])
    return image


def mask_on_image(array, image, lesion_id):
    """A lesion mask (UInt8 0/1 on ``image``'s grid, cropped to the lesion) from a KJI array sampled on the grid."""
    array = np.asarray(array)
    expected = tuple(reversed(image.GetSize()))
    if array.shape != expected:
        raise CTTimeError(f"Lesion {lesion_id}: mask of shape {array.shape} (KJI) is not on the CT grid {expected}; "
                          "export the segment with the CT as reference volume.", "geometry")
    return lesion_mask(array, image)


def matrix_to_numpy(vtk_matrix):
    return np.array([[vtk_matrix.GetElement(row, column) for column in range(4)] for row in range(4)])


def volume_to_image(volume_node):
    """The CT of a scalar volume node as a SimpleITK image in LPS, checked to be CT in HU."""
    import slicer
    import vtk

    if volume_node is None or volume_node.GetImageData() is None:
        raise CTTimeError("Select a CT volume (the volume holds no image data).", "image")
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    image = image_from_kji(slicer.util.arrayFromVolume(volume_node), matrix_to_numpy(matrix))
    check_ct(image, volume_node.GetName())
    return image
