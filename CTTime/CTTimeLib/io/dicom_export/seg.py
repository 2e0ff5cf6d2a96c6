"""The DICOM SEG: one binary segment per lesion, on the CT slices it lies on, labelled with the lesion ID, coded as a
neoplasm at the lesion's location and recommended for display in its CT-TIME colour."""

import highdicom as hd
import numpy as np
import SimpleITK as sitk
from pydicom.uid import generate_uid

from ...core import colormap
from ...core.errors import CTTimeError
from ...core.geometry import grid_offset
from . import codes
from .findings import tracking_uid

SERIES_NUMBER = 9901
SERIES_DESCRIPTION = "CT-TIME lesions"
UTF8 = "ISO_IR 192"


def long_string(text):
    """A DICOM LO value: one line, no backslash, at most 64 characters."""
    return " ".join(str(text).replace("\\", "/").split())[:64]


def dicom_lab(rgb):
    """An sRGB colour (0..1) as DICOM's Recommended Display CIELab Value: L*a*b* (D65 white) scaled to 16 bits."""
    linear = np.array([c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb])
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = to_xyz @ linear / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab = (116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2]))
    return [int(round(lab[0] * 0xFFFF / 100)), int(round((lab[1] + 128) * 0xFFFF / 255)),
            int(round((lab[2] + 128) * 0xFFFF / 255))]


def _voxels(lesion, image):
    """A lesion's first CT voxel (x, y, z) and its mask voxels (k, j, i) as booleans; None when it has none."""
    array = sitk.GetArrayViewFromImage(lesion.mask) != 0
    start = grid_offset(lesion.mask, image)
    if start is None:
        raise CTTimeError(f"the mask of lesion {lesion.lesion_id} does not lie on the CT's grid", "input")
    return (start, array) if array.any() else None


def _frames(pieces, slices, shape):
    """Frames on the CT slices ``slices`` (k): a label map (lesion n = n) where lesions do not overlap, else one
    binary plane per lesion (the memory of a label map times the lesion count)."""
    row_of = {k: n for n, k in enumerate(slices)}

    def paint(target, number, start, array):
        x, y, z = start
        for dz in np.flatnonzero(array.any(axis=(1, 2))):
            plane = target[row_of[z + dz], y:y + array.shape[1], x:x + array.shape[2]]
            if number is None:
                plane |= array[dz]
            else:
                plane[array[dz]] = number

    labels = np.zeros((len(slices),) + shape, np.uint8 if len(pieces) < 256 else np.uint16)
    for number, (start, array) in enumerate(pieces, start=1):
        paint(labels, number, start, array)
    if np.count_nonzero(labels) == sum(int(np.count_nonzero(array)) for _, array in pieces):
        return labels
    del labels
    planes = np.zeros((len(slices),) + shape + (len(pieces),), bool)
    for number, (start, array) in enumerate(pieces):
        paint(planes[..., number], None, start, array)
    return planes


def build_segmentation(series, image, findings, software_version):
    """The DICOM SEG of a study's lesions (those with voxels) on the CT series; also, by lesion ID, its segment
    number and the CT slices (headers) it lies on, and the CT slices all segments lie on."""
    pieces, described = [], []
    for lesion in findings.lesions:
        piece = _voxels(lesion, image)
        if piece is not None:
            pieces.append(piece)
            described.append(lesion)
    if not pieces:
        raise CTTimeError("no lesion has a voxel on the CT", "input")
    slices = sorted({start[2] + int(dz) for start, array in pieces for dz in np.flatnonzero(array.any(axis=(1, 2)))})
    missing = [k for k in slices if k not in series.slices]
    if missing:
        raise CTTimeError(f"the DICOM series {series.source} has no slice at image slice(s) "
                          f"{', '.join(map(str, missing[:5]))}, where lesions lie", "input")
    descriptions = []
    for number, lesion in enumerate(described, start=1):
        location = codes.LOCATIONS.get(lesion.location)
        proposed = lesion.algorithm is not None  # SEMIAUTOMATIC: proposed from a RECIST line a reader drew
        description = hd.seg.SegmentDescription(
            segment_number=number, segment_label=long_string(lesion.lesion_id),
            segmented_property_category=codes.MORPHOLOGICALLY_ABNORMAL, segmented_property_type=codes.NEOPLASM,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC if proposed else
            hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            algorithm_identification=hd.AlgorithmIdentificationSequence(
                name=lesion.algorithm[0], version=lesion.algorithm[1], family=codes.PROPOSAL_FAMILY)
            if proposed else None,
            tracking_uid=tracking_uid(findings.patient_id, lesion.lesion_id), tracking_id=long_string(lesion.lesion_id),
            anatomic_regions=[location] if location is not None else None)
        description.RecommendedDisplayCIELabValue = dicom_lab(colormap.score_color(lesion.score))
        descriptions.append(description)
    sources = [series.slices[k] for k in slices]
    segmentation = hd.seg.Segmentation(
        source_images=sources, pixel_array=_frames(pieces, slices, (image.GetSize()[1], image.GetSize()[0])),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=generate_uid(), series_number=SERIES_NUMBER, sop_instance_uid=generate_uid(),
        instance_number=1, manufacturer="CTTime", manufacturer_model_name="CTTime",
        software_versions=software_version, device_serial_number=software_version, content_label="CTTIME",
        content_description="CT-TIME lesions, coloured by score")
    segmentation.SeriesDescription = findings.series_description(SERIES_DESCRIPTION)
    segmentation.SpecificCharacterSet = UTF8  # lesion IDs as given, in any script
    segments = {lesion.lesion_id: (number, [series.slices[start[2] + int(dz)] for dz in np.flatnonzero(
        array.any(axis=(1, 2)))]) for number, (lesion, (start, array)) in enumerate(zip(described, pieces), start=1)}
    return segmentation, segments, sources
