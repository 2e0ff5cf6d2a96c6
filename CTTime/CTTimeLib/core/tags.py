"""The CTTime.* tags a segment carries, in Slicer's scene and in the coloured .seg.nrrd (one place writes them)."""

import math

LOCATION_TAG = "CTTime.Location"
TARGET_TAG = "CTTime.Target"
SCORE_TAG = "CTTime.Score"
STATUS_TAG = "CTTime.Status"
STANDARDIZATION_TAG = "CTTime.Standardization"
MODEL_TAG = "CTTime.Model"
ERROR_TAG = "CTTime.Error"


def tag_text(value):
    """A segment tag value on one line, without the "|" that separates tags."""
    return " ".join(str(value).splitlines()).replace("|", "/")


def result_tags(row, location, model_name):
    """The tags of a scored lesion: ``row`` is its lesions.csv row (dict); a lesion without a finite score is
    tagged "failed" (with its error, when there is one). ``ERROR_TAG`` is None when there is no error, so a caller
    updating existing tags removes it."""
    score = row.get("ct_time_score")
    has_score = score is not None and isinstance(score, (int, float)) and math.isfinite(score)
    return {LOCATION_TAG: location, MODEL_TAG: model_name,
            SCORE_TAG: f"{score:.6f}" if has_score else "",
            STATUS_TAG: str(row.get("ct_time_status")) if has_score else "failed",
            STANDARDIZATION_TAG: tag_text(row.get("standardization", "") or ""),
            ERROR_TAG: tag_text(row["error"]) if row.get("error") else None}
