"""Aggregation: one row per patient and time point from that patient's scored lesions.

Scores are summarised by mean, median, min, max and SD (n-1); each aggregate has a status (> threshold =
inflamed). The paper's best predictor of progression-free survival was the minimum. Heterogeneity follows the
SD: < 0.1 low, 0.1-0.3 moderate, > 0.3 high; a single lesion has none.

With score intervals (``robustness``), each aggregate's status is robust when it stays on its side of the threshold
whatever perturbed delineation each lesion takes: mean, median, min and max grow with every lesion's score, so
their extremes over all combinations are the aggregates of the lesions' low and of their high ends.
"""

import numpy as np
import pandas as pd

AGGREGATES = ("mean", "median", "min", "max")
PATIENT_KEYS = ["patient_id", "timepoint"]
VOLUME, SURFACE = "original_shape_MeshVolume", "original_shape_SurfaceArea"


def heterogeneity(sd, n_lesions):
    """Heterogeneity class of a patient's lesion scores."""
    if n_lesions < 2:
        return "single lesion" if n_lesions == 1 else ""
    if sd < 0.1:
        return "low"
    return "moderate" if sd <= 0.3 else "high"


def summarize(lesions, threshold=0.5):
    """patients.csv rows from lesions.csv rows (failed lesions are counted, not scored)."""
    rows = []
    for (patient_id, timepoint), group in lesions.groupby(PATIENT_KEYS, sort=False, dropna=False):
        scores = group["ct_time_score"].astype(float).dropna()
        row = {"patient_id": patient_id, "timepoint": timepoint, "n_lesions": len(scores),
               "n_failed": int(len(group) - len(scores))}
        for name in AGGREGATES:
            row[f"ct_time_{name}"] = float(getattr(scores, name)()) if len(scores) else np.nan
        row["ct_time_sd"] = float(scores.std(ddof=1)) if len(scores) > 1 else np.nan
        for name in AGGREGATES:
            value = row[f"ct_time_{name}"]
            row[f"status_{name}"] = ("inflamed" if value > threshold else "uninflamed") if len(scores) else ""
        row.update(_robust_statuses(group, threshold))
        row["heterogeneity"] = heterogeneity(row["ct_time_sd"], len(scores))
        for column, total in ((VOLUME, "total_volume_mm3"), (SURFACE, "total_surface_mm2")):
            row[total] = float(group[column].astype(float).sum()) if column in group and group[column].notna().any() \
                else np.nan
        texts = group["standardization"].dropna().astype(str)
        row["standardization"] = "; ".join(dict.fromkeys(text for text in texts if text))
        row["warning"] = "; ".join(dict.fromkeys(text for text in group.get("warning", pd.Series(dtype=str))
                                                 .fillna("").astype(str) if text))
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


PATIENT_COLUMNS = (PATIENT_KEYS + ["n_lesions", "n_failed"] + [f"ct_time_{n}" for n in AGGREGATES] + ["ct_time_sd"]
                   + [f"status_{n}" for n in AGGREGATES] + [f"status_{n}_robust" for n in AGGREGATES]
                   + ["heterogeneity", "total_volume_mm3", "total_surface_mm2", "standardization", "warning"])
