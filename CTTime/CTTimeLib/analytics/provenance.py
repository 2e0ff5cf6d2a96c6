"""What a lesions table stands on: the warnings of the run that wrote it, which every analysis repeats.

The run's own warnings (run.json beside the table: parameter file, standardisation, reference scale) and those the
table's rows carry in ``standardization`` and ``warning`` (a lesion's soft-tissue share, its study's acquisition
outside the training domain), each of the latter named by patient and time point.
"""

from pathlib import Path

import numpy as np

from ..core.lesions import split_warnings
from ..run.run_folder import read_run_record


def run_record(lesions_path=None):
    """run.json beside ``lesions_path`` ({} without one); a damaged one is a CTTimeError naming it, not a report
    without the run's warnings."""
    return read_run_record(Path(lesions_path).parent) if lesions_path is not None else {}


def run_warnings(lesions, lesions_path=None):
    """The run-wide warnings: run.json's beside ``lesions_path`` and the standardisation's of the table."""
    record = run_record(lesions_path)
    found = [str(w) for w in record.get("warnings", []) if w]
    texts = lesions["standardization"].dropna().astype(str) if "standardization" in lesions else []
    return list(dict.fromkeys(found + [text.split(" - ", 1)[1] for text in texts if " - " in text]))


def study_warnings(lesions, run_wide):
    """(patient, time point, text) of every warning a row carries beyond the run-wide ones, each once."""
    if "warning" not in lesions:
        return []
    found = (((patient_id, timepoint, part) for part in split_warnings(cell) if part not in run_wide)
             for patient_id, timepoint, cell in zip(lesions["patient_id"], lesions["timepoint"], lesions["warning"]))
    return list(dict.fromkeys(item for items in found for item in items))


def table_warnings(lesions, lesions_path=None, used=None):
    """Every warning of the run behind a lesions table, each once: run-wide ones first, then those of single
    studies and lesions ("P01 BS: lesion L1: soft-tissue share ..."). ``used``: rows with patient_id and timepoint
    (those an analysis stands on): only the warnings of these studies, not of time points it left out."""
    if used is not None:
        studies = set(zip(used["patient_id"].astype(str), used["timepoint"].astype(str)))
        lesions = lesions[np.array([key in studies for key in zip(lesions["patient_id"].astype(str),
                                                                    lesions["timepoint"].astype(str))], dtype=bool)]
    run_wide = run_warnings(lesions, lesions_path)
    return run_wide + [f"{p} {t}: {text}" for p, t, text in study_warnings(lesions, run_wide)]


def warning_lines(warnings):
    """The warnings as printed lines."""
    return [f"WARNING: {text}" for text in warnings]
