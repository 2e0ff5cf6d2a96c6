"""The run folder: every rule about its files in one place.

    lesions.csv                          one row per lesion (column order: ``order_lesion_columns``)
    perturbations.csv                    one row per perturbed delineation of a lesion (``scoring.robustness``)
    patients.csv                         one row per patient and time point
    run.json                             versions, checksums, standardisation, warnings, summary
    <patient>_<timepoint>_cttime.seg.nrrd  the lesions coloured by score
    <patient>_<timepoint>_proposed.seg.nrrd  lesions proposed from RECIST marks, for editing (``cttime delineate``)
    <patient>_<timepoint>_board.png      the tumour-board figure (and .pdf)
    <patient>_<timepoint>_screenshot.png the Slicer module's screenshot
    <patient>_<timepoint>_cttime_seg.dcm  DICOM SEG of the lesions (``--dicom``, ``cttime dicom-export``)
    <patient>_<timepoint>_cttime_sr.dcm   DICOM SR (TID 1500) of the results
    cttime.log                           what other libraries printed (see ``log``)
    cache/                               raw results for resuming (see ``cache``)
    superseded/                          study files of an earlier run that a rerun did not write again
    .cttime.lock                         held by the run writing the folder (one run at a time)

``<patient>_<timepoint>`` is ``study_key``: the IDs themselves when they make a safe file name, else their safe
form and a hash of the exact IDs, so two studies never share a file name.

A run is identified by run.json's ``run_id``; each board and DICOM object records the run it came from
(``identity``: the run ID and the SHA-256 of the lesions.csv it was drawn from), so a figure can be told from an
earlier run's.
"""

import contextlib
import functools
import hashlib
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import CTTimeError
from ..core.files import FILE_MODE, atomic_path, digest, output_folder, safe_name, write_table, write_text
from ..io.images import read_image
from ..io.marks import read_marks
from ..io.segmentations import read_lesions
from ..scoring import reference_interval, robustness
from ..scoring.acquisition import COLUMNS as ACQUISITION_COLUMNS
from ..scoring.extraction import FEATURE_PREFIX
from ..scoring.soft_tissue import COLUMN as SOFT_TISSUE_SHARE
from .proposals import propose_lesions

LESIONS_CSV, PATIENTS_CSV, RUN_JSON, CACHE_DIR, LOG_FILE = "lesions.csv", "patients.csv", "run.json", "cache", \
    "cttime.log"
SUPERSEDED_DIR = "superseded"
RUN_ID = "run_id"  # run.json's identity of a run
BOARD_RUN_KEY, BOARD_LESIONS_KEY = "CTTime run", "CTTime lesions.csv sha256"  # a board PNG's text chunks
PERTURBATIONS_CSV = "perturbations.csv"
SEGMENTATION_SUFFIX, BOARD_SUFFIX, SCREENSHOT_SUFFIX = "_cttime.seg.nrrd", "_board", "_screenshot.png"
PROPOSED_SUFFIX = "_proposed.seg.nrrd"
DICOM_SEG_SUFFIX, DICOM_SR_SUFFIX = "_cttime_seg.dcm", "_cttime_sr.dcm"
LOCK_FILE = ".cttime.lock"
LESION_KEYS = ["patient_id", "timepoint", "lesion_id", "location"]
INPUT_COLUMNS = ("image", "segmentation", "marks")  # every lesion row names its study's files
DELINEATION_COLUMNS = ("delineation", "delineation_warning")  # "manual" or "proposed ..."; the proposal's warnings
_TEXT_COLUMNS = ("error", "error_kind", "standardization", "warning", *DELINEATION_COLUMNS)
_KEY_LIMIT = 80
_HASHED = re.compile(r"-[0-9a-f]{12}$")
_STUDY_FILE = re.compile(rf"(.+)({re.escape(SEGMENTATION_SUFFIX)}|{BOARD_SUFFIX}\.png|{BOARD_SUFFIX}\.pdf|"
                         rf"{re.escape(SCREENSHOT_SUFFIX)}|{re.escape(DICOM_SEG_SUFFIX)}|"
                         rf"{re.escape(DICOM_SR_SUFFIX)})$")


def study_key(patient_id, timepoint):
    """The file-name stem of one patient at one time point: ``<patient>_<timepoint>`` when that is a safe file name
    that says which study it is (the time point holds no "_"); else that name made safe, a "-" and 12 hex digits
    of a hash of the exact IDs (``P/1`` and ``P_1``, ``Pä`` and ``Pa``, long IDs alike in their first 80
    characters all get names of their own)."""
    plain = f"{patient_id}_{timepoint}"
    if safe_name(plain, _KEY_LIMIT) == plain and "_" not in str(timepoint) and not _HASHED.search(plain):
        return plain
    exact = json.dumps([str(patient_id), str(timepoint)], ensure_ascii=False).encode("utf-8")
    return f"{safe_name(plain, _KEY_LIMIT)}-{hashlib.sha256(exact).hexdigest()[:12]}"


def check_study_keys(studies):
    """Refuse studies whose file names would coincide (``studies``: (patient, time point) pairs); names that differ
    only in letter case count as one, as on Windows and macOS disks."""
    seen, clashes = {}, []
    for patient_id, timepoint in studies:
        key = study_key(patient_id, timepoint).lower()
        if key in seen and seen[key] != (patient_id, timepoint):
            clashes.append(f"{seen[key][0]} {seen[key][1]} and {patient_id} {timepoint}")
        seen.setdefault(key, (patient_id, timepoint))
    if clashes:
        raise CTTimeError(f"{len(clashes)} pair(s) of studies would write the same files ({'; '.join(clashes[:5])}): "
                          "their IDs differ only in letter case; rename one of each pair.", "input")


def segmentation_path(out_dir, patient_id, timepoint):
    return Path(out_dir) / f"{study_key(patient_id, timepoint)}{SEGMENTATION_SUFFIX}"


def proposed_segmentation_path(out_dir, patient_id, timepoint):
    """The lesions ``cttime delineate`` proposed from a study's marks."""
    return Path(out_dir) / f"{study_key(patient_id, timepoint)}{PROPOSED_SUFFIX}"


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
    input segmentation and the lesions proposed again from the input marks. CTTimeError when the CT is not recorded
    or cannot be read."""
    first = rows.iloc[0]
    path = str(first.get("image", "") or "")
    if not path:
        raise CTTimeError("CT image not recorded in lesions.csv (run made by an older CTTime): score it again",
                          "input")
    image = read_image(path)
    coloured = segmentation_path(run_dir, first["patient_id"], first["timepoint"])
    if coloured.exists():
        return image, read_lesions(coloured, image)
    segmentation, marks = (str(first.get(column, "") or "") for column in ("segmentation", "marks"))
    lesions = read_lesions(segmentation, image) if segmentation and Path(segmentation).exists() else []
    if marks and Path(marks).exists():
        lesions += propose_lesions(image, read_marks(marks, image, path))
    return image, lesions


def order_lesion_columns(frame, feature_names, model_features):
    """lesions.csv column order, what a reader needs first: identity, score and status, the robustness columns,
    warning and error, standardisation, delineation (manual or proposed, the proposal's warnings), soft-tissue
    share, size, z-scores, then the extras (input paths, batch,
    acquisition) and the pyradiomics features last. Missing columns are added empty; the perturbed delineations
    are not columns (they go to perturbations.csv), nor are the reference's draws. The robustness columns: the
    delineation interval, then the reference's (``reference_interval``) and whether the lesion lies outside it."""
    head = (LESION_KEYS + ["ct_time_score", "ct_time_status"] + list(robustness.COLUMNS)
            + list(reference_interval.COLUMNS)
            + ["warning", "error", "error_kind", "standardization", *DELINEATION_COLUMNS, SOFT_TISSUE_SHARE,
               "longest_axial_diameter_mm",
               "recist_measurable"] + [f"z_{n}" for n in model_features])
    features = [c for c in feature_names if c not in head]
    hidden = {robustness.PERTURBED, robustness.PERTURBED_SCORES, reference_interval.DRAW_SCORES}
    extras = [c for c in frame.columns if c not in head and c not in features and c not in hidden]
    ordered = frame.reindex(columns=head + extras + features)  # one step: no column-by-column insertion
    for column in _TEXT_COLUMNS:
        if column not in frame.columns:
            ordered[column] = ""
    return ordered


def output_columns(names):
    """Those of ``names`` that CTTime writes into lesions.csv itself (keys, inputs, acquisition, features, z-scores,
    scores, errors): a carried column of that name would be mistaken for, or replace, the computed one."""
    known = _named_output_columns()
    return [name for name in names if name in known or str(name).startswith((FEATURE_PREFIX, "z_", "diagnostics_"))]


@functools.lru_cache(maxsize=1)
def _named_output_columns():
    import pandas as pd

    return frozenset(order_lesion_columns(pd.DataFrame(), [], [])) | set(INPUT_COLUMNS) | set(ACQUISITION_COLUMNS)


def read_lesions_table(path, required=()):
    """A lesions CSV (lesions.csv of a run) with its keys, errors and carried columns (those CTTime does not
    compute) kept as text, byte for byte; ``required``: columns it must have."""
    from ..io.tables import TEXT_KEYS, read_csv  # pandas: not at import (Slicer's module loads without it)

    named = TEXT_KEYS + ("error", "error_kind", "location")
    return read_csv(path, "Lesions table", required, strip=False,
                    text=lambda column: column in named or not output_columns([column]))


def read_perturbations_table(run_dir):
    """perturbations.csv of a run folder with its IDs byte for byte (as ``read_lesions_table``), or None."""
    from ..io.tables import TEXT_KEYS, read_csv  # pandas: not at import (Slicer's module loads without it)

    path = Path(run_dir) / PERTURBATIONS_CSV
    return read_csv(path, "Perturbations table", text=TEXT_KEYS + ("error",), strip=False) if path.exists() else None


def write_results(out_dir, lesions, patients, record=None, perturbations=None):
    """lesions.csv, patients.csv, perturbations.csv (when there are perturbations; an earlier run's is removed) and
    run.json (when given), each written completely before any replaces its predecessor (a full disk leaves the
    earlier files as they were); their paths."""
    out_dir = Path(out_dir)
    tables = [(out_dir / LESIONS_CSV, lesions), (out_dir / PATIENTS_CSV, patients)]
    sidecar = out_dir / PERTURBATIONS_CSV
    if perturbations is not None and len(perturbations):
        tables.append((sidecar, perturbations))
    with contextlib.ExitStack() as stack:
        for path, frame in tables:
            write_table(frame, stack.enter_context(atomic_path(path)))
        if record is not None:
            write_text(stack.enter_context(atomic_path(out_dir / RUN_JSON)), json.dumps(record, indent=2))
    if sidecar.exists() and all(path != sidecar for path, _ in tables):
        sidecar.unlink()
    return [path for path, _ in tables] + ([out_dir / RUN_JSON] if record is not None else [])


def leftovers(out_dir, written):
    """Study files in ``out_dir`` (coloured segmentations, boards, screenshots, DICOM SEG and SR) that a run did not
    write (``written``: the paths it wrote): an earlier run's, which no longer match the tables. Their names,
    sorted."""
    written = {Path(path).name for path in written}
    return sorted(path.name for path in Path(out_dir).iterdir()
                  if _STUDY_FILE.fullmatch(path.name) and path.name not in written and path.is_file())


def set_aside(out_dir, names):
    """Move the files ``names`` of ``out_dir`` into its ``superseded/`` folder (replacing files of the same name
    there), so no figure, segmentation or DICOM object of an earlier run sits beside the tables of this one."""
    if not names:
        return
    folder = Path(out_dir) / SUPERSEDED_DIR
    try:
        folder.mkdir(exist_ok=True)
        for name in names:
            os.replace(Path(out_dir) / name, folder / name)
    except OSError as exc:
        raise CTTimeError(f"Cannot move the earlier run's files into {folder}: {exc.strerror or exc}; the tables are "
                          "written, but its figures remain beside them: delete them.", "output") from None


def identity(run_dir):
    """Which run a board or DICOM object of ``run_dir`` comes from: {"run_id": run.json's ID ("" without one),
    "lesions_sha256": the SHA-256 of its lesions.csv ("" without one)}."""
    lesions = Path(run_dir) / LESIONS_CSV
    run_id = read_run_record(run_dir).get(RUN_ID) if (Path(run_dir) / RUN_JSON).exists() else ""
    return {"run_id": run_id if isinstance(run_id, str) else "",
            "lesions_sha256": digest(lesions) if lesions.is_file() else ""}


@contextmanager
def claim(out_dir):
    """The run folder as an absolute path, checked writable and locked for this run until the block ends (a second
    run into the same folder is refused with a message). Temporaries left by a killed run are removed. A folder
    made here for a block that fails before writing anything is removed again, lock file and all."""
    made = not Path(out_dir).absolute().exists()
    folder = output_folder(out_dir)
    handle = _lock(folder / LOCK_FILE)
    try:
        for leftover in [*folder.glob(".*.part"), *(folder / CACHE_DIR).glob("**/.*.part")]:
            leftover.unlink(missing_ok=True)
        yield folder
    except BaseException:
        if made and [path.name for path in folder.iterdir()] == [LOCK_FILE]:
            with contextlib.suppress(OSError):  # removed while still locked (Windows refuses: the file stays)
                (folder / LOCK_FILE).unlink()
            _unlock(handle)
            handle = None
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        if handle is not None:
            _unlock(handle)


def _lock(path):
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise CTTimeError(f"Cannot create the lock file {path}: {exc.strerror}; choose a folder you can write to.",
                          "input") from None
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(handle, 64).decode("ascii", "replace").strip() or "unknown"
        os.close(handle)
        raise CTTimeError(f"Another CTTime run (process {holder}) is writing to {path.parent}; wait for it to end or "
                          "give another output folder.", "input") from None
    os.ftruncate(handle, 0)
    os.write(handle, str(os.getpid()).encode("ascii"))
    return handle


def _unlock(handle):
    os.close(handle)  # closing releases the lock; the file stays for the next run


def read_run_record(run_dir, required=False):
    """run.json of a run folder as a dict ({} when absent, unless ``required``)."""
    path = Path(run_dir) / RUN_JSON
    if not path.exists() and not required:
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise CTTimeError(f"Cannot read {path}: {exc}", "input") from None
    if not isinstance(record, dict):
        raise CTTimeError(f"{path} is not a CTTime run record (a JSON object).", "input")
    expected = {"warnings": (list, "a list of texts"), "harmonization": (dict, "an object")}
    for key, (kind, what) in expected.items():
        value = record.get(key)
        if value is not None and not (isinstance(value, kind) and (kind is dict or all(
                isinstance(item, str) for item in value))):
            raise CTTimeError(f"{path}: '{key}' should be {what}, not {json.dumps(value)[:60]}; the file is damaged: "
                              "write it again (cttime rescore) or remove it.", "input")
    return record
