"""DICOM results of a run: for each study whose CT is a DICOM series, its DICOM SEG and SR (``io.dicom_export``)
from its lesions.csv and patients.csv rows and its lesion masks as CTTime scored them.

    write_study(out_dir, ct_source, image, lesions, rows, patient_row, record)   one study (CLI and Slicer)
    export_run(run_dir, cases=())   every study of a run folder; a study that cannot have DICOM gets a message
"""

from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..core.errors import CTTimeError
from ..core.imports import Deferred
from ..core.lesions import MANUAL, is_proposed
from ..core.timepoints import is_baseline
from ..io import dicom_export
from ..io.dicom import image_header
from ..io.tables import read_csv
from ..scoring.aggregation import AGGREGATES, PATIENT_KEYS, VOLUME
from ..scoring.signature import INFLAMED
from ..scoring.standardization import Z_PREFIX
from . import run_folder, study
from .pipeline import run_warnings

pd = Deferred("pandas")  # imported when first used: the `cttime` command starts without it

TEXT_COLUMNS = ("patient_id", "timepoint", "lesion_id", "location", "image", "segmentation", "marks", "ct_time_status",
                "standardization", "warning", "error", "acquisition_warning", "heterogeneity", "delineation",
                "delineation_warning") + tuple(
                    f"status_{name}" for name in AGGREGATES)
_TRUE, _FALSE = ("true", "yes", "1", "1.0", "robust"), ("false", "no", "0", "0.0", "not robust")


@dataclass
class DicomExport:
    files: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # "<patient> <time point>: why no DICOM was written"


def _number(value):
    return float(value) if dicom_export.findings.is_finite(value) else None


def _flag(value):
    """A yes/no cell (bool, 1/0, "True"/"False", ...) as True/False; None when empty or unknown."""
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _comment(record):
    provenance = record.get("provenance") or {}
    cited = f" of {provenance['paper']} (doi:{provenance['doi']})" if provenance.get("paper") else ""
    model = f"; model {record['model']}" if record.get("model") else ""
    checksum = f", sha256 {record['model_sha256']}" if record.get("model_sha256") else ""
    run = f", run {record[run_folder.RUN_ID]} (run.json)" if record.get(run_folder.RUN_ID) else ""
    return (f"Research use only. CT-TIME score: the probability that the tumour immune microenvironment is T-cell "
            f"inflamed (> 0.5: inflamed), from the published model{cited}. Written by CTTime "
            f"{record.get('tool_version') or __version__}{model}{checksum}{run}.")


def findings_of(rows, patient_row, lesions, record):
    """``StudyFindings`` of a study from its lesions.csv rows, its patients.csv row (dict) and its lesions (masks
    on the CT's grid). Each row must have its lesion; the rows' locations are the ones scored."""
    from ..delineation import ALGORITHM_NAME, ALGORITHM_VERSION  # numpy and scipy: not on the scoring path

    masks = {lesion.lesion_id: lesion.mask for lesion in lesions}
    features = [column[len(Z_PREFIX):] for column in rows.columns if column.startswith(Z_PREFIX)]
    found = []
    for row in rows.to_dict("records"):
        if row["lesion_id"] not in masks:
            raise CTTimeError(f"lesion {row['lesion_id']} of lesions.csv is not in its segmentation as read again",
                              "input")
        score = _number(row.get("ct_time_score"))
        low, high = _number(row.get("ct_time_score_low")), _number(row.get("ct_time_score_high"))
        ref_low, ref_high = _number(row.get("ct_time_score_ref_low")), _number(row.get("ct_time_score_ref_high"))
        found.append(dicom_export.LesionFinding(
            lesion_id=row["lesion_id"], location=row.get("location") or "other", mask=masks[row["lesion_id"]],
            score=score, inflamed=row.get("ct_time_status") == INFLAMED if score is not None else None,
            features={name: float(row[name]) for name in features if _number(row.get(name)) is not None},
            volume_mm3=_number(row.get(VOLUME)), long_axis_mm=_number(row.get("longest_axial_diameter_mm")),
            score_interval=(low, high) if score is not None and low is not None and high is not None else None,
            robust=_flag(row.get("ct_time_status_robust")) if score is not None else None,
            reference_interval=(ref_low, ref_high) if None not in (score, ref_low, ref_high) else None,
            reference_robust=_flag(row.get("ct_time_status_reference_robust")) if score is not None else None,
            outside_reference=_flag(row.get("outside_reference")) if score is not None else None,
            error=str(row.get("error") or ""), delineation=str(row.get("delineation") or MANUAL),
            algorithm=(ALGORITHM_NAME, ALGORITHM_VERSION) if is_proposed(row.get("delineation")) else None))
    first = rows.iloc[0]
    intervals, robust = _reference_of(patient_row)
    acquisition = sorted(set(rows.get("acquisition_warning", pd.Series(dtype=str)).fillna("").astype(str)) - {""})
    return dicom_export.StudyFindings(
        patient_id=str(first["patient_id"]), timepoint=str(first["timepoint"]),
        baseline=is_baseline(first["timepoint"]), lesions=found,
        n_lesions=int(patient_row.get("n_lesions", 0)), n_failed=int(patient_row.get("n_failed", 0)),
        aggregates={name: patient_row.get(f"ct_time_{name}") for name in AGGREGATES + ("sd",)},
        aggregate_inflamed={name: patient_row[f"status_{name}"] == INFLAMED for name in AGGREGATES
                            if patient_row.get(f"status_{name}")},
        aggregate_reference_intervals=intervals, aggregate_reference_robust=robust,
        heterogeneity=str(patient_row.get("heterogeneity") or ""),
        total_volume_mm3=_number(patient_row.get("total_volume_mm3")),
        total_surface_mm2=_number(patient_row.get("total_surface_mm2")),
        standardization=sorted(set(rows["standardization"].fillna("").astype(str)) - {""}),
        warnings=run_warnings(rows) + [f"Acquisition outside CT-TIME's training domain: {text}"
                                       for text in acquisition],
        comment=_comment(record), algorithm=record.get("model") or "CT-TIME",
        algorithm_version=f"CTTime {record.get('tool_version') or __version__}",
        run_id=str(record.get(run_folder.RUN_ID) or ""))


def _reference_of(patient_row):
    """The aggregates' standardisation intervals and reference-robust statuses of a patients.csv row (dict)."""
    intervals, robust = {}, {}
    for name in AGGREGATES:
        low, high = (_number(patient_row.get(f"ct_time_{name}_ref_{end}")) for end in ("low", "high"))
        if low is not None and high is not None:
            intervals[name] = (low, high)
        flag = _flag(patient_row.get(f"status_{name}_reference_robust"))
        if flag is not None:
            robust[name] = flag
    return intervals, robust


def write_study(out_dir, ct_source, image, lesions, rows, patient_row, record=None):
    """Write the DICOM SEG and SR of one study into ``out_dir``; their paths. ``ct_source``: the CT's DICOM series
    folder, file or list of files; ``image`` and ``lesions``: the CT and lesion masks as scored; ``rows``: the
    study's lesions.csv rows (DataFrame); ``patient_row``: its patients.csv row (dict); ``record``: run.json (or
    part of it: tool_version, model, model_sha256, provenance). CTTimeError says why a study cannot have them."""
    record = record or {}
    series = dicom_export.read_ct_series(ct_source, image)
    findings = findings_of(rows.reset_index(drop=True), patient_row, lesions, record)
    seg_path, sr_path = run_folder.dicom_paths(out_dir, findings.patient_id, findings.timepoint)
    return dicom_export.write_dicom(seg_path, sr_path, series, image, findings,
                                    str(record.get("tool_version") or __version__))


def export_run(run_dir, cases=()):
    """The DICOM SEG and SR of every study of a run folder whose CT is a DICOM series. ``cases`` (optional): the
    run's cases, whose lesions are then read as the run read them (labelmap names included); other studies take
    their lesions from the run's coloured .seg.nrrd. A study that cannot have DICOM is listed with the reason. The
    folder is locked while they are written (``run_folder.claim``)."""
    run_dir = Path(run_dir)
    lesions = read_csv(run_dir / run_folder.LESIONS_CSV, "Lesions table", text=TEXT_COLUMNS,
                       hint="Give a folder written by `cttime score` or `cttime cohort`.")
    patients = read_csv(run_dir / run_folder.PATIENTS_CSV, "Patients table", text=TEXT_COLUMNS,
                        hint="Give a folder written by `cttime score` or `cttime cohort`.")
    record = run_folder.read_run_record(run_dir)
    by_study = {(c.patient_id, c.timepoint): c for c in cases}
    result = DicomExport()
    with run_folder.claim(run_dir):  # one writer at a time, as a run
        for (patient_id, timepoint), rows in lesions.groupby(PATIENT_KEYS, sort=False):
            try:
                result.files += _export_study(run_dir, rows, patients, record, by_study.get((patient_id, timepoint)))
            except CTTimeError as exc:
                result.skipped.append(f"{patient_id} {timepoint}: {exc}")
            except Exception as exc:  # never lose the other studies to one study's unexpected failure
                result.skipped.append(f"{patient_id} {timepoint}: unexpected {type(exc).__name__}: {exc}")
    return result


def _export_study(run_dir, rows, patients, record, case):
    first = rows.iloc[0]
    if not first["lesion_id"]:
        raise CTTimeError(f"the study was not scored ({first['error']})", "input")
    ct_source = first["image"]
    if not ct_source or image_header(ct_source) is None:
        raise CTTimeError(f"its CT {ct_source or '(not recorded)'} is not DICOM; DICOM SEG and SR are written only "
                          "for a CT scored from its DICOM series, which they reference", "input")
    image, lesions = study.read_case(case) if case is not None else run_folder.read_study(run_dir, rows)
    patient = patients[(patients["patient_id"] == first["patient_id"]) & (patients["timepoint"] == first["timepoint"])]
    return write_study(run_dir, ct_source, image, lesions, rows, patient.iloc[0].to_dict() if len(patient) else {},
                       record)
