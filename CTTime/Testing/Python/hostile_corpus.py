"""A corpus of hostile inputs, generated on demand from the real sample CT STS_019 (small, in a given folder).

Every file starts from a crop of the real CT around its real tumour mask (60 x 56 x 27 voxels), so the good
lesions of each bad input are real lesions scored by real pyradiomics. Arrays are in SimpleITK order (z, y, x).
"""

from pathlib import Path

import numpy as np
import SimpleITK as sitk

SOURCE = Path(__file__).resolve().parents[2] / "Resources" / "SampleData" / "STS_019"
CROP = (slice(10, 37), slice(40, 96), slice(40, 100))  # z, y, x: the tumour with a margin, air and bone
AIR_BOX = (slice(0, 3), slice(0, 5), slice(34, 39))  # a block of air (< -900 HU) inside the crop


def write_basic(folder):
    """``folder``/ct.nrrd (the cropped CT) and ``folder``/good.seg.nrrd (its two good lesions); the folder and
    the CT."""
    image = ct()
    sitk.WriteImage(image, str(Path(folder) / "ct.nrrd"))
    write_seg(Path(folder) / "good.seg.nrrd", good_lesions(), image)
    return Path(folder), image


def ct():
    """The cropped real CT (float32 HU, 0.98 x 0.98 x 3.27 mm)."""
    image = sitk.ReadImage(str(SOURCE / "CT_image.nii.gz"))
    return _crop(image)


def _crop(image):
    z, y, x = CROP
    return image[x.start:x.stop, y.start:y.stop, z.start:z.stop]


def tumour():
    """The real tumour mask on the cropped grid (bool array, z y x)."""
    return sitk.GetArrayFromImage(_crop(sitk.ReadImage(str(SOURCE / "CT_mask.nii.gz")))).astype(bool)


def good_lesions():
    """Two real, scorable lesions: the whole tumour and its upper slices (they overlap)."""
    whole = tumour()
    top = whole.copy()
    slices = np.flatnonzero(whole.any(axis=(1, 2)))
    top[: slices[len(slices) // 2]] = False
    return {"tumour": whole, "tumour_top": top}


def one_voxel():
    """One voxel inside the tumour."""
    inside = np.argwhere(tumour())
    mask = np.zeros_like(tumour())
    mask[tuple(inside[len(inside) // 2])] = True
    return mask


def air_lesion():
    """A lesion drawn in air: no voxel within -100..300 HU after re-segmentation."""
    mask = np.zeros_like(tumour())
    mask[AIR_BOX] = True
    return mask


def single_slice():
    """The tumour on its middle slice only."""
    whole = tumour()
    slices = np.flatnonzero(whole.any(axis=(1, 2)))
    mask = np.zeros_like(whole)
    mask[slices[len(slices) // 2]] = whole[slices[len(slices) // 2]]
    return mask


def write_image(path, array, like):
    """``array`` (z y x) written as an image with ``like``'s geometry."""
    sitk.WriteImage(like_image(array, like), str(path))
    return Path(path)


def write_seg(path, segments, like):
    """A Slicer .seg.nrrd (written by slicerio) on ``like``'s grid; ``segments`` is {name: bool array z y x} or a
    list of (name, mask) pairs (names may repeat). Overlapping segments go to further layers, as Slicer stores them.
    """
    import slicerio

    from CTTimeLib.core.geometry import ijk_to_lps

    segmentation = slicerio.create_segmentation(like.GetSize(), ijk_to_lps(like))
    pairs = segments.items() if isinstance(segments, dict) else segments
    for index, (name, mask) in enumerate(pairs):
        slicerio.add_segment(segmentation, np.asarray(mask, bool).transpose(2, 1, 0),
                             {"id": f"Segment_{index + 1}", "name": name, "color": [0.5, 0.5, 0.5]})
    slicerio.write_segmentation(str(path), segmentation)
    return Path(path)


def like_image(array, like):
    """``array`` (z y x) as an image with ``like``'s geometry."""
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(like)
    return image


def mask_image(mask, like):
    return like_image(np.asarray(mask, np.uint8), like)


def shifted_grid(mask, like):
    """The mask on another grid that overlaps the CT: cropped (other size and origin), flipped left-right
    (other direction) and with its slices halved (other spacing) - the same lesion in space."""
    image = mask_image(mask, like)[5:55, 3:50, :]
    flipped = sitk.Flip(image, [True, False, False])
    return sitk.Resample(flipped, [flipped.GetSize()[0], flipped.GetSize()[1], 2 * flipped.GetSize()[2]],
                         sitk.Transform(), sitk.sitkNearestNeighbor, flipped.GetOrigin(),
                         [flipped.GetSpacing()[0], flipped.GetSpacing()[1], flipped.GetSpacing()[2] / 2],
                         flipped.GetDirection(), 0, sitk.sitkUInt8)


def far_away(mask, like):
    """The mask moved 1 m away from the CT: no physical overlap."""
    image = mask_image(mask, like)
    image.SetOrigin([v + 1000.0 for v in like.GetOrigin()])
    return image


def corrupt(path, source):
    """A truncated copy of a real image file."""
    data = Path(source).read_bytes()
    Path(path).write_bytes(data[: len(data) // 3])
    return Path(path)


def padded(image, value=-3024.0):
    """The CT with its corners set to an outside-the-field-of-view padding value, as scanners write it (outside
    a circle that keeps the tumour and its pyradiomics bounding box)."""
    array = sitk.GetArrayFromImage(image)
    z, y, x = np.indices(array.shape)
    radius = 0.8 * np.hypot(*array.shape[1:]) / 2
    array[(y - array.shape[1] / 2) ** 2 + (x - array.shape[2] / 2) ** 2 > radius ** 2] = value
    return like_image(array, image)


def rescaled(image, slope, intercept):
    """``slope * HU + intercept``: a CT with a wrong rescale, or stored values without their rescale."""
    return like_image(sitk.GetArrayFromImage(image) * slope + intercept, image)


def series_4d(image):
    """Two time points of the CT as one 4-D image."""
    return sitk.JoinSeries([image, image])


def vector(image):
    """The CT as a two-component vector image."""
    return sitk.Compose([image, image])


def sleep_then_return(item):
    """A task for worker processes: sleep ``item[1]`` seconds, return ``item[0]``."""
    import time

    time.sleep(item[1])
    return item[0]


def kill_own_worker_on(item):
    """A task for worker processes: ``item[0]`` unless ``item[1]`` is true, then kill its own process (SIGKILL)."""
    import os
    import signal

    if item[1]:
        os.kill(os.getpid(), signal.SIGKILL)
    return item[0]


def sloppy_lesion():
    """The tumour's slices, drawn across the lower half of the crop: 40% soft tissue, the rest air and fat (a lesion
    drawn with its surroundings). pyradiomics scores it; its soft-tissue share is below 0.5."""
    mask = np.zeros_like(tumour())
    slices = np.flatnonzero(tumour().any(axis=(1, 2)))
    mask[slices[0]:slices[-1] + 1, 28:, :] = True
    return mask


def nrrd_with_directions(path, image, directions):
    """``image`` as an uncompressed NRRD whose "space directions" header field is ``directions`` (text)."""
    sitk.WriteImage(image, str(path), False)
    data = Path(path).read_bytes()
    header, separator, body = data.partition(b"\n\n")
    lines = [b"space directions: " + directions.encode() if line.startswith(b"space directions:") else line
             for line in header.split(b"\n")]
    Path(path).write_bytes(b"\n".join(lines) + separator + body)
    return Path(path)


def nifti_with_pixdim(path, image, pixdim):
    """``image`` as an uncompressed NIfTI whose header pixdim[1..3] are ``pixdim`` (e.g. NaN, 0)."""
    import struct

    sitk.WriteImage(image, str(path))
    data = bytearray(Path(path).read_bytes())
    struct.pack_into("<3f", data, 80, *pixdim)
    Path(path).write_bytes(bytes(data))
    return Path(path)


def edit_header(path, source, old, new):
    """A copy of a NRRD file (e.g. a .seg.nrrd) with ``old`` replaced by ``new`` in its header."""
    header, separator, body = Path(source).read_bytes().partition(b"\n\n")
    assert old.encode() in header, old
    Path(path).write_bytes(header.replace(old.encode(), new.encode(), 1) + separator + body)
    return Path(path)
