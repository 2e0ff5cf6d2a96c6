"""Manifest: the CSV that lists a cohort's studies, one row per patient and time point.

Required columns: patient_id, timepoint, image, segmentation. Optional: batch (scanner or kernel group), any
other column is carried into lesions.csv. Relative paths are relative to the manifest's folder. All problems
are collected and reported together, before any extraction starts.
"""

from pathlib import Path

import pandas as pd

from .errors import CTTimeError
from .pipeline import Case

REQUIRED = ("patient_id", "timepoint", "image", "segmentation")


def read_manifest(path):
    """The manifest's cases, or one CTTimeError listing every problem found."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise CTTimeError(f"Manifest not found: {path}.", "manifest") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CTTimeError(f"Cannot read manifest {path}: {exc}", "manifest") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise CTTimeError(f"Manifest {path} lacks the column(s) {', '.join(missing)}; it needs "
                          f"{', '.join(REQUIRED)} (one row per patient and time point).", "manifest")
    problems, cases, seen = [], [], {}
    for number, row in enumerate(table.to_dict("records"), start=2):  # line 1 is the header
        row = {k: str(v).strip() for k, v in row.items()}
        where = f"line {number}"
        for column in REQUIRED:
            if not row[column]:
                problems.append(f"{where}: empty {column}")
        key = (row["patient_id"], row["timepoint"])
        if key in seen:
            problems.append(f"{where}: patient {key[0]} at time point {key[1]} is listed again (first on line "
                            f"{seen[key]})")
        seen.setdefault(key, number)
        files = {}
        for column in ("image", "segmentation"):
            if row[column]:
                files[column] = (path.parent / row[column]) if not Path(row[column]).is_absolute() else Path(row[column])
                if not files[column].exists():
                    problems.append(f"{where}: {column} not found: {files[column]}")
        if len(files) == 2:
            extras = {k: v for k, v in row.items() if k not in REQUIRED}
            cases.append(Case(row["patient_id"], row["timepoint"], str(files["image"]), str(files["segmentation"]),
                              extras))
    if not cases and not problems:
        problems.append("no rows")
    if problems:
        raise CTTimeError(f"Manifest {path} has {len(problems)} problem(s):\n  " + "\n  ".join(problems), "manifest")
    return cases
