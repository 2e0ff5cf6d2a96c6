"""Aggregation: one row per patient and time point from that patient's scored lesions.

Scores are summarised by mean, median, min, max and SD (n-1); each aggregate has a status (> threshold =
inflamed). The paper's best predictor of progression-free survival was the minimum; ``min_lesion_id`` names the
lesion that sets it. Heterogeneity follows the SD: < 0.1 low, 0.1-0.3 moderate, > 0.3 high; a single lesion has
none.

Every row says what its aggregates stand on: ``n_lesions`` lesions in the study, ``n_scored`` of them scored,
``n_failed`` failed rows (a study that could not be read is one), ``aggregate_complete`` (every lesion scored) and
``aggregate_coverage`` in words. Aggregates over an incomplete set are kept but marked INCOMPLETE (also in
``warning``); a study without any scored lesion has no aggregate and says NO SCORE.

With score intervals (``robustness``), each aggregate's status is robust when it stays on its side of the threshold
whatever perturbed delineation each lesion takes: mean, median, min and max grow with every lesion's score, so
their extremes over all combinations are the aggregates of the lesions' low and of their high ends.

With the scores of the lesions under each draw of the reference (``reference_interval``), each aggregate also gets
its standardisation interval: the aggregate computed per draw (all lesions of a study share the draw), then its
2.5th and 97.5th percentiles; ``status_<aggregate>_reference_robust`` when the aggregate and both ends lie on the
same side of the threshold.
"""

import numpy as np

from ..core.imports import Deferred
from ..core.lesions import join_warnings, split_warnings
from . import reference_interval

pd = Deferred("pandas")  # imported when first used: the `cttime` command starts without it

AGGREGATES = ("mean", "median", "min", "max")
PATIENT_KEYS = ["patient_id", "timepoint"]
VOLUME, SURFACE = "original_shape_MeshVolume", "original_shape_SurfaceArea"


def coverage(n_lesions, n_scored, unreadable=False):
    """(complete, text) of a patient's aggregates: what they stand on."""
    if unreadable:
        return False, "NO SCORE: the study could not be read"
    if n_scored == 0:
        return False, f"NO SCORE: none of {n_lesions} lesion(s) could be scored"
    if n_scored < n_lesions:
        return False, f"INCOMPLETE: {n_scored} of {n_lesions} lesions scored"
    return True, f"complete: {n_scored} of {n_lesions} lesion(s) scored"


def heterogeneity(sd, n_lesions):
    """Heterogeneity class of a patient's lesion scores."""
    if n_lesions < 2:
        return "single lesion" if n_lesions == 1 else ""
    if sd < 0.1:
        return "low"
    return "moderate" if sd <= 0.3 else "high"


def summarize(lesions, threshold=0.5, draws=None):
    """patients.csv rows from lesions.csv rows (failed lesions are counted, not scored); ``draws``: row index ->
    the lesion's scores under the reference's draws (``reference_interval.DRAW_SCORES``), for the aggregates'
    standardisation intervals (left empty without)."""
    rows = []
    for (patient_id, timepoint), group in lesions.groupby(PATIENT_KEYS, sort=False, dropna=False):
        scores = group["ct_time_score"].astype(float).dropna()
        ids = group["lesion_id"].fillna("").astype(str) if "lesion_id" in group else pd.Series("?", group.index)
        n_lesions = int((ids != "").sum())
        complete, text = coverage(n_lesions, len(scores), unreadable=bool((ids == "").any()))
        row = {"patient_id": patient_id, "timepoint": timepoint, "n_lesions": n_lesions, "n_scored": len(scores),
               "n_failed": int(len(group) - len(scores)), "aggregate_complete": complete,
               "aggregate_coverage": text}
        for name in AGGREGATES:
            row[f"ct_time_{name}"] = float(getattr(scores, name)()) if len(scores) else np.nan
        row["ct_time_sd"] = float(scores.std(ddof=1)) if len(scores) > 1 else np.nan
        row["min_lesion_id"] = ids[scores.idxmin()] if len(scores) else ""
        for name in AGGREGATES:
            value = row[f"ct_time_{name}"]
            row[f"status_{name}"] = ("inflamed" if value > threshold else "uninflamed") if len(scores) else ""
        row.update(_robust_statuses(group, threshold))
        row.update(_reference_intervals(row, scores.index, draws, threshold))
        row["heterogeneity"] = heterogeneity(row["ct_time_sd"], len(scores))
        for column, total in ((VOLUME, "total_volume_mm3"), (SURFACE, "total_surface_mm2")):
            row[total] = float(group[column].astype(float).sum()) if column in group and group[column].notna().any() \
                else np.nan
        texts = group["standardization"].dropna().astype(str)
        row["standardization"] = "; ".join(dict.fromkeys(text for text in texts if text))
        incomplete = [] if complete else [
            f"{text}: the aggregates stand on the scored lesions only" if len(scores) else text]
        row["warning"] = join_warnings(incomplete + [part for cell in group.get("warning", pd.Series(dtype=str))
                                                     for part in split_warnings(cell)])
        rows.append(row)
    return pd.DataFrame(rows, columns=PATIENT_COLUMNS)


def _robust_statuses(group, threshold):
    """status_<aggregate>_robust of one patient and time point: True/False, or None unless every scored lesion
    has a score interval."""
    scored = group[group["ct_time_score"].astype(float).notna()]
    bounds = [scored[c].astype(float) if c in scored else pd.Series(np.nan, scored.index)
              for c in ("ct_time_score_low", "ct_time_score_high")]
    known = len(scored) and all(np.isfinite(bound).all() for bound in bounds)
    return {f"status_{name}_robust": bool((getattr(bounds[0], name)() > threshold)
                                          == (getattr(bounds[1], name)() > threshold)) if known else None
            for name in AGGREGATES}


def _reference_intervals(row, scored, draws, threshold):
    """ct_time_<aggregate>_ref_low/high and status_<aggregate>_reference_robust of one patient and time point
    (``scored``: the row index of its scored lesions); empty unless every scored lesion has its draws."""
    found = [draws.get(index) if draws is not None else None for index in scored]
    if not len(found) or any(not isinstance(lesion, np.ndarray) for lesion in found):
        return {}
    result = {}
    for name, (low, high) in reference_interval.aggregate_intervals(np.vstack(found), AGGREGATES).items():
        result.update({f"ct_time_{name}_ref_low": float(low), f"ct_time_{name}_ref_high": float(high),
                       f"status_{name}_reference_robust": reference_interval.robust(row[f"ct_time_{name}"], low,
                                                                                    high, threshold)})
    return result


PATIENT_COLUMNS = (PATIENT_KEYS + ["n_lesions", "n_scored", "n_failed", "aggregate_complete", "aggregate_coverage"]
                   + [f"ct_time_{n}" for n in AGGREGATES] + ["ct_time_sd", "min_lesion_id"]
                   + [f"status_{n}" for n in AGGREGATES] + [f"status_{n}_robust" for n in AGGREGATES]
                   + [f"ct_time_{n}_ref_{end}" for n in AGGREGATES for end in ("low", "high")]
                   + [f"status_{n}_reference_robust" for n in AGGREGATES]
                   + ["heterogeneity", "total_volume_mm3", "total_surface_mm2", "standardization", "warning"])
