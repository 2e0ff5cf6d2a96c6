"""CT-TIME results back to PACS: a DICOM SEG of the lesions and a DICOM SR (TID 1500 Measurement Report) of their
results, both referencing the CT series they were scored on (docs/dicom.md).

    read_ct_series(source, image)   the CT's DICOM headers on CTTime's image grid (refuses a CT that is not DICOM)
    write_dicom(seg_path, sr_path, series, image, findings, software_version)

Both files carry the CT's patient and study, new series and instance UIDs, and are written atomically.
"""

from ...core.files import atomic_path
from .findings import CTSeries, LesionFinding, StudyFindings, read_ct_series, tracking_uid
from .seg import build_segmentation
from .sr import build_report

__all__ = ["CTSeries", "LesionFinding", "StudyFindings", "read_ct_series", "tracking_uid", "write_dicom"]


def write_dicom(seg_path, sr_path, series, image, findings, software_version):
    """Write the SEG and the SR of one study (``findings``: ``StudyFindings``); their paths."""
    segmentation, segments, library = build_segmentation(series, image, findings, software_version)
    report = build_report(series, segmentation, segments, library, findings, software_version)
    for dataset, path in ((segmentation, seg_path), (report, sr_path)):
        with atomic_path(path) as temporary:
            dataset.save_as(temporary)
    return [seg_path, sr_path]
