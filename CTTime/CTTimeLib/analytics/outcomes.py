"""Labels and outcomes joined to lesion or patient scores.

Labels are per lesion (``patient_id, lesion_id, label``) or per patient (``patient_id, label``); either may add a
``timepoint`` column. Per-patient labels are compared with an aggregate of the patient's lesion scores.
"""

import numpy as np
import pandas as pd

from ..core.errors import CTTimeError
from ..scoring import aggregation


def scored(lesions):
    """The lesions that have a score."""
    scores = pd.to_numeric(lesions["ct_time_score"], errors="coerce")
    return lesions[np.isfinite(scores)].assign(ct_time_score=scores[np.isfinite(scores)])


def one_timepoint(lesions, timepoint=None):
    """The lesions of one time point: ``timepoint``, or the only one each patient has."""
    if timepoint:
        chosen = lesions[lesions["timepoint"].astype(str) == str(timepoint)]
        if chosen.empty:
            raise CTTimeError(f"No lesion at time point {timepoint!r} (the table has "
                              f"{', '.join(sorted(lesions['timepoint'].astype(str).unique()))}).", "input")
        return chosen
    if (lesions.groupby("patient_id")["timepoint"].nunique() > 1).any():
        raise CTTimeError("Some patients have several time points: choose one with --timepoint (e.g. BS).", "input")
    return lesions


def patient_aggregates(lesions, timepoint=None, threshold=0.5, by_timepoint=False):
    """patients.csv rows (aggregation.summarize) of the patients with a scored lesion, at ``timepoint`` or each
    patient's only time point (every time point with ``by_timepoint``). Failed lesions are counted, so
    ``aggregate_complete`` and ``aggregate_coverage`` say what each aggregate stands on."""
    chosen = scored(lesions)
    if not by_timepoint:
        chosen = one_timepoint(chosen, timepoint)
    keys = set(zip(chosen["patient_id"], chosen["timepoint"]))
    rows = lesions[np.array([key in keys for key in zip(lesions["patient_id"], lesions["timepoint"])], dtype=bool)]
    rows = rows.assign(ct_time_score=pd.to_numeric(rows["ct_time_score"], errors="coerce"))
    patients = aggregation.summarize(rows, threshold)
    return patients[patients["n_scored"] > 0].reset_index(drop=True)


def incomplete_note(patients):
    """A note on the patients whose aggregates stand on an incomplete set of lesions, else None."""
    incomplete = patients[~patients["aggregate_complete"].astype(bool)]
    if incomplete.empty:
        return None
    return (f"{len(incomplete)} patient(s) with aggregates over an incomplete set of lesions (some failed): "
            + ", ".join(f"{r['patient_id']} {r['timepoint']} ({r['aggregate_coverage']})"
                        for r in incomplete.to_dict("records")))


def binary(values, path, column="label"):
    """0/1 integers, or a CTTimeError naming the file."""
    numbers = pd.to_numeric(values, errors="coerce")
    if not numbers.isin([0, 1]).all():
        raise CTTimeError(f"{path}: the {column} column must hold 0 or 1 in every row.", "input")
    return numbers.astype(int)


def attach_labels(lesions, labels, path, aggregate="min", timepoint=None, threshold=0.5):
    """Scores joined to labels: (frame with ``score`` and ``label`` columns, level, notes).

    Per-lesion labels are matched by patient_id and lesion_id (and timepoint if the labels have it); per-patient
    labels are compared with the ``aggregate`` (min, median, mean or max) of the patient's lesion scores.
    """
    if aggregate not in aggregation.AGGREGATES:
        raise CTTimeError(f"Unknown aggregate {aggregate!r}: use one of {', '.join(aggregation.AGGREGATES)}.", "input")
    labels = labels.assign(label=binary(labels["label"], path))
    level = "lesion" if "lesion_id" in labels else "patient"
    keys = ["patient_id"] + (["lesion_id"] if level == "lesion" else []) + (
        ["timepoint"] if "timepoint" in labels else [])
    if labels.duplicated(keys).any():
        raise CTTimeError(f"{path}: {', '.join(keys)} must be unique; some rows repeat.", "input")
    notes = []
    if level == "lesion":
        chosen = scored(lesions)
        if "timepoint" not in labels:
            chosen = one_timepoint(chosen, timepoint)
        frame = chosen.rename(columns={"ct_time_score": "score"})
    else:
        patients = patient_aggregates(lesions, timepoint, threshold, by_timepoint="timepoint" in labels)
        frame = patients.rename(columns={f"ct_time_{aggregate}": "score"})
    frame = frame.merge(labels[keys + ["label"]], on=keys, how="inner")
    if level == "patient" and incomplete_note(frame):
        notes.append(incomplete_note(frame))
    if len(frame) < len(labels):
        notes.append(f"{len(labels) - len(frame)} label row(s) matched no scored {level}")
    if frame.empty or frame["label"].nunique() < 2:
        raise CTTimeError(f"{path}: after matching by {', '.join(keys)}, {len(frame)} {level}(s) have a score and "
                          "a label; both classes (0 and 1) are needed.", "input")
    return frame, level, notes
