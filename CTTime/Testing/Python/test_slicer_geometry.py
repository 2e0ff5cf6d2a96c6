"""MRML <-> SimpleITK geometry of the Slicer module (CTTimeMRML), as plain functions on numpy / SimpleITK.

MRML volumes carry an IJK-to-RAS matrix, ITK images an LPS origin/spacing/direction; numpy arrays from Slicer and
SimpleITK are both KJI. These tests build images with known geometry and check every convention separately.
"""

import numpy as np
import pytest
import SimpleITK as sitk

import CTTimeMRML
from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.geometry import grid_offset, whole_mask


def _oblique_ijk_to_ras(seed):
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    matrix = np.eye(4)
    matrix[:3, :3] = rotation @ np.diag(rng.uniform(0.4, 3.5, size=3))
    matrix[:3, 3] = rng.uniform(-300, 300, size=3)
    return matrix


@pytest.mark.parametrize("seed", range(5))
def test_physical_points_agree_between_ras_matrix_and_lps_image(seed):
    matrix = _oblique_ijk_to_ras(seed)
    image = CTTimeMRML.image_from_kji(np.zeros((4, 5, 6), np.int16), matrix)
    for ijk in [(0, 0, 0), (5, 0, 0), (0, 4, 0), (0, 0, 3), (5, 4, 3), (2, 1, 3)]:
        ras = matrix @ np.array(list(ijk) + [1.0])
        lps = np.array(image.TransformIndexToPhysicalPoint([int(v) for v in ijk]))
        np.testing.assert_allclose(lps, [-ras[0], -ras[1], ras[2]], atol=1e-9)
    np.testing.assert_allclose(CTTimeMRML.ijk_to_ras(image), matrix, atol=1e-12)


def test_axis_aligned_ct_geometry_has_lps_origin_and_flipped_direction():
    # A typical axial CT in Slicer: IJK-to-RAS = diag(-sx, -sy, sz) with the origin in RAS.
    matrix = np.diag([-0.8, -0.8, 2.5, 1.0])
    matrix[:3, 3] = [150.0, 120.0, -400.0]
    spacing, origin, direction = CTTimeMRML.lps_geometry(matrix)
    np.testing.assert_allclose(spacing, [0.8, 0.8, 2.5])
    np.testing.assert_allclose(origin, [-150.0, -120.0, -400.0])
    np.testing.assert_allclose(direction, np.eye(3).flatten())


def test_kji_array_order_is_kept():
    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)  # K=4 slices, J=5 rows, I=6 columns
    image = CTTimeMRML.image_from_kji(array, np.eye(4))
    assert image.GetSize() == (6, 5, 4)
    assert image.GetPixel(5, 1, 3) == array[3, 1, 5]
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image), array)


def test_round_trip_through_a_real_itk_image():
    image = sitk.Image(7, 6, 5, sitk.sitkFloat32)
    image.SetSpacing((0.7, 0.9, 3.0))
    image.SetOrigin((10.0, -20.0, 30.0))
    image.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    copy = CTTimeMRML.image_from_kji(sitk.GetArrayFromImage(image), CTTimeMRML.ijk_to_ras(image))
    assert copy.GetSize() == image.GetSize()
    np.testing.assert_allclose(copy.GetSpacing(), image.GetSpacing(), atol=1e-12)
    np.testing.assert_allclose(copy.GetOrigin(), image.GetOrigin(), atol=1e-12)
    np.testing.assert_allclose(copy.GetDirection(), image.GetDirection(), atol=1e-12)


def test_segment_mask_takes_the_reference_volume_geometry():
    image = CTTimeMRML.image_from_kji(np.zeros((3, 4, 5), np.float32), _oblique_ijk_to_ras(7))
    array = np.zeros((3, 4, 5), np.uint8)
    array[1, 2, 3] = 1
    mask = CTTimeMRML.mask_on_image(array, image, "LU_1")
    assert mask.GetPixelID() == sitk.sitkUInt8 and mask.GetSize() == (1, 1, 1) and mask.GetPixel(0, 0, 0) == 1
    assert grid_offset(mask, image) == (3, 2, 1)  # on the oblique grid, at the voxel drawn
    assert sitk.GetArrayFromImage(whole_mask(mask, image)).tolist() == array.tolist()


def test_segment_not_on_the_reference_grid_is_refused():
    image = CTTimeMRML.image_from_kji(np.zeros((3, 4, 5), np.float32), np.eye(4))
    with pytest.raises(CTTimeError, match="not on the CT grid"):
        CTTimeMRML.mask_on_image(np.zeros((5, 4, 3), np.uint8), image, "liver_1")  # IJK instead of KJI


def test_singular_matrix_is_a_user_error():
    with pytest.raises(CTTimeError, match="singular"):
        CTTimeMRML.lps_geometry(np.diag([1.0, 0.0, 1.0, 1.0]))
