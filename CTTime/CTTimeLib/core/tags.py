"""The CTTime.* tags a segment carries, in Slicer's scene and in the coloured .seg.nrrd (one place writes them)."""

import math

LOCATION_TAG = "CTTime.Location"
TARGET_TAG = "CTTime.Target"
SCORE_TAG = "CTTime.Score"
STATUS_TAG = "CTTime.Status"
STANDARDIZATION_TAG = "CTTime.Standardization"
MODEL_TAG = "CTTime.Model"
ERROR_TAG = "CTTime.Error"
SCORE_INTERVAL_TAG = "CTTime.ScoreInterval"  # "low-high" of the perturbed delineations' scores (robustness)
STATUS_ROBUST_TAG = "CTTime.StatusRobust"  # "robust", or "uncertain" when the status flips under re-delineation
DELINEATION_TAG = "CTTime.Delineation"  # "manual", or how the mask was proposed ("proposed from RECIST line ...")
DELINEATION_WARNING_TAG = "CTTime.DelineationWarning"  # what to check in a proposed mask (its warnings)


def tag_text(value):
    """A segment tag value on one line, without the "|" that separates tags."""
    return " ".join(str(value).splitlines()).replace("|", "/")


def _finite(value):
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def result_tags(row, location, model_name):
    """The tags of a scored lesion: ``row`` is its lesions.csv row (dict); a lesion without a finite score is
    tagged "failed" (with its error, when there is one). ``ERROR_TAG`` and the interval tags are None when there is
    no error or no interval, so a caller updating existing tags removes them."""
    score, low, high = (row.get(c) for c in ("ct_time_score", "ct_time_score_low", "ct_time_score_high"))
    has_score, has_interval = _finite(score), _finite(low) and _finite(high)
    return {LOCATION_TAG: location, MODEL_TAG: model_name,
            SCORE_TAG: f"{score:.6f}" if has_score else "",
            STATUS_TAG: str(row.get("ct_time_status")) if has_score else "failed",
            STANDARDIZATION_TAG: tag_text(row.get("standardization", "") or ""),
            ERROR_TAG: tag_text(row["error"]) if row.get("error") else None,
            SCORE_INTERVAL_TAG: f"{low:.6f}-{high:.6f}" if has_score and has_interval else None,
            STATUS_ROBUST_TAG: robust_text(row.get("ct_time_status_robust")) if has_score and has_interval else None}


def robust_text(robust):
    """How a status's robustness reads on the board, in tags and in Slicer's table ("" when not known)."""
    if robust is None or (isinstance(robust, float) and math.isnan(robust)):
        return ""
    return "robust" if robust in (True, "True", "true") else "uncertain"
