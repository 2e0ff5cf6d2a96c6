"""Pipeline: the one code path from cases to a run folder, shared by the CLI, the Slicer module and batch scripts.

    extract_lesions / extract_case   image + lesions -> one row of raw features per lesion (errors kept per row)
    score_table                      rows -> z-scores, CT-TIME score and status per lesion
    run                              cases -> lesions.csv, patients.csv, coloured .seg.nrrd files, run.json
    rescore                          an existing lesions table -> the same outputs without re-extraction

Long work reports ``progress(done, total, message)`` and stops when ``cancelled()`` returns True.
"""

import datetime
import hashlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__, aggregation, outputs, standardization
from .errors import Cancelled, CTTimeError
from .extraction import FEATURE_PREFIX, FeatureExtractor
from .inputs import read_image, read_lesions
from .resources import MODEL_FILE, PARAMETER_FILE
from .signature import load_model

COHORT = "cohort"
RECIST_MIN_DIAMETER_MM = 10.0
DIAMETER_FEATURE = "original_shape_Maximum2DDiameterSlice"


@dataclass
class Case:
    """One CT study to score: a patient at a time point, an image and its segmentation."""

    patient_id: str
    timepoint: str
    image: str
    segmentation: str
    extras: dict = field(default_factory=dict)  # copied into every lesion row (e.g. batch)
    names: dict = field(default_factory=dict)  # label value -> lesion ID, for labelmaps
    locations: dict = field(default_factory=dict)  # lesion ID -> location

    @property
    def key(self):
        return outputs.safe_name(f"{self.patient_id}_{self.timepoint}")


@dataclass
class Options:
    """What a run needs besides its cases: how to standardise, and which model and parameter file."""

    standardize: str = COHORT  # "cohort", or the path of a reference JSON
    group_by: tuple = ()  # cohort mode: z-score within groups of these columns (e.g. ("timepoint",))
    model_file: str = str(MODEL_FILE)
    parameter_file: str = str(PARAMETER_FILE)
    write_segmentations: bool = True


@dataclass
class RunResult:
    lesions: pd.DataFrame
    patients: pd.DataFrame
    out_dir: Path
    files: list
    warnings: list

    @property
    def n_failed(self):
        return int((self.lesions["error"].fillna("") != "").sum())


def _check(cancelled):
    if cancelled is not None and cancelled():
        raise Cancelled()


def extract_lesions(image, lesions, extractor, meta, progress=None, cancelled=None):
    """Raw feature rows for lesions already on the image grid; a lesion that fails keeps its row with the error."""
    rows = []
    for done, lesion in enumerate(lesions):
        _check(cancelled)
        if progress:
            progress(done, len(lesions), f"{meta.get('patient_id', '')} {lesion.lesion_id}")
        row = dict(meta, lesion_id=lesion.lesion_id, location=lesion.location, error="")
        try:
            row.update(extractor.extract(image, lesion.mask, lesion.lesion_id))
        except CTTimeError as exc:
            row["error"] = str(exc)
        except Exception as exc:  # never lose the other lesions to one lesion's unexpected failure
            row["error"] = f"Lesion {lesion.lesion_id}: unexpected {type(exc).__name__}: {exc}"
        rows.append(row)
    if progress:
        progress(len(lesions), len(lesions), "done")
    return rows


def read_case(case):
    """The image and lesions of a case."""
    image = read_image(case.image)
    return image, read_lesions(case.segmentation, image, case.names, case.locations)


def extract_case(case, extractor, progress=None, cancelled=None):
    """Raw feature rows of a case; a case that cannot be read gives one row that carries the error."""
    meta = dict(case.extras, patient_id=case.patient_id, timepoint=case.timepoint)
    try:
        image, lesions = read_case(case)
    except CTTimeError as exc:
        return [dict(meta, lesion_id="", location="", error=str(exc))]
    return extract_lesions(image, lesions, extractor, meta, progress, cancelled)


def resolve_standardization(spec, model):
    """``"cohort"`` stays as it is; anything else is a reference file, loaded and checked for ``model``."""
    if spec == COHORT:
        return COHORT
    return standardization.load(spec, model.features, model.name)


def score_table(table, model, standardize=COHORT, group_by=()):
    """Add z-scores, CT-TIME score, status and the standardisation used to a table of raw feature rows."""
    table = table.copy()
    if "error" not in table:
        table["error"] = ""
    table["error"] = table["error"].fillna("").astype(str)
    missing = [name for name in model.features if name not in table.columns]
    if missing:
        raise CTTimeError(f"The lesions table has no column {', '.join(missing)}: the model needs its four "
                          "features, as pyradiomics names them.", "input")
    features = table[model.features].apply(pd.to_numeric, errors="coerce")
    scorable = (table["error"] == "") & np.isfinite(features).all(axis=1)
    table.loc[(table["error"] == "") & ~scorable, "error"] = "missing or non-finite signature feature"
    for name in model.features:
        table[f"z_{name}"] = np.nan
    table["standardization"] = ""
    groups = [((), table.index[scorable])] if standardize != COHORT or not group_by else \
        list(table[scorable].groupby(list(group_by), sort=False).groups.items())
    for label, index in groups:
        if standardize == COHORT:
            source = "all scored lesions" if not group_by else ", ".join(
                f"{k}={v}" for k, v in zip(group_by, label if isinstance(label, tuple) else (label,)))
            reference = standardization.from_lesions(features.loc[index], model.features, source, mode=COHORT)
        else:
            reference = standardize
        z = reference.standardize(features.loc[index], model.features)
        table.loc[index, z.columns] = z
        table.loc[index, "standardization"] = reference.describe()
    scores = model.score(table.loc[scorable, [f"z_{n}" for n in model.features]])
    table["ct_time_score"] = np.nan
    table.loc[scorable, "ct_time_score"] = scores
    table["ct_time_status"] = model.status(table["ct_time_score"])
    if DIAMETER_FEATURE in table:
        diameter = pd.to_numeric(table[DIAMETER_FEATURE], errors="coerce")
        table["longest_axial_diameter_mm"] = diameter
        table["recist_measurable"] = (diameter >= RECIST_MIN_DIAMETER_MM).where(diameter.notna())
    return table


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _run_record(options, model, reference_text, warnings, extractor=None):
    record = {
        "tool": "CTTime", "tool_version": __version__, "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(), "model": model.name, "model_file": model.path,
        "model_sha256": _sha256(model.path), "standardization": reference_text, "warnings": warnings,
        "provenance": model.provenance}
    if extractor is not None:
        record.update(parameter_file=extractor.parameter_file, parameter_file_sha256=_sha256(extractor.parameter_file),
                      parameter_file_is_fixed=extractor.is_fixed, pyradiomics_version=extractor.pyradiomics_version)
    return record


def _finish(scored, out_dir, options, model, extractor, cases):
    """Write lesions.csv, patients.csv, run.json and (with cases) the coloured segmentations."""
    out_dir = Path(out_dir)
    feature_names = extractor.feature_names if extractor else [c for c in scored if c.startswith(FEATURE_PREFIX)]
    lesions = outputs.order_lesion_columns(scored, feature_names, model.features)
    patients = aggregation.summarize(lesions, model.threshold)
    warnings = sorted({text.split(" - ", 1)[1] for text in lesions["standardization"] if " - " in text})
    if extractor is not None and extractor.warning:
        warnings.insert(0, extractor.warning)
    files = [out_dir / "lesions.csv", out_dir / "patients.csv", out_dir / "run.json"]
    outputs.write_table(lesions, files[0])
    outputs.write_table(patients, files[1])
    outputs.write_text(files[2], json.dumps(
        _run_record(options, model, sorted(set(lesions["standardization"]) - {""}), warnings, extractor), indent=2))
    for case in cases if options.write_segmentations else ():
        rows = lesions[(lesions["patient_id"] == case.patient_id) & (lesions["timepoint"] == case.timepoint)]
        try:
            image, case_lesions = read_case(case)
        except CTTimeError:
            continue  # the case's row already carries the error
        path = out_dir / f"{case.key}_cttime.seg.nrrd"
        outputs.write_colored_segmentation(path, image, case_lesions,
                                           {r["lesion_id"]: r for r in rows.to_dict("records")}, model.name)
        files.append(path)
    return RunResult(lesions, patients, out_dir, files, warnings)


def run(cases, out_dir, options=None, progress=None, cancelled=None):
    """Score cases end to end and write the run folder."""
    options = options or Options()
    model = load_model(options.model_file)
    standardize = resolve_standardization(options.standardize, model)
    extractor = FeatureExtractor(options.parameter_file)
    rows = []
    for done, case in enumerate(cases):
        _check(cancelled)
        if progress:
            progress(done, len(cases), f"{case.patient_id} {case.timepoint}")
        rows += extract_case(case, extractor, cancelled=cancelled)
    if progress:
        progress(len(cases), len(cases), "scoring")
    scored = score_table(pd.DataFrame(rows), model, standardize, options.group_by)
    return _finish(scored, out_dir, options, model, extractor, cases)


def rescore(table, out_dir, options=None):
    """Score an existing lesions table again (another reference or model) without re-extracting."""
    options = options or Options()
    model = load_model(options.model_file)
    for column in ("patient_id", "timepoint", "lesion_id"):
        if column not in table:
            raise CTTimeError(f"The lesions table has no {column!r} column (needs patient_id, timepoint, lesion_id "
                              "and the signature's features).", "input")
    keep = [c for c in table.columns if not c.startswith("z_") and c not in (
        "ct_time_score", "ct_time_status", "standardization", "longest_axial_diameter_mm", "recist_measurable")]
    table = table[keep].copy()
    if "location" not in table:
        from .inputs import infer_location
        table["location"] = table["lesion_id"].map(infer_location)
    errors = table["error"].fillna("").astype(str) if "error" in table else ""
    table["error"] = errors
    scored = score_table(table, model, resolve_standardization(options.standardize, model), options.group_by)
    return _finish(scored, out_dir, options, model, None, [])
