"""Pipeline: the one code path from cases to a run folder, shared by the CLI, the Slicer module and batch scripts.

    run        cases -> lesions.csv, patients.csv, coloured .seg.nrrd files, run.json
    rescore    an existing lesions table -> the same outputs without re-extraction

Long work reports ``progress(done, total, message)`` and stops when ``cancelled()`` returns True. ``run`` hands
each case to ``execution`` (this process, local processes or a Dask cluster) and keeps raw results in the
output folder's ``cache`` (see ``cache``), so an interrupted run resumes where it stopped.
"""

import dataclasses
import datetime
import functools
import platform
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..core.errors import CTTimeError
from ..core.files import digest
from ..core.imports import Deferred, preload
from ..core.lesions import infer_location, is_proposed, join_warnings, split_warnings
from ..core.resources import MODEL_FILE, PARAMETER_FILE
from ..core.text import control_characters
from ..io.colored_segmentation import write_colored_segmentation, write_lesion_segmentation
from ..io.images import read_image, voxel_limit
from ..io.marks import read_marks
from ..scoring import acquisition, aggregation, harmonization, reference_interval, robustness, soft_tissue
from ..scoring.extraction import ALL, FEATURE_PREFIX, parameter_warnings_in
from ..scoring.extractors import make_extractor
from ..scoring.lesion_scores import check_group_by, resolve_standardization, score_table
from ..scoring.signature import load_model
from ..scoring.standardization import COHORT
from . import cache, execution, run_folder, study
from .proposals import propose_lesions
from .study import Case
from .summary import run_summary

pd = Deferred("pandas")  # imported when first used: the `cttime` command starts without it

__all__ = ["Case", "Options", "RunResult", "result_tables", "run", "run_warnings", "rescore"]


@dataclass
class Options:
    """What a run needs besides its cases: how to standardise, and which model and parameter file."""

    standardize: str = COHORT  # "cohort", or the path of a reference JSON
    group_by: tuple = ()  # cohort mode: z-score within groups of these columns (e.g. ("timepoint",))
    harmonize_by: str = None  # ComBat-correct the features across this column (e.g. "batch") before z-scoring
    model_file: str = str(MODEL_FILE)
    parameter_file: str = str(PARAMETER_FILE)
    features: str = ALL  # "all": pyradiomics' 107 (CTTime's engine where pyradiomics is missing); "signature": engine
    write_segmentations: bool = True
    workers: int = 1  # local processes extracting cases in parallel (1: in this process)
    scheduler: str = None  # tcp://host:port of a Dask scheduler: extract on that cluster instead
    cache: bool = True  # keep raw results in <out>/cache and reuse them (resume)
    strict: bool = False  # a study that cannot be read stops the run (bad input) instead of becoming an error row
    perturbations: int = None  # perturbed delineations per lesion (0: no interval; None: the extractor's default)
    max_voxels: int = None  # the largest image or segmentation read (None: io.images.voxel_limit's default)


@dataclass
class RunResult:
    lesions: "pd.DataFrame"
    patients: "pd.DataFrame"
    out_dir: Path
    files: list
    warnings: list
    summary: dict = field(default_factory=dict)
    leftovers: list = field(default_factory=list)  # an earlier run's study files, moved to superseded/ (run_folder)
    notes: list = field(default_factory=list)  # said once, e.g. that the engine stood in for pyradiomics

    @property
    def n_failed(self):
        return int((self.lesions["error"].fillna("") != "").sum())


def _run_record(options, model, reference_text, warnings, extractor=None, notes=()):
    record = {
        run_folder.RUN_ID: uuid.uuid4().hex,
        "tool": "CTTime", "tool_version": __version__, "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(), "model": model.name, "model_file": model.path,
        "model_sha256": cache.digest(model.path), "standardization": reference_text, "warnings": warnings,
        "provenance": model.provenance}
    if options.harmonize_by:
        record["harmonization"] = harmonization.record(options.harmonize_by)
    record["robustness"] = dict(robustness.settings(), perturbations=options.perturbations)
    record["reference_interval"] = reference_interval.settings()
    if extractor is not None:
        record.update(parameter_file=extractor.parameter_file,
                      parameter_file_sha256=digest(extractor.parameter_file),
                      parameter_file_is_fixed=extractor.is_fixed, features=extractor.feature_set,
                      extractor=extractor.identity, pyradiomics_version=extractor.pyradiomics_version)
    if notes:
        record["notes"] = list(notes)
    return record


def result_tables(scored, model, extractor=None):
    """The lesions.csv and patients.csv frames of a scored table, and the run's warnings (those every output
    repeats: parameter file, standardisation). A lesion's ``warning`` cell holds every warning that applies to it:
    the run's, its study's acquisition outside the training domain, its soft-tissue share, its signature features
    outside the reference, its proposal's."""
    feature_names = extractor.columns if extractor else [c for c in scored if c.startswith(FEATURE_PREFIX)]
    if extractor is not None:
        warnings = [extractor.warning] if extractor.warning else []
    else:  # a rescore keeps the parameter-file warning of the run it rescores
        warnings = parameter_warnings_in(scored["warning"]) if "warning" in scored else []
    lesions = run_folder.order_lesion_columns(scored, feature_names, model.features)
    standardization = [text.split(" - ", 1)[1] if " - " in text else "" for text in
                       lesions["standardization"].fillna("").astype(str)]
    parameters = extractor.parameters if extractor is not None else None
    acquisition_warnings = lesions.get("acquisition_warning", pd.Series("", index=lesions.index))
    outside = [reference_interval.outside_warning(row["lesion_id"], row, model.features)
               for row in lesions.to_dict("records")]
    lesions["warning"] = [
        join_warnings(warnings + [reference, acquisition.warning_text(acquired),
                                  soft_tissue.share_warning(lesion_id, share, parameters), beyond]
                      + split_warnings(proposal))
        for lesion_id, reference, acquired, share, beyond, proposal in zip(
            lesions["lesion_id"], standardization, acquisition_warnings, lesions[soft_tissue.COLUMN], outside,
            lesions["delineation_warning"])]
    patients = aggregation.summarize(lesions, model.threshold, scored.get(reference_interval.DRAW_SCORES))
    return lesions, patients, warnings + sorted(set(standardization) - {""})


def run_warnings(lesions):
    """Every warning of these lesions.csv rows, each once: their warning cells (parameter file, standardisation,
    acquisition, soft-tissue share...) and what their standardisation says after " - " (NOT CLINICALLY
    CALIBRATED...)."""
    texts = [part for cell in lesions["warning"] for part in split_warnings(cell)] + sorted(
        {text.split(" - ", 1)[1] for text in lesions["standardization"].fillna("").astype(str) if " - " in text})
    return list(dict.fromkeys(texts))


_SEGMENT_COLUMNS = ("lesion_id", "ct_time_score", "ct_time_status", "ct_time_score_low", "ct_time_score_high",
                    "ct_time_status_robust", "standardization", "error")


def write_case_segmentation(item):
    """Write one case's coloured .seg.nrrd (``item``: case, path, lesion rows, model name, voxel limit); its path,
    or None when the case cannot be read (its row already carries the error)."""
    case, path, rows, model_name, max_voxels = item
    try:
        image, case_lesions = study.read_case(case, max_voxels)
    except CTTimeError:
        return None
    write_colored_segmentation(path, image, case_lesions, {r["lesion_id"]: r for r in rows}, model_name)
    return path


def _finish(scored, out_dir, options, model, extractor, cases, runner=None, notes=(), run_notes=(), **stats):
    """Write the coloured segmentations (with cases), then lesions.csv, patients.csv, perturbations.csv and
    run.json together, so a run that cannot finish writing leaves the earlier tables as they were; ``notes``:
    warnings besides those of the scored table; ``run_notes``: what the run says once (run.json ``notes``)."""
    out_dir = Path(out_dir)
    lesions, patients, warnings = result_tables(scored, model, extractor)
    warnings = warnings + list(notes)
    summary = run_summary(lesions, **stats)
    columns = [c for c in _SEGMENT_COLUMNS if c in lesions]
    items = [(case, run_folder.segmentation_path(out_dir, case.patient_id, case.timepoint), lesions.loc[
        (lesions["patient_id"] == case.patient_id) & (lesions["timepoint"] == case.timepoint), columns]
        .to_dict("records"), model.name, options.max_voxels) for case in (cases if options.write_segmentations else ())]
    written = []
    for index, path, error in (runner or execution.Runner()).run(write_case_segmentation, items):
        if isinstance(error, CTTimeError) and error.kind == "output":
            raise error
        if path is not None:
            written.append((index, path))
    segmentations = [path for _, path in sorted(written)]
    leftovers = run_folder.leftovers(out_dir, segmentations)
    record = _run_record(options, model, sorted(set(lesions["standardization"]) - {""}), warnings, extractor,
                         run_notes)
    proposed = int(sum(is_proposed(value) for value in lesions["delineation"]))
    if proposed:
        from ..delineation import ALGORITHM_NAME, ALGORITHM_VERSION

        record["delineation"] = {"proposed_lesions": proposed, "algorithm": ALGORITHM_NAME,
                                 "algorithm_version": ALGORITHM_VERSION}
    names = [run_folder.LESIONS_CSV, run_folder.PATIENTS_CSV, run_folder.RUN_JSON] + [p.name for p in segmentations]
    perturbations = robustness.perturbations_table(scored, model.features)
    if len(perturbations):
        names.append(run_folder.PERTURBATIONS_CSV)
    files = run_folder.write_results(out_dir, lesions, patients,
                                     dict(record, summary=summary, files=names, leftovers=leftovers), perturbations)
    run_folder.set_aside(out_dir, leftovers)
    return RunResult(lesions, patients, out_dir, files + segmentations, warnings, summary, leftovers,
                     list(run_notes))


def _check_cases(cases):
    """Refuse, before any extraction, cases that cannot keep their identity (control characters in an ID or a
    carried value, carried columns named like computed ones, studies whose file names would coincide)."""
    problems = []
    for case in cases:
        texts = [("patient ID", case.patient_id), ("time point", case.timepoint)] + [
            (f"column {k!r}", v) for k, v in case.extras.items()] + [("column name", k) for k in case.extras] + [
            ("lesion ID", v) for v in case.names.values()] + [("lesion ID", k) for k in case.locations]
        for what, value in texts:
            if control_characters(value):
                problems.append(f"{case.patient_id!r} {case.timepoint!r}: {what} {value!r} holds the control "
                                f"character(s) {' '.join(control_characters(value))}")
    reserved = sorted({name for case in cases for name in run_folder.output_columns(case.extras)})
    if reserved:
        problems.append(f"carried column(s) named like columns CTTime computes: {', '.join(reserved)}; rename them")
    if problems:
        raise CTTimeError(f"{len(problems)} problem(s) with the studies to score:\n  " + "\n  ".join(problems),
                          "input")
    run_folder.check_study_keys((case.patient_id, case.timepoint) for case in cases)


def _extract_all(cases, out_dir, options, extractor, runner, progress, cancelled, emit):
    """Raw rows of every case, in case order (whatever the workers), and how many cases the cache answered."""
    context = cache.run_context(options.parameter_file, options.model_file, extractor.identity) \
        if options.cache else None
    cache_dir = str(out_dir / run_folder.CACHE_DIR) if options.cache else None
    settings = study.Settings(extractor.parameter_file, cache_dir, context, options.max_voxels, options.perturbations,
                              tuple(load_model(options.model_file).features), extractor.feature_set)
    study.use_extractor(extractor)
    per_case, n_cached = [None] * len(cases), 0
    inline = runner.in_this_process(len(cases))  # a cancel callback cannot travel to other processes
    tasks = runner.run(functools.partial(study.process_case, settings=settings,
                                         cancelled=cancelled if inline else None), cases, cancelled,
                       threads=2 if extractor.thread_safe else 1)
    for done, (index, result, error) in enumerate(tasks, start=1):
        case = cases[index]
        if isinstance(error, CTTimeError) and error.kind == "output":  # the output folder cannot be written
            raise error
        if error is not None:  # the worker itself failed (killed, out of memory): the case's row says so
            result = study.CaseResult([_worker_failure(case, error)], False, 0.0)
        per_case[index] = result.rows
        n_cached += result.cached
        emit({"event": "case", "done": done, "total": len(cases), "patient_id": case.patient_id,
              "timepoint": case.timepoint, "lesions": len(result.rows),
              "failed": sum(bool(row.get("error")) for row in result.rows), "cached": result.cached,
              "seconds": round(result.seconds, 3)})
        if progress:
            progress(done, len(cases), f"{case.patient_id} {case.timepoint}")
    return [row for rows in per_case for row in rows], n_cached


def _worker_failure(case, error):
    """The row of a case whose worker process failed (died twice, ran out of memory, could not start)."""
    died = isinstance(error, execution.WorkerDied)
    text = (f"{case.patient_id} {case.timepoint}: the worker process extracting this study died twice (killed, out "
            "of memory or crashed); check the memory available, or score it alone with --workers 1 to see why"
            if died else f"{case.patient_id} {case.timepoint}: the worker failed: {type(error).__name__}: {error}")
    return dict(study.case_meta(case), lesion_id="", location="", error_kind="worker" if died else "unexpected",
                error=text)


def run(cases, out_dir, options=None, progress=None, cancelled=None, events=None):
    """Score cases end to end and write the run folder.

    Cases are extracted by ``options.workers`` local processes or on the Dask cluster ``options.scheduler``; with
    ``options.cache`` their raw rows are kept in ``<out_dir>/cache``, so a rerun skips finished work.
    ``events(dict)`` receives a "start" event, one "case" event per case and a closing "summary" event.
    """
    preload("pandas")  # the tables need it; its import overlaps loading the model and reading the first CT
    options = options or Options()
    emit = events or (lambda event: None)
    model = load_model(options.model_file)
    standardize = resolve_standardization(options.standardize, model)
    voxel_limit(options.max_voxels)
    known = list(dict.fromkeys([*run_folder.LESION_KEYS, "image", "segmentation", *acquisition.COLUMNS,
                                *(key for case in cases for key in case.extras)]))
    check_group_by(options.group_by, standardize, known)  # before extraction; score_table checks the real table
    if options.harmonize_by and options.harmonize_by not in known:
        raise CTTimeError(f"--harmonize {options.harmonize_by}: no study has such a column; harmonise across one of "
                          f"{', '.join(k for k in known if k not in run_folder.LESION_KEYS)} (e.g. a manifest column "
                          "batch).", "input")
    _check_cases(cases)
    extractor, note = make_extractor(options.features, options.parameter_file)
    if options.perturbations is None:
        options = dataclasses.replace(options, perturbations=robustness.default_perturbations(extractor.feature_set))
    run_notes = [note] if note else []
    started = time.perf_counter()
    cases = [study.absolute(case) for case in cases]
    if options.strict:  # bad input is refused before a folder is made or progress shown (the read is kept)
        for case in cases:
            study.read_case(case, options.max_voxels)
    with run_folder.claim(out_dir) as out_dir, execution.Runner(options.workers, options.scheduler) as runner:
        emit({"event": "start", "cases": len(cases), "workers": options.workers, "scheduler": options.scheduler,
              "extractor": extractor.identity})
        rows, n_cached = _extract_all(cases, out_dir, options, extractor, runner, progress, cancelled, emit)
        unreadable = [row for row in rows if not row.get("lesion_id") and row.get("error")]
        if options.strict and unreadable:
            raise CTTimeError(unreadable[0]["error"], unreadable[0].get("error_kind") or "input")
        seconds = round(time.perf_counter() - started, 3)
        if progress:
            progress(len(cases), len(cases), "scoring")
        scored = score_table(pd.DataFrame(rows), model, standardize, options.group_by, options.harmonize_by,
                             extractor.features_by)
        result = _finish(scored, out_dir, options, model, extractor, cases, runner, run_notes=run_notes,
                         studies=len(cases), studies_from_cache=n_cached, extraction_seconds=seconds)
    emit(dict(result.summary, event="summary"))
    return result


def rescore(table, out_dir, options=None, perturbations=None):
    """Score an existing lesions table again (another reference or model) without re-extracting.
    ``perturbations``: the perturbations.csv table of the run that wrote ``table``, for the score intervals;
    without it they are left empty (with a warning when ``table`` had intervals)."""
    options = options or Options()
    model = load_model(options.model_file)
    for column in ("patient_id", "timepoint", "lesion_id"):
        if column not in table:
            raise CTTimeError(f"The lesions table has no {column!r} column (needs patient_id, timepoint, lesion_id "
                              "and the signature's features).", "input")
    if table.empty:
        raise CTTimeError("The lesions table has no rows (a header only); give the lesions.csv of a run.", "input")
    hostile = [f"{r.patient_id!r} {r.timepoint!r} {r.lesion_id!r}" for r in table.itertuples()
               if any(control_characters(text) for text in (r.patient_id, r.timepoint, r.lesion_id))]
    if hostile:
        raise CTTimeError(f"The lesions table has {len(hostile)} row(s) whose IDs hold control characters "
                          f"({', '.join(hostile[:5])}); remove them from the IDs.", "input")
    twice = table[table.duplicated(["patient_id", "timepoint", "lesion_id"], keep="first")]
    if len(twice):
        listed = ", ".join(f"{r.patient_id} {r.timepoint} {r.lesion_id}" for r in twice.head(5).itertuples())
        raise CTTimeError(f"The lesions table lists {len(twice)} lesion(s) more than once ({listed}); keep one row per "
                          "patient, time point and lesion ID (rename the lesion or drop the repeated row).", "input")
    keep = [c for c in table.columns if not c.startswith("z_") and c not in (
        "ct_time_score", "ct_time_status", "standardization", "longest_axial_diameter_mm", "recist_measurable",
        *robustness.COLUMNS, *reference_interval.COLUMNS)]
    had_intervals = "ct_time_perturbations" in table and bool(
        (pd.to_numeric(table["ct_time_perturbations"], errors="coerce").fillna(0) > 0).any())
    table = table[keep].copy()
    notes = []
    if perturbations is not None:
        table = robustness.attach(table, perturbations, model.features)
    elif had_intervals:
        notes.append(f"the lesions table comes without its {run_folder.PERTURBATIONS_CSV}: score intervals "
                     "(ct_time_score_low/high, ct_time_status_robust) are left empty")
    counts = [len(p) for p in table.get(robustness.PERTURBED, pd.Series(dtype=object)) if isinstance(p, list)]
    options = dataclasses.replace(options, perturbations=max(counts, default=0))
    if "location" not in table:
        table["location"] = table["lesion_id"].map(infer_location)
    errors = table["error"].fillna("").astype(str) if "error" in table else ""
    table["error"] = errors
    scored = score_table(table, model, resolve_standardization(options.standardize, model), options.group_by,
                         options.harmonize_by)
    with run_folder.claim(out_dir) as out_dir:
        return _finish(scored, out_dir, options, model, None, [], notes=notes)


def delineate(image_path, marks_path, patient_id, timepoint, out_dir, max_voxels=None):
    """``cttime delineate``: propose a lesion from each mark and write them, one segment per mark named by it, to
    ``<patient>_<timepoint>_proposed.seg.nrrd`` in ``out_dir``; (its path, the proposed lesions)."""
    run_folder.check_study_keys([(patient_id, timepoint)])
    image = read_image(image_path, max_voxels)
    lesions = propose_lesions(image, read_marks(marks_path, image, image_path))
    with run_folder.claim(out_dir) as folder:
        path = run_folder.proposed_segmentation_path(folder, patient_id, timepoint)
        write_lesion_segmentation(path, image, lesions)
    return path, lesions
