"""Pipeline: the one code path from cases to a run folder, shared by the CLI, the Slicer module and batch scripts.

    extract_lesions / extract_case   image + lesions -> one row of raw features per lesion (errors kept per row)
    score_table                      rows -> z-scores, CT-TIME score and status per lesion
    run                              cases -> lesions.csv, patients.csv, coloured .seg.nrrd files, run.json
    rescore                          an existing lesions table -> the same outputs without re-extraction

Long work reports ``progress(done, total, message)`` and stops when ``cancelled()`` returns True. ``run`` hands
each case to ``execution`` (this process, local processes or a Dask cluster) and keeps raw results in the
output folder's ``cache`` (see ``cache``), so an interrupted run resumes where it stopped.
"""

import contextlib
import datetime
import functools
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__, acquisition, aggregation, cache, execution, harmonization, outputs, standardization
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
    harmonize_by: str = None  # ComBat-correct the features across this column (e.g. "batch") before z-scoring
    model_file: str = str(MODEL_FILE)
    parameter_file: str = str(PARAMETER_FILE)
    write_segmentations: bool = True
    workers: int = 1  # local processes extracting cases in parallel (1: in this process)
    scheduler: str = None  # tcp://host:port of a Dask scheduler: extract on that cluster instead
    cache: bool = True  # keep raw results in <out>/cache and reuse them (resume)
    strict: bool = False  # a study that cannot be read stops the run (bad input) instead of becoming an error row


@dataclass
class RunResult:
    lesions: pd.DataFrame
    patients: pd.DataFrame
    out_dir: Path
    files: list
    warnings: list
    summary: dict = field(default_factory=dict)

    @property
    def n_failed(self):
        return int((self.lesions["error"].fillna("") != "").sum())


def _check(cancelled):
    if cancelled is not None and cancelled():
        raise Cancelled()


def extract_lesions(image, lesions, extractor, meta, progress=None, cancelled=None, done=None, on_row=None):
    """Raw feature rows for lesions already on the image grid; a lesion that fails keeps its row with the error
    and its ``error_kind``. ``done`` maps lesion IDs to rows already extracted (resuming); ``on_row(row)`` is
    called with each newly extracted row. Each lesion is prepared (resampled) in a second thread while pyradiomics
    computes the one before."""
    done = done or {}
    todo = [lesion for lesion in lesions if lesion.lesion_id not in done]
    prepared = execution.one_ahead(lambda lesion: extractor.prepare(image, lesion.mask, lesion.lesion_id), todo)
    rows = []
    with contextlib.closing(prepared):
        for number, lesion in enumerate(lesions):
            _check(cancelled)
            if progress:
                progress(number, len(lesions), f"{meta.get('patient_id', '')} {lesion.lesion_id}")
            if lesion.lesion_id in done:
                rows.append(dict(done[lesion.lesion_id], **meta))
                continue
            row = dict(meta, lesion_id=lesion.lesion_id, location=lesion.location, error="", error_kind="")
            try:
                row.update(extractor.features(next(prepared).result()))
            except CTTimeError as exc:
                row.update(error=str(exc), error_kind=exc.kind)
            except Exception as exc:  # never lose the other lesions to one lesion's unexpected failure
                row.update(error=f"Lesion {lesion.lesion_id}: unexpected {type(exc).__name__}: {exc}",
                           error_kind="unexpected")
            if on_row:
                on_row(row)
            rows.append(row)
    if progress:
        progress(len(lesions), len(lesions), "done")
    return rows


def read_case(case):
    """The image and lesions of a case (the last case read is kept, so writing its outputs reads nothing again)."""
    stamps = tuple(_stamp(path) for path in (case.image, case.segmentation))
    return _read_case(case.image, case.segmentation, tuple(case.names.items()), tuple(case.locations.items()), stamps)


def _stamp(path):
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


@functools.lru_cache(maxsize=1)
def _read_case(image_path, segmentation_path, names, locations, stamps):
    image = read_image(image_path)
    return image, read_lesions(segmentation_path, image, dict(names), dict(locations))


def case_meta(case):
    """The columns every row of a case shares: manifest extras, patient, time point, input paths."""
    return dict(case.extras, patient_id=case.patient_id, timepoint=case.timepoint,
                image=str(Path(case.image).absolute()), segmentation=str(Path(case.segmentation).absolute()))


def extract_case(case, extractor, progress=None, cancelled=None, done=None, on_row=None):
    """Raw feature rows of a case, with its acquisition parameters when the image has DICOM headers; a case that
    cannot be read gives one row that carries the error. ``done`` and ``on_row``: see ``extract_lesions``."""
    meta = case_meta(case)
    try:
        image, lesions = read_case(case)
    except CTTimeError as exc:
        return [dict(meta, lesion_id="", location="", error=str(exc), error_kind=exc.kind)]
    meta.update(acquisition.describe(case.image))
    return extract_lesions(image, lesions, extractor, meta, progress, cancelled, done, on_row)


def resolve_standardization(spec, model):
    """``"cohort"`` stays as it is; anything else is a reference file, loaded and checked for ``model``."""
    if spec == COHORT:
        return COHORT
    return standardization.load(spec, model.features, model.name)


def score_table(table, model, standardize=COHORT, group_by=(), harmonize_by=None):
    """Add z-scores, CT-TIME score, status and the standardisation used to a table of raw feature rows
    (ComBat-harmonised across the ``harmonize_by`` column first, when given)."""
    table = table.copy()
    if "error" not in table:
        table["error"] = ""
    table["error"] = table["error"].fillna("").astype(str)
    table["error_kind"] = table["error_kind"].fillna("").astype(str) if "error_kind" in table else ""
    missing = [name for name in model.features if name not in table.columns]
    if missing and (table["error"] == "").any():
        raise CTTimeError(f"The lesions table has no column {', '.join(missing)}: the model needs its four "
                          "features, as pyradiomics names them.", "input")
    for name in missing:  # every row failed before extraction: the rows still carry their errors
        table[name] = np.nan
    features = table[model.features].apply(pd.to_numeric, errors="coerce")
    scorable = (table["error"] == "") & np.isfinite(features).all(axis=1)
    for index in table.index[(table["error"] == "") & ~scorable]:
        bad = [name for name in model.features if not np.isfinite(features.at[index, name])]
        table.at[index, "error"] = (f"Lesion {table.at[index, 'lesion_id'] if 'lesion_id' in table else index}: "
                                    f"signature feature(s) {', '.join(bad)} missing, NaN or infinite; extract the "
                                    "lesion again or correct its row.")
        table.at[index, "error_kind"] = "features"
    prefix = ""
    if harmonize_by:
        features = harmonization.harmonize(table, features, table.index[scorable], harmonize_by)
        prefix = harmonization.describe(harmonize_by) + ", then "
    for name in model.features:
        table[f"z_{name}"] = np.nan
    table["standardization"] = ""
    groups = [((), table.index[scorable])] if standardize != COHORT or not group_by else \
        list(table[scorable].groupby(list(group_by), sort=False).groups.items())
    for label, index in groups:
        if standardize == COHORT:
            source = "all scored lesions" if not group_by else ", ".join(
                f"{k}={v}" for k, v in zip(group_by, label if isinstance(label, tuple) else (label,)))
            try:
                reference = standardization.from_lesions(features.loc[index], model.features, source, mode=COHORT)
            except CTTimeError as exc:
                raise CTTimeError(_with_failures(str(exc), table), exc.kind) from None
        else:
            reference = standardize
        z = reference.standardize(features.loc[index], model.features)
        table.loc[index, z.columns] = z
        table.loc[index, "standardization"] = prefix + reference.describe()
    scores = model.score(table.loc[scorable, [f"z_{n}" for n in model.features]])
    table["ct_time_score"] = np.nan
    table.loc[scorable, "ct_time_score"] = scores
    table["ct_time_status"] = model.status(table["ct_time_score"])
    if DIAMETER_FEATURE in table:
        diameter = pd.to_numeric(table[DIAMETER_FEATURE], errors="coerce")
        table["longest_axial_diameter_mm"] = diameter
        table["recist_measurable"] = (diameter >= RECIST_MIN_DIAMETER_MM).where(diameter.notna())
    return table


def _with_failures(message, table, shown=5):
    """A message followed by why the failed rows failed (they are why too few lesions are left)."""
    failed = table[table["error"] != ""]
    lines = [f"{row.get('patient_id', '')} {row.get('timepoint', '')} {row.get('lesion_id') or '(study)'}: "
             f"{row['error']}" for row in failed.head(shown).to_dict("records")]
    more = [f"... and {len(failed) - shown} more"] if len(failed) > shown else []
    return message + "".join(f"\n  failed: {line}" for line in lines + more)


def _run_record(options, model, reference_text, warnings, extractor=None):
    record = {
        "tool": "CTTime", "tool_version": __version__, "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(), "model": model.name, "model_file": model.path,
        "model_sha256": cache.digest(model.path), "standardization": reference_text, "warnings": warnings,
        "provenance": model.provenance}
    if options.harmonize_by:
        record["harmonization"] = harmonization.record(options.harmonize_by)
    if extractor is not None:
        record.update(parameter_file=extractor.parameter_file,
                      parameter_file_sha256=cache.digest(extractor.parameter_file),
                      parameter_file_is_fixed=extractor.is_fixed, pyradiomics_version=extractor.pyradiomics_version)
    return record


def result_tables(scored, model, extractor=None):
    """The lesions.csv and patients.csv frames of a scored table, and the warnings every output repeats."""
    feature_names = extractor.feature_names if extractor else [c for c in scored if c.startswith(FEATURE_PREFIX)]
    if extractor is not None and extractor.warning:
        scored = scored.assign(warning=extractor.warning)  # repeated in every row, and kept by a rescore
    lesions = outputs.order_lesion_columns(scored, feature_names, model.features)
    lesions["warning"] = lesions["warning"].fillna("").astype(str)
    patients = aggregation.summarize(lesions, model.threshold)
    warnings = sorted(set(lesions["warning"]) - {""}) + sorted(
        {text.split(" - ", 1)[1] for text in lesions["standardization"] if " - " in text})
    return lesions, patients, warnings


def run_summary(lesions, **extra):
    """Lesions ok and failed, failures by kind of error, studies flagged by the acquisition check."""
    failed = lesions[lesions["error"] != ""]
    kinds = failed["error_kind"].replace("", "other") if "error_kind" in failed else pd.Series("other", failed.index)
    summary = dict(extra, lesions=len(lesions), ok=len(lesions) - len(failed), failed=len(failed),
                   failed_by_kind={str(k): int(n) for k, n in kinds.value_counts().sort_index().items()})
    if "acquisition_warning" in lesions:
        flagged = lesions[lesions["acquisition_warning"].fillna("").astype(str) != ""]
        summary["studies_outside_training_domain"] = sorted(
            f"{p} {t}: {w}" for p, t, w in flagged[["patient_id", "timepoint", "acquisition_warning"]]
            .drop_duplicates().itertuples(index=False))
    return summary


_SEGMENT_COLUMNS = ("lesion_id", "ct_time_score", "ct_time_status", "standardization", "error")


def write_case_segmentation(item):
    """Write one case's coloured .seg.nrrd (``item``: case, path, lesion rows, model name); its path, or None
    when the case cannot be read (its row already carries the error)."""
    case, path, rows, model_name = item
    try:
        image, case_lesions = read_case(case)
    except CTTimeError:
        return None
    outputs.write_colored_segmentation(path, image, case_lesions, {r["lesion_id"]: r for r in rows}, model_name)
    return path


def _finish(scored, out_dir, options, model, extractor, cases, runner=None, **stats):
    """Write lesions.csv, patients.csv, run.json and (with cases) the coloured segmentations."""
    out_dir = Path(out_dir)
    lesions, patients, warnings = result_tables(scored, model, extractor)
    summary = run_summary(lesions, **stats)
    files = [out_dir / "lesions.csv", out_dir / "patients.csv", out_dir / "run.json"]
    outputs.write_table(lesions, files[0])
    outputs.write_table(patients, files[1])
    record = _run_record(options, model, sorted(set(lesions["standardization"]) - {""}), warnings, extractor)
    outputs.write_text(files[2], json.dumps(dict(record, summary=summary), indent=2))
    columns = [c for c in _SEGMENT_COLUMNS if c in lesions]
    items = [(case, out_dir / f"{case.key}_cttime.seg.nrrd", lesions.loc[
        (lesions["patient_id"] == case.patient_id) & (lesions["timepoint"] == case.timepoint), columns]
        .to_dict("records"), model.name) for case in (cases if options.write_segmentations else ())]
    written = sorted((index, path) for index, path, error in (runner or execution.Runner()).run(
        write_case_segmentation, items) if path is not None)
    files += [path for _, path in written]
    return RunResult(lesions, patients, out_dir, files, warnings, summary)


def _extract_all(cases, out_dir, options, extractor, runner, progress, cancelled, emit):
    """Raw rows of every case, in case order (whatever the workers), and how many cases the cache answered."""
    context = cache.run_context(options.parameter_file, options.model_file, extractor.pyradiomics_version) \
        if options.cache else None
    settings = execution.Settings(extractor.parameter_file, str(out_dir / "cache") if options.cache else None, context)
    execution.use_extractor(extractor)
    per_case, n_cached = [None] * len(cases), 0
    inline = runner.in_this_process(len(cases))  # a cancel callback cannot travel to other processes
    tasks = runner.run(functools.partial(execution.process_case, settings=settings,
                                         cancelled=cancelled if inline else None), cases, cancelled)
    for done, (index, result, error) in enumerate(tasks, start=1):
        case = cases[index]
        if error is not None:  # the worker itself failed (killed, out of memory): the case's row says so
            result = execution.CaseResult([dict(case_meta(case), lesion_id="", location="", error_kind="unexpected",
                                                error=f"{case.patient_id} {case.timepoint}: the worker failed: "
                                                      f"{type(error).__name__}: {error}")], False, 0.0)
        per_case[index] = result.rows
        n_cached += result.cached
        emit({"event": "case", "done": done, "total": len(cases), "patient_id": case.patient_id,
              "timepoint": case.timepoint, "lesions": len(result.rows),
              "failed": sum(bool(row.get("error")) for row in result.rows), "cached": result.cached,
              "seconds": round(result.seconds, 3)})
        if progress:
            progress(done, len(cases), f"{case.patient_id} {case.timepoint}")
    return [row for rows in per_case for row in rows], n_cached


def run(cases, out_dir, options=None, progress=None, cancelled=None, events=None):
    """Score cases end to end and write the run folder.

    Cases are extracted by ``options.workers`` local processes or on the Dask cluster ``options.scheduler``; with
    ``options.cache`` their raw rows are kept in ``<out_dir>/cache``, so a rerun skips finished work.
    ``events(dict)`` receives a "start" event, one "case" event per case and a closing "summary" event.
    """
    options = options or Options()
    emit = events or (lambda event: None)
    model = load_model(options.model_file)
    standardize = resolve_standardization(options.standardize, model)
    extractor = FeatureExtractor(options.parameter_file)
    out_dir = Path(out_dir).absolute()
    started = time.perf_counter()
    cases = [execution.absolute(case) for case in cases]
    emit({"event": "start", "cases": len(cases), "workers": options.workers, "scheduler": options.scheduler})
    with execution.Runner(options.workers, options.scheduler) as runner:
        rows, n_cached = _extract_all(cases, out_dir, options, extractor, runner, progress, cancelled, emit)
        unreadable = [row for row in rows if not row.get("lesion_id") and row.get("error")]
        if options.strict and unreadable:
            raise CTTimeError(unreadable[0]["error"], unreadable[0].get("error_kind") or "input")
        seconds = round(time.perf_counter() - started, 3)
        if progress:
            progress(len(cases), len(cases), "scoring")
        scored = score_table(pd.DataFrame(rows), model, standardize, options.group_by, options.harmonize_by)
        result = _finish(scored, out_dir, options, model, extractor, cases, runner, studies=len(cases),
                         studies_from_cache=n_cached, extraction_seconds=seconds)
    emit(dict(result.summary, event="summary"))
    return result


def rescore(table, out_dir, options=None):
    """Score an existing lesions table again (another reference or model) without re-extracting."""
    options = options or Options()
    model = load_model(options.model_file)
    for column in ("patient_id", "timepoint", "lesion_id"):
        if column not in table:
            raise CTTimeError(f"The lesions table has no {column!r} column (needs patient_id, timepoint, lesion_id "
                              "and the signature's features).", "input")
    twice = table[table.duplicated(["patient_id", "timepoint", "lesion_id"], keep="first")]
    if len(twice):
        listed = ", ".join(f"{r.patient_id} {r.timepoint} {r.lesion_id}" for r in twice.head(5).itertuples())
        raise CTTimeError(f"The lesions table lists {len(twice)} lesion(s) more than once ({listed}); keep one row per "
                          "patient, time point and lesion ID (rename the lesion or drop the repeated row).", "input")
    keep = [c for c in table.columns if not c.startswith("z_") and c not in (
        "ct_time_score", "ct_time_status", "standardization", "longest_axial_diameter_mm", "recist_measurable")]
    table = table[keep].copy()
    if "location" not in table:
        from .inputs import infer_location
        table["location"] = table["lesion_id"].map(infer_location)
    errors = table["error"].fillna("").astype(str) if "error" in table else ""
    table["error"] = errors
    scored = score_table(table, model, resolve_standardization(options.standardize, model), options.group_by,
                         options.harmonize_by)
    return _finish(scored, out_dir, options, model, None, [])
