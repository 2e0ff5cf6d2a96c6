"""The run folder: every rule about its files in one place.

    lesions.csv                          one row per lesion (column order: ``order_lesion_columns``)
    perturbations.csv                    one row per perturbed delineation of a lesion (``scoring.robustness``)
    patients.csv                         one row per patient and time point
    run.json                             versions, checksums, standardisation, warnings, summary
    <patient>_<timepoint>_cttime.seg.nrrd  the lesions coloured by score
    <patient>_<timepoint>_board.png      the tumour-board figure (and .pdf)
    <patient>_<timepoint>_screenshot.png the Slicer module's screenshot
    <patient>_<timepoint>_cttime_seg.dcm  DICOM SEG of the lesions (``--dicom``, ``cttime dicom-export``)
    <patient>_<timepoint>_cttime_sr.dcm   DICOM SR (TID 1500) of the results
    cache/                               raw results for resuming (see ``cache``)
"""

import json
from pathlib import Path

import numpy as np

from ..core.errors import CTTimeError
from ..core.files import safe_name, write_table, write_text
from ..io.images import read_image
from ..io.segmentations import read_lesions
from ..scoring import robustness

LESIONS_CSV, PATIENTS_CSV, RUN_JSON, CACHE_DIR = "lesions.csv", "patients.csv", "run.json", "cache"
PERTURBATIONS_CSV = "perturbations.csv"
SEGMENTATION_SUFFIX, BOARD_SUFFIX, SCREENSHOT_SUFFIX = "_cttime.seg.nrrd", "_board", "_screenshot.png"
DICOM_SEG_SUFFIX, DICOM_SR_SUFFIX = "_cttime_seg.dcm", "_cttime_sr.dcm"
LESION_KEYS = ["patient_id", "timepoint", "lesion_id", "location"]
_TEXT_COLUMNS = ("error", "error_kind", "standardization", "warning")


def study_key(patient_id, timepoint):
    """The file-name stem of one patient at one time point."""
    return safe_name(f"{patient_id}_{timepoint}")


def segmentation_path(out_dir, patient_id, timepoint):
    return Path(out_dir) / f"{study_key(patient_id, timepoint)}{SEGMENTATION_SUFFIX}"


def board_path(out_dir, patient_id, timepoint, suffix=".png"):
    return Path(out_dir) / f"{study_key(patient_id, timepoint)}{BOARD_SUFFIX}{suffix}"


def screenshot_path(out_dir, patient_id, timepoint):
    """The Slicer module's screenshot of the layout with the colour legend."""
    return Path(out_dir) / f"{study_key(patient_id, timepoint)}{SCREENSHOT_SUFFIX}"


def dicom_paths(out_dir, patient_id, timepoint):
    """The DICOM SEG and SR of a study."""
    stem = Path(out_dir) / study_key(patient_id, timepoint)
    return stem.with_name(stem.name + DICOM_SEG_SUFFIX), stem.with_name(stem.name + DICOM_SR_SUFFIX)


def read_study(run_dir, rows):
    """The CT image and lesions (masks on its grid) of one patient and time point of a run (``rows``: its
    lesions.csv rows): the lesions from the run's coloured .seg.nrrd, which names them as scored, else from the
    input segmentation. CTTimeError when the CT is not recorded or cannot be read."""
    first = rows.iloc[0]
    path = str(first.get("image", "") or "")
    if not path:
        raise CTTimeError("CT image not recorded in lesions.csv (run made by an older CTTime): score it again",
                          "input")
    image = read_image(path)
    candidates = [segmentation_path(run_dir, first["patient_id"], first["timepoint"])]
    if str(first.get("segmentation", "") or ""):
        candidates.append(Path(first["segmentation"]))
    for candidate in candidates:
        if candidate.exists():
            return image, read_lesions(candidate, image)
    return image, []


def order_lesion_columns(frame, feature_names, model_features):
    """lesions.csv column order: keys, extras (batch, acquisition), features, derived, scores, error (the
    perturbed delineations are not columns: they go to perturbations.csv)."""
    tail = (["longest_axial_diameter_mm", "recist_measurable"] + [f"z_{n}" for n in model_features]
            + ["ct_time_score", "ct_time_status"] + list(robustness.COLUMNS)
            + ["standardization", "warning", "error", "error_kind"])
    known = LESION_KEYS + list(feature_names) + tail
    extras = [c for c in frame.columns if c not in known + [robustness.PERTURBED, robustness.PERTURBED_SCORES]]
    for column in known:
        if column not in frame.columns:
            frame[column] = np.nan if column not in _TEXT_COLUMNS else ""
    return frame[LESION_KEYS + extras + list(feature_names) + tail].copy()


def write_tables(out_dir, lesions, patients, perturbations=None):
    """Write lesions.csv, patients.csv and, when given, perturbations.csv (atomically); their paths. A run
    without perturbations removes the perturbations.csv of an earlier run into the same folder."""
    files = [Path(out_dir) / LESIONS_CSV, Path(out_dir) / PATIENTS_CSV]
    write_table(lesions, files[0])
    write_table(patients, files[1])
    sidecar = Path(out_dir) / PERTURBATIONS_CSV
    if perturbations is not None and len(perturbations):
        write_table(perturbations, sidecar)
        files.append(sidecar)
    elif sidecar.exists():
        sidecar.unlink()
    return files


def write_run_record(out_dir, record):
    path = Path(out_dir) / RUN_JSON
    write_text(path, json.dumps(record, indent=2))
    return path


def read_run_record(run_dir, required=False):
    """run.json of a run folder as a dict ({} when absent, unless ``required``)."""
    path = Path(run_dir) / RUN_JSON
    if not path.exists() and not required:
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CTTimeError(f"Cannot read {path}: {exc}", "input") from None
    if not isinstance(record, dict):
        raise CTTimeError(f"{path} is not a CTTime run record (a JSON object).", "input")
    return record
