"""The run folder: every rule about its files in one place.

    lesions.csv                          one row per lesion (column order: ``order_lesion_columns``)
    patients.csv                         one row per patient and time point
    run.json                             versions, checksums, standardisation, warnings, summary
    <patient>_<timepoint>_cttime.seg.nrrd  the lesions coloured by score
    <patient>_<timepoint>_board.png      the tumour-board figure (and .pdf)
    <patient>_<timepoint>_screenshot.png the Slicer module's screenshot
    cttime.log                           what other libraries printed (see ``log``)
    cache/                               raw results for resuming (see ``cache``)
"""

import json
from pathlib import Path

from ..core.errors import CTTimeError
from ..core.files import safe_name, write_table, write_text
from ..scoring.soft_tissue import COLUMN

LESIONS_CSV, PATIENTS_CSV, RUN_JSON, CACHE_DIR, LOG_FILE = "lesions.csv", "patients.csv", "run.json", "cache", \
    "cttime.log"
SEGMENTATION_SUFFIX, BOARD_SUFFIX, SCREENSHOT_SUFFIX = "_cttime.seg.nrrd", "_board", "_screenshot.png"
LESION_KEYS = ["patient_id", "timepoint", "lesion_id", "location"]
ROBUSTNESS_COLUMNS = ("ct_time_score_low", "ct_time_score_high", "ct_time_status_robust")  # when a run has them
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


def order_lesion_columns(frame, feature_names, model_features):
    """lesions.csv column order, what a reader needs first: identity, score and status (robustness columns when
    present), warning and error, standardisation, soft-tissue share, size, z-scores, then the extras (input paths,
    batch, acquisition) and the pyradiomics features last. Missing columns are added empty."""
    head = (LESION_KEYS + ["ct_time_score", "ct_time_status"] + [c for c in ROBUSTNESS_COLUMNS if c in frame]
            + ["warning", "error", "error_kind", "standardization", COLUMN, "longest_axial_diameter_mm",
               "recist_measurable"] + [f"z_{n}" for n in model_features])
    features = [c for c in feature_names if c not in head]
    extras = [c for c in frame.columns if c not in head and c not in features]
    ordered = frame.reindex(columns=head + extras + features)  # one step: no column-by-column insertion
    for column in _TEXT_COLUMNS:
        if column not in frame.columns:
            ordered[column] = ""
    return ordered


def write_tables(out_dir, lesions, patients):
    """Write lesions.csv and patients.csv (atomically); their paths."""
    files = [Path(out_dir) / LESIONS_CSV, Path(out_dir) / PATIENTS_CSV]
    write_table(lesions, files[0])
    write_table(patients, files[1])
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
