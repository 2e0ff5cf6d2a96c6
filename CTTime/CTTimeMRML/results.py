"""Results: scoring studies with the CLI's code, and showing the results on the segments and in a table node."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.lesions import is_proposed
from CTTimeLib.core.tags import robust_text
from CTTimeLib.core.text import check_name
from CTTimeLib.run.run_folder import check_study_keys
from CTTimeLib.run.summary import patient_lines

from .images import volume_to_image
from .segments import color_by_score, is_target, lesions_from_segmentation, segment_location, segments
from .studies import node_source

TABLE_COLUMNS = (("Patient", "s"), ("Time point", "s"), ("Lesion", "s"), ("Location", "s"), ("Target", "s"),
                 ("CT-TIME score", "d"), ("Status", "s"), ("Score low", "d"), ("Score high", "d"),
                 ("Re-delineations", "d"), ("Status under re-delineation", "s"), ("Reference low", "d"),
                 ("Reference high", "d"), ("Status within the reference's uncertainty", "s"),
                 ("Outside reference", "s"), ("Patient minimum", "s"),
                 ("Soft-tissue share", "d"), ("Longest axial diameter (mm)", "d"), ("Volume (mm3)", "d"),
                 ("Standardization", "s"), ("Warning", "s"), ("Note", "s"))
MINIMUM_MARK = "sets the patient minimum"


@dataclass
class Results:
    lesions: object  # pandas DataFrame, the lesions.csv rows
    patients: object  # pandas DataFrame, the patients.csv rows
    warnings: list = field(default_factory=list)
    model_name: str = "CT-TIME"
    provenance: dict = field(default_factory=dict)  # the model's (paper, doi, ...), cited in the DICOM SR
    perturbations: object = None  # pandas DataFrame, the perturbations.csv rows (None: no perturbed delineations)
    reference: object = None  # the standardization's means and SDs (a Reference; in cohort mode, the scene's)


def compute(studies, standardize, progress=None, cancelled=None, extractor=None, model=None, perturbations=0):
    """Extract, z-score and score every lesion of ``studies`` with the CLI's code; features by CTTime's engine
    unless ``extractor`` is given (e.g. pyradiomics' FeatureExtractor for all 107).

    ``standardize`` is "cohort", the path of a reference JSON or a Reference; progress(done, total, message) and
    cancelled() are passed to extract_lesions (cancelling raises CTTimeLib.core.errors.Cancelled);
    ``perturbations``: perturbed delineations per lesion, for the score intervals (0: none).
    """
    import pandas as pd
    from CTTimeLib.run.pipeline import result_tables
    from CTTimeLib.run.study import extract_lesions
    from CTTimeLib.scoring import acquisition, standardization
    from CTTimeLib.scoring.engine import EngineExtractor
    from CTTimeLib.scoring.lesion_scores import resolve_standardization, score_table
    from CTTimeLib.scoring.robustness import perturbations_table
    from CTTimeLib.scoring.signature import load_model

    model = model or load_model()
    reference = standardize if isinstance(standardize, standardization.Reference) else resolve_standardization(
        str(standardize), model)
    check_study_keys((study.patient_id, study.timepoint) for study in studies)
    extractor = extractor or EngineExtractor()
    perturbation_extractor = extractor.restricted(model.features) if perturbations else None
    rows = []
    for number, study in enumerate(studies):
        check_name(study.patient_id, "Patient ID")
        check_name(study.timepoint, "Time point")
        def report(done, total, message, number=number):
            if progress:
                progress(number * 100 + (100 * done) // max(total, 1), 100 * len(studies), message)
        meta = {"patient_id": study.patient_id, "timepoint": study.timepoint,
                "image": node_source(study.volume_node), "segmentation": node_source(study.segmentation_node),
                "marks": ""}  # lines drawn in the scene become segments (proposals), read as the segmentation
        image = volume_to_image(study.volume_node)
        if study.volume_node.GetStorageNode() is not None and Path(meta["image"]).is_file():  # as the CLI reads it
            meta.update(acquisition.describe(meta["image"], image))
        lesions = lesions_from_segmentation(study.segmentation_node, study.volume_node, image)
        if not lesions:
            raise CTTimeError(f"Segmentation {study.segmentation_node.GetName()} has no segment: draw the lesions "
                              "first.", "input")
        for lesion in lesions:
            check_name(lesion.lesion_id, f"Segmentation {study.segmentation_node.GetName()}: segment name")
        rows += extract_lesions(image, lesions, extractor, meta, report, cancelled, perturbations=perturbations,
                                perturbation_extractor=perturbation_extractor)
    scored = score_table(pd.DataFrame(rows), model, reference, features_by=extractor.features_by)
    if reference == standardization.COHORT:  # the means and SDs score_table z-scored with, kept for live scores
        reference = standardization.from_lesions(scored[scored["ct_time_score"].notna()], model.features,
                                                 "all scored lesions", mode=standardization.COHORT)
    table = perturbations_table(scored, model.features)
    return Results(*result_tables(scored, model, extractor), model_name=model.name, provenance=model.provenance,
                   perturbations=table if len(table) else None, reference=reference)


def _rows_of(results, study):
    frame = results.lesions
    mine = frame[(frame["patient_id"] == study.patient_id) & (frame["timepoint"] == study.timepoint)]
    return {row["lesion_id"]: row for row in mine.to_dict("records")}


def _finite(value):
    return value is not None and isinstance(value, (int, float, np.floating)) and bool(np.isfinite(value))


def apply_results(study, results):
    """Colour each segment by its score and write score, status and provenance as tags."""
    rows = _rows_of(results, study)
    for _, segment in segments(study.segmentation_node):
        row = rows.get(segment.GetName(), {})
        color_by_score(segment, row, row.get("location") or segment_location(segment), results.model_name)


def targets(studies):
    """(patient, time point, lesion) -> True for the segments flagged as RECIST target lesions."""
    return {(study.patient_id, study.timepoint, segment.GetName()): True
            for study in studies for _, segment in segments(study.segmentation_node) if is_target(segment)}


def table_rows(results, targets=None):
    """The results table: one row per lesion (the lesion that sets its patient's minimum marked, its intervals,
    whether it lies outside the reference, its soft-tissue share and warnings), then the aggregates of each patient
    and time point with what they stand on."""
    targets = targets or {}
    minimum = {(row["patient_id"], row["timepoint"]): row["min_lesion_id"] for row in results.patients.to_dict("records")}
    rows = []
    for row in results.lesions.to_dict("records"):
        key = (row["patient_id"], row["timepoint"], row["lesion_id"])
        sets_minimum = bool(row["lesion_id"]) and minimum.get(key[:2]) == row["lesion_id"]
        rows.append([row["patient_id"], row["timepoint"], row["lesion_id"], row["location"],
                     "yes" if targets.get(key) else "", row["ct_time_score"],
                     row["ct_time_status"] if _finite(row["ct_time_score"]) else "failed",
                     row.get("ct_time_score_low"), row.get("ct_time_score_high"), row.get("ct_time_perturbations"),
                     robust_text(row.get("ct_time_status_robust")),
                     row.get("ct_time_score_ref_low"), row.get("ct_time_score_ref_high"),
                     robust_text(row.get("ct_time_status_reference_robust")), _outside_text(row),
                     MINIMUM_MARK if sets_minimum else "", row.get("soft_tissue_share"),
                     row.get("longest_axial_diameter_mm"), row.get("original_shape_MeshVolume"),
                     row["standardization"], row.get("warning", ""), _lesion_note(row)])
    for row in results.patients.to_dict("records"):
        note = (f"{row['aggregate_coverage']}, {row['n_failed']} failed, heterogeneity {row['heterogeneity'] or '-'}"
                + (f", minimum set by {row['min_lesion_id']}" if row["min_lesion_id"] else ""))
        for name in ("min", "median", "mean", "max"):
            rows.append([row["patient_id"], row["timepoint"], f"[patient {name}]", "", "", row[f"ct_time_{name}"],
                         row[f"status_{name}"], np.nan, np.nan, np.nan, robust_text(row.get(f"status_{name}_robust")),
                         row.get(f"ct_time_{name}_ref_low"), row.get(f"ct_time_{name}_ref_high"),
                         robust_text(row.get(f"status_{name}_reference_robust")), "",
                         row["min_lesion_id"] if name == "min" else "", np.nan, np.nan,
                         row["total_volume_mm3"] if name == "min" else np.nan, row["standardization"],
                         row["warning"], note])
    return rows


def _outside_text(row):
    """"OUTSIDE" for a lesion with a signature feature beyond |z| = 3 of its reference, "no" inside, "" unscored."""
    flag = row.get("outside_reference")
    if flag is None or (isinstance(flag, float) and np.isnan(flag)):
        return ""
    return "OUTSIDE" if flag in (True, "True", "true") else "no"


def _lesion_note(row):
    """A lesion's note: its error, and how its mask was proposed when it was (its delineation)."""
    delineation = row.get("delineation")
    return "; ".join(text for text in (row["error"], delineation if is_proposed(delineation) else "") if text)


def fill_table_node(table_node, results, targets=None):
    """Replace the content of a vtkMRMLTableNode with the results table."""
    import vtk

    rows = table_rows(results, targets)
    table_node.RemoveAllColumns()
    for index, (title, kind) in enumerate(TABLE_COLUMNS):
        column = vtk.vtkDoubleArray() if kind == "d" else vtk.vtkStringArray()
        column.SetName(title)
        for row in rows:
            value = row[index]
            if kind == "d":
                column.InsertNextValue(float(value) if _finite(value) else float("nan"))
            else:
                column.InsertNextValue("" if value is None or (isinstance(value, float) and np.isnan(value))
                                       else str(value))
        table_node.AddColumn(column)
    table_node.SetColumnDescription("CT-TIME score", "P(T-cell inflamed); > 0.5 inflamed. Research use only.")
    table_node.SetLocked(True)
    return table_node


def summary_lines(results):
    """Short text of the results for the panel and the tumour-board screenshot: each patient's line (what its
    aggregates stand on, the lesion that sets its minimum), the run's warnings, lesions with a low soft-tissue
    share, and whether the reference describes the lesions at all."""
    from CTTimeLib.scoring.reference_interval import mismatch
    from CTTimeLib.scoring.soft_tissue import share_warning

    low = [share_warning(row["lesion_id"], row.get("soft_tissue_share")) for row in results.lesions.to_dict("records")]
    low.append(mismatch(results.lesions))
    return patient_lines(results.patients) + results.warnings + [f"WARNING: {text}" for text in low if text]
