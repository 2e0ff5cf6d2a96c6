"""Tables: the user's files (CSV tables, JSON models and references) read with clear errors, and labels and
outcomes joined to lesion or patient scores.

Labels are per lesion (``patient_id, lesion_id, label``) or per patient (``patient_id, label``); either may add a
``timepoint`` column. Per-patient labels are compared with an aggregate of the patient's lesion scores.
"""

import json

import numpy as np
import pandas as pd

from . import aggregation
from .errors import CTTimeError

TEXT_KEYS = ("patient_id", "timepoint", "lesion_id")


def read_json(path, what, kind):
    """A JSON object from a file, or a CTTimeError naming the file (``what``: e.g. "Model file")."""
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
    except FileNotFoundError:
        raise CTTimeError(f"{what} not found: {path}.", kind) from None
    except (OSError, ValueError) as exc:
        raise CTTimeError(f"{what} {path} is not valid JSON: {exc}", kind) from None
    if not isinstance(payload, dict):
        raise CTTimeError(f"{what} {path} is not a JSON object.", kind)
    return payload


def read_csv(path, what, required=(), text=TEXT_KEYS, hint="", kind="input"):
    """A CSV with its ``text`` columns (None: every column) kept as text (missing -> ""), or a CTTimeError naming
    the file and what it lacks (``hint``: what to give instead when the file does not exist)."""
    try:
        if text is None:
            table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        else:
            table = pd.read_csv(path, dtype={column: str for column in text})
    except FileNotFoundError:
        raise CTTimeError(f"{what} not found: {path}.{' ' + hint if hint else ''}", kind) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CTTimeError(f"Cannot read {what.lower()} {path}: {exc}", kind) from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise CTTimeError(f"{what} {path} lacks the column(s) {', '.join(missing)} (needs {', '.join(required)}).",
                          kind)
    for column in table.columns if text is None else text:
        if column in table:
            table[column] = table[column].fillna("").astype(str).str.strip()
    return table


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
    lesions = scored(lesions)
    if "timepoint" not in labels:
        lesions = one_timepoint(lesions, timepoint)
    if level == "lesion":
        frame = lesions.rename(columns={"ct_time_score": "score"})
    else:
        patients = aggregation.summarize(lesions, threshold)
        frame = patients.rename(columns={f"ct_time_{aggregate}": "score"})
    frame = frame.merge(labels[keys + ["label"]], on=keys, how="inner")
    notes = []
    if len(frame) < len(labels):
        notes.append(f"{len(labels) - len(frame)} label row(s) matched no scored {level}")
    if frame.empty or frame["label"].nunique() < 2:
        raise CTTimeError(f"{path}: after matching by {', '.join(keys)}, {len(frame)} {level}(s) have a score and "
                          "a label; both classes (0 and 1) are needed.", "input")
    return frame, level, notes
