"""What the DICOM SEG and SR say, gathered before either is built: the CT series' headers placed on CTTime's image
grid, each lesion's mask and results, the patient's aggregates and the report's texts; and the UIDs that name a
lesion the same way in every export."""

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...core.errors import CTTimeError
from ..dicom import read_header, series_files

POSITION_TOLERANCE_MM = 0.01  # a slice of the series must lie on a slice of the image CTTime scored, to this


@dataclass
class LesionFinding:
    """One lesion: its mask (on the CT's grid, cropped; see ``core.geometry``) and its results. ``score`` is None
    for a lesion that was not scored (``error`` says why); ``score_interval`` (low, high) and ``robust`` are None
    where the delineation-robustness check did not run, ``reference_interval`` (low, high), ``reference_robust``
    and ``outside_reference`` where the run has no standardisation interval."""

    lesion_id: str
    location: str
    mask: object
    score: object = None
    inflamed: object = None
    features: dict = field(default_factory=dict)  # the signature's raw features by pyradiomics name
    volume_mm3: object = None
    long_axis_mm: object = None
    score_interval: object = None
    robust: object = None
    reference_interval: object = None
    reference_robust: object = None
    outside_reference: object = None
    error: str = ""
    delineation: str = "manual"  # or how the mask was proposed ("proposed from RECIST line")
    algorithm: object = None  # (name, version) of the method that proposed the mask; None for a manual one


@dataclass
class StudyFindings:
    """A patient at a time point: the lesions, the patient's aggregates (patients.csv) and the report's texts."""

    patient_id: str
    timepoint: str
    baseline: bool
    lesions: list
    n_lesions: int = 0
    n_failed: int = 0
    aggregates: dict = field(default_factory=dict)  # "mean", "median", "min", "max", "sd" -> score
    aggregate_inflamed: dict = field(default_factory=dict)  # "mean", ... -> True (inflamed) / False
    aggregate_reference_intervals: dict = field(default_factory=dict)  # "mean", ... -> (low, high)
    aggregate_reference_robust: dict = field(default_factory=dict)  # "mean", ... -> True / False
    heterogeneity: str = ""
    total_volume_mm3: object = None
    total_surface_mm2: object = None
    standardization: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    comment: str = ""
    algorithm: str = "CT-TIME"
    algorithm_version: str = ""
    run_id: str = ""  # run.json's run_id: the run the objects come from, in their Series Description

    def series_description(self, what):
        """``what`` (e.g. "CT-TIME lesions") and the run the object comes from, within DICOM's 64 characters."""
        return f"{what}, run {self.run_id}"[:64] if self.run_id else what


@dataclass
class CTSeries:
    """The headers (no pixels) of the CT series CTTime scored, by slice index (k) on its image grid."""

    source: str
    slices: dict


def name_uid(*names):
    """A UID made from names (a name-based UUID under the 2.25 root): the same names give the same UID."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'cttime:' + json.dumps([str(n) for n in names])).int}"


def tracking_uid(patient_id, lesion_id):
    """The tracking UID of a patient's lesion: the same at every time point and in every export, as CTTime
    matches lesions over time by their IDs."""
    return name_uid("lesion", patient_id, lesion_id)


def is_finite(value):
    try:
        return value is not None and bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def read_ct_series(source, image):
    """The CT series CTTime read as ``image``: ``source`` is a DICOM series folder, a DICOM file or a list of files
    (e.g. from Slicer's DICOM database). A CT that is not a single-frame DICOM series matching ``image`` slice by
    slice is refused with the reason (CTTimeError, kind "input")."""
    if isinstance(source, (list, tuple)):
        files, name = [Path(f) for f in source], f"{len(source)} DICOM file(s)"
    else:
        path = Path(source)
        files, name = (series_files(path) if path.is_dir() else [path]), str(source)
    headers = [read_header(f) for f in files]
    if not files or any(h is None or "ImagePositionPatient" not in h for h in headers):
        raise CTTimeError(f"its CT {name} is not a DICOM image series: DICOM SEG and SR must reference the CT's "
                          "DICOM images (score the CT from its DICOM series folder)", "input")
    if len(headers) == 1 and int(headers[0].get("NumberOfFrames", 1) or 1) > 1:
        raise CTTimeError(f"its CT {name} is a multi-frame (enhanced) DICOM image, which the DICOM export does not "
                          "support yet; export the CT as a classic single-frame series", "input")
    if len({h.SeriesInstanceUID for h in headers}) > 1:
        raise CTTimeError(f"the CT files {name} belong to several DICOM series", "input")
    direction = np.array(image.GetDirection()).reshape(3, 3)
    slices = {}
    for header in headers:
        orientation = np.array(header.ImageOrientationPatient, float)
        index = np.array(image.TransformPhysicalPointToContinuousIndex([float(v) for v in header.ImagePositionPatient]))
        k = int(round(index[2]))
        offset = np.abs(index - [0, 0, k]) * np.array(image.GetSpacing())
        if (not np.allclose(orientation, np.concatenate([direction[:, 0], direction[:, 1]]), atol=1e-4)
                or np.any(offset > POSITION_TOLERANCE_MM) or not 0 <= k < image.GetSize()[2]
                or (int(header.Columns), int(header.Rows)) != tuple(image.GetSize()[:2])):
            raise CTTimeError(f"the DICOM slice {header.get('SOPInstanceUID', '?')} of {name} does not lie on the "
                              "image CTTime scored (another series, or a tilted or irregular series)", "input")
        slices[k] = header
    return CTSeries(name, slices)
