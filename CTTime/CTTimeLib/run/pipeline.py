"""Pipeline: the one code path from cases to a run folder, shared by the CLI, the Slicer module and batch scripts.

    run        cases -> lesions.csv, patients.csv, coloured .seg.nrrd files, run.json
    rescore    an existing lesions table -> the same outputs without re-extraction

Long work reports ``progress(done, total, message)`` and stops when ``cancelled()`` returns True. ``run`` hands
each case to ``execution`` (this process, local processes or a Dask cluster) and keeps raw results in the
output folder's ``cache`` (see ``cache``), so an interrupted run resumes where it stopped.
"""

import datetime
import functools
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import __version__
from ..core.errors import CTTimeError
from ..core.files import digest
from ..core.lesions import infer_location, join_warnings
from ..core.resources import MODEL_FILE, PARAMETER_FILE
from ..io.colored_segmentation import write_colored_segmentation
from ..scoring import acquisition, aggregation, harmonization, soft_tissue
from ..scoring.extraction import FEATURE_PREFIX, FeatureExtractor, parameter_warnings_in
from ..scoring.lesion_scores import check_group_by, resolve_standardization, score_table
from ..scoring.signature import load_model
from ..scoring.standardization import COHORT
from . import cache, execution, run_folder, study
from .study import Case
from .summary import run_summary

__all__ = ["Case", "Options", "RunResult", "result_tables", "run", "rescore"]


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
                      parameter_file_sha256=digest(extractor.parameter_file),
                      parameter_file_is_fixed=extractor.is_fixed, pyradiomics_version=extractor.pyradiomics_version)
    return record


def result_tables(scored, model, extractor=None):
    """The lesions.csv and patients.csv frames of a scored table, and the run's warnings (those every output
    repeats: parameter file, standardisation). A lesion's ``warning`` cell holds every warning that applies to it:
    the run's, its study's acquisition outside the training domain, its soft-tissue share."""
    feature_names = extractor.feature_names if extractor else [c for c in scored if c.startswith(FEATURE_PREFIX)]
    if extractor is not None:
        run_warnings = [extractor.warning] if extractor.warning else []
    else:  # a rescore keeps the parameter-file warning of the run it rescores
        run_warnings = parameter_warnings_in(scored["warning"]) if "warning" in scored else []
    lesions = run_folder.order_lesion_columns(scored, feature_names, model.features)
    standardization = [text.split(" - ", 1)[1] if " - " in text else "" for text in
                       lesions["standardization"].fillna("").astype(str)]
    parameters = extractor.parameters if extractor is not None else None
    acquisition_warnings = lesions.get("acquisition_warning", pd.Series("", index=lesions.index))
    lesions["warning"] = [
        join_warnings(run_warnings + [reference, acquisition.warning_text(acquired),
                                      soft_tissue.share_warning(lesion_id, share, parameters)])
        for lesion_id, reference, acquired, share in zip(lesions["lesion_id"], standardization, acquisition_warnings,
                                                         lesions[soft_tissue.COLUMN])]
    patients = aggregation.summarize(lesions, model.threshold)
    return lesions, patients, run_warnings + sorted(set(standardization) - {""})


_SEGMENT_COLUMNS = ("lesion_id", "ct_time_score", "ct_time_status", "standardization", "error")


def write_case_segmentation(item):
    """Write one case's coloured .seg.nrrd (``item``: case, path, lesion rows, model name); its path, or None
    when the case cannot be read (its row already carries the error)."""
    case, path, rows, model_name = item
    try:
        image, case_lesions = study.read_case(case)
    except CTTimeError:
        return None
    write_colored_segmentation(path, image, case_lesions, {r["lesion_id"]: r for r in rows}, model_name)
    return path


def _finish(scored, out_dir, options, model, extractor, cases, runner=None, **stats):
    """Write lesions.csv, patients.csv, run.json and (with cases) the coloured segmentations."""
    out_dir = Path(out_dir)
    lesions, patients, warnings = result_tables(scored, model, extractor)
    summary = run_summary(lesions, **stats)
    files = run_folder.write_tables(out_dir, lesions, patients)
    record = _run_record(options, model, sorted(set(lesions["standardization"]) - {""}), warnings, extractor)
    files.append(run_folder.write_run_record(out_dir, dict(record, summary=summary)))
    columns = [c for c in _SEGMENT_COLUMNS if c in lesions]
    items = [(case, run_folder.segmentation_path(out_dir, case.patient_id, case.timepoint), lesions.loc[
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
    cache_dir = str(out_dir / run_folder.CACHE_DIR) if options.cache else None
    settings = study.Settings(extractor.parameter_file, cache_dir, context)
    study.use_extractor(extractor)
    per_case, n_cached = [None] * len(cases), 0
    inline = runner.in_this_process(len(cases))  # a cancel callback cannot travel to other processes
    tasks = runner.run(functools.partial(study.process_case, settings=settings,
                                         cancelled=cancelled if inline else None), cases, cancelled)
    for done, (index, result, error) in enumerate(tasks, start=1):
        case = cases[index]
        if error is not None:  # the worker itself failed (killed, out of memory): the case's row says so
            result = study.CaseResult([dict(study.case_meta(case), lesion_id="", location="", error_kind="unexpected",
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
    known = list(dict.fromkeys([*run_folder.LESION_KEYS, "image", "segmentation", *acquisition.COLUMNS,
                                *(key for case in cases for key in case.extras)]))
    check_group_by(options.group_by, standardize, known)  # before extraction; score_table checks the real table
    if options.harmonize_by and options.harmonize_by not in known:
        raise CTTimeError(f"--harmonize {options.harmonize_by}: no study has such a column; harmonise across one of "
                          f"{', '.join(k for k in known if k not in run_folder.LESION_KEYS)} (e.g. a manifest column "
                          "batch).", "input")
    extractor = FeatureExtractor(options.parameter_file)
    out_dir = Path(out_dir).absolute()
    started = time.perf_counter()
    cases = [study.absolute(case) for case in cases]
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
        table["location"] = table["lesion_id"].map(infer_location)
    errors = table["error"].fillna("").astype(str) if "error" in table else ""
    table["error"] = errors
    scored = score_table(table, model, resolve_standardization(options.standardize, model), options.group_by,
                         options.harmonize_by)
    return _finish(scored, out_dir, options, model, None, [])
