"""Manifest: the CSV that lists a cohort's studies, one row per patient and time point.

Required columns: patient_id, timepoint, image, and segmentation (a file, or a DICOM series folder for the image
and a DICOM SEG / RTSTRUCT file or folder for the segmentation) or marks or both. Optional:

    marks      RECIST lines (.mrk.json, CSV or DICOM SR, ``io.marks``): a lesion is proposed from each line, for the
               lesions the study's segmentation lacks (or all of them, with an empty segmentation)

    batch      scanner or reconstruction-kernel group, for harmonisation (carried into lesions.csv)
    location   the location of the study's lesions that neither a tag, the locations column nor their name
               places (``core.lesions``), e.g. ``lung`` for a chest CT whose lesions are lesion_1, lesion_2 ...
    locations  lesion locations, ``LESION=LOCATION`` pairs separated by ``;``, e.g. ``LU_1=lung;liver_2=liver``
               (lung, liver, lymph node, bone, other); lesions not named keep their tag or inferred location
    labels     lesion IDs of a labelmap's values, e.g. ``1=LU_1;2=liver_2`` (default: the label's name in a colour
               table beside the labelmap, else lesion_<value>)

Any other column is carried into lesions.csv, unless it is named like a column CTTime computes (``location``,
``error``, a feature...): such a manifest is refused, so a carried value never passes for a computed one. Relative
paths are relative to the manifest's folder. All problems (missing columns, empty cells, control characters,
duplicate patient/time point or lesion keys, studies whose file names would coincide, unknown locations, locations
of segments the segmentation does not hold, files that do not exist) are collected and reported together, before
any extraction starts; a label a labelmap does not hold fails its study when it is read.
"""

from pathlib import Path

from ..core.errors import CTTimeError
from ..core.lesions import normalize_location, study_location
from ..core.text import control_characters
from ..io.segmentations import segment_names
from ..io.tables import read_csv
from .run_folder import check_study_keys, output_columns
from .study import Case

REQUIRED = ("patient_id", "timepoint", "image", "segmentation")
MARKS = "marks"  # may stand in for the segmentation column
LESION_SPECS = ("location", "locations", "labels")  # parsed into the case, not carried as columns


def _pairs(text, column, where, problems):
    """``KEY=VALUE;...`` as a dict; malformed or repeated keys become problems."""
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key or not value:
            problems.append(f"{where}: {column} expects KEY=VALUE pairs separated by ';', got {item!r}")
        elif key in pairs:
            problems.append(f"{where}: {column} names {key!r} twice")
        else:
            pairs[key] = value
    return pairs


def _lesion_problems(row, files, where, problems):
    """The case's label names and locations, checked; duplicate lesion IDs in the segmentation are problems."""
    labels = _pairs(row.get("labels", ""), "labels", where, problems)
    names = {}
    for value, name in labels.items():
        if not value.isdigit():
            problems.append(f"{where}: labels expects LABEL_VALUE=LESION_ID, got {value}={name}")
        else:
            names[int(value)] = name
    if len(set(names.values())) < len(names):
        problems.append(f"{where}: labels gives two label values the same lesion ID")
    locations = _pairs(row.get("locations", ""), "locations", where, problems)
    for lesion_id, location in list(locations.items()):
        try:
            locations[lesion_id] = normalize_location(location, lesion_id)
        except CTTimeError as exc:
            problems.append(f"{where}: {exc}")
    if "segmentation" in files and files["segmentation"].exists():
        declared = segment_names(files["segmentation"])
        repeated = sorted({name for name in declared if declared.count(name) > 1})
        if repeated:
            problems.append(f"{where}: segmentation {files['segmentation']} has several segments named "
                            f"{', '.join(repeated)}; rename them so every lesion has its own ID")
        for name in declared:
            if control_characters(name):
                problems.append(f"{where}: segmentation {files['segmentation']} has a segment name with the control "
                                f"character(s) {' '.join(control_characters(name))} ({name!r}); rename it")
        unknown = [lesion_id for lesion_id in locations if declared and lesion_id not in declared
                   and not row.get(MARKS)]  # a location may be a marked lesion's
        if unknown:
            problems.append(f"{where}: locations names {', '.join(map(repr, unknown))}, which segmentation "
                            f"{files['segmentation']} does not hold (its segments: {', '.join(declared)})")
        if names and declared:
            problems.append(f"{where}: labels name labelmap values, but segmentation {files['segmentation']} is a "
                            "segmentation whose segments carry their own names; drop the labels")
    return names, locations


def read_manifest(path):
    """The manifest's cases, or one CTTimeError listing every problem found."""
    path = Path(path)
    table = read_csv(path, "Manifest", text=None, kind="manifest")
    missing = [c for c in REQUIRED if c not in table.columns and not (c == "segmentation" and MARKS in table.columns)]
    if missing:
        raise CTTimeError(f"Manifest {path} lacks the column(s) {', '.join(missing)}; it needs "
                          f"{', '.join(REQUIRED)} (one row per patient and time point; a marks column may stand in "
                          "for the segmentation).", "manifest")
    reserved = [c for c in output_columns(table.columns) if c not in REQUIRED + LESION_SPECS + (MARKS,)]
    if reserved:
        raise CTTimeError(f"Manifest {path} has column(s) named like columns CTTime computes: {', '.join(reserved)}; "
                          "rename them (e.g. add a prefix such as manifest_) so they are carried beside the "
                          "computed values.", "manifest")
    problems, cases, seen = [], [], {}
    for column in table.columns:
        if control_characters(column):
            problems.append(f"line 1: column name {column!r} holds the control character(s) "
                            f"{' '.join(control_characters(column))}")
    for number, row in enumerate(table.to_dict("records"), start=2):  # line 1 is the header
        row = {k: str(v).strip() for k, v in row.items()}
        row.setdefault("segmentation", "")
        where = f"line {number}"
        for column, value in row.items():
            if control_characters(value):
                problems.append(f"{where}: {column} {value!r} holds the control character(s) "
                                f"{' '.join(control_characters(value))}; remove them")
        for column in REQUIRED:
            if not row[column] and not (column == "segmentation" and row.get(MARKS)):
                problems.append(f"{where}: empty {column}" + (" (and no marks)" if column == "segmentation" and
                                                              MARKS in row else ""))
        key = (row["patient_id"], row["timepoint"])
        if key in seen:
            problems.append(f"{where}: patient {key[0]} at time point {key[1]} is listed again (first on line "
                            f"{seen[key]})")
        seen.setdefault(key, number)
        files = {}
        for column in ("image", "segmentation", MARKS):
            if row.get(column):
                files[column] = path.parent / row[column]  # an absolute path stays as it is
                if not files[column].exists():
                    problems.append(f"{where}: {column} not found: {files[column]}")
                elif not files[column].is_file() and not files[column].is_dir():
                    problems.append(f"{where}: {column} {files[column]} is not a regular file (a device, pipe or "
                                    "socket)")
                    del files[column]
        names, locations = _lesion_problems(row, files, where, problems)
        try:
            location = study_location(row.get("location", ""), "location")
        except CTTimeError as exc:
            problems.append(f"{where}: {exc}")
            location = ""
        if "image" in files and ("segmentation" in files or MARKS in files) and all(
                column in files for column in ("segmentation", MARKS) if row.get(column)):
            extras = {k: v for k, v in row.items() if k not in REQUIRED + LESION_SPECS + (MARKS,)}
            cases.append(Case(row["patient_id"], row["timepoint"], str(files["image"]),
                              str(files.get("segmentation", "")), extras, names, locations,
                              str(files.get(MARKS, "")), location))
    if not cases and not problems:
        problems.append("no rows")
    try:
        check_study_keys((case.patient_id, case.timepoint) for case in cases)
    except CTTimeError as exc:
        problems.append(str(exc))
    if problems:
        raise CTTimeError(f"Manifest {path} has {len(problems)} problem(s):\n  " + "\n  ".join(problems), "manifest")
    return cases
