"""Outputs: lesions.csv, patients.csv and the coloured .seg.nrrd, each written atomically.

Every file is written to a temporary file in the target folder and renamed into place, so an interrupted run
never leaves a half-written output.
"""

import os
import re
import tempfile
import unicodedata
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from . import colormap
from .inputs import LOCATION_TAG

LESION_KEYS = ["patient_id", "timepoint", "lesion_id", "location"]
SCORE_TAG, STATUS_TAG, STANDARDIZATION_TAG, ERROR_TAG, MODEL_TAG = (
    "CTTime.Score", "CTTime.Status", "CTTime.Standardization", "CTTime.Error", "CTTime.Model")


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text(path, text):
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)


def write_table(frame, path):
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)


def safe_name(text, limit=80):
    """A file-name-safe form of a patient, time point or lesion name (ASCII, no separators)."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text).strip("._")
    return cleaned[:limit] or "unnamed"


def order_lesion_columns(frame, feature_names, model_features):
    """lesions.csv column order: keys, extras (batch, acquisition), features, derived, scores, error."""
    tail = (["longest_axial_diameter_mm", "recist_measurable"] + [f"z_{n}" for n in model_features]
            + ["ct_time_score", "ct_time_status", "standardization", "error"])
    known = LESION_KEYS + list(feature_names) + tail
    extras = [c for c in frame.columns if c not in known]
    for column in known:
        if column not in frame.columns:
            frame[column] = np.nan if column not in ("error", "standardization") else ""
    return frame[LESION_KEYS + extras + list(feature_names) + tail]


def ijk_to_lps(image):
    """The 4x4 voxel-index to LPS matrix of a SimpleITK image."""
    matrix = np.eye(4)
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    matrix[:3, :3] = direction @ np.diag(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    return matrix


def _tag_text(value):
    return str(value).replace("|", "/")


def write_colored_segmentation(path, image, lesions, scored, model_name="CT-TIME"):
    """A Slicer segmentation of ``lesions`` coloured by score, with score and status as segment tags.

    ``scored`` maps lesion ID to its lesions.csv row (dict); a lesion without a score is coloured as failed.
    """
    import slicerio

    segmentation = slicerio.create_segmentation(image.GetSize(), ijk_to_lps(image))
    for index, lesion in enumerate(lesions):
        row = scored.get(lesion.lesion_id, {})
        score = row.get("ct_time_score")
        has_score = score is not None and np.isfinite(score)
        tags = {key: _tag_text(value) for key, value in lesion.tags.items()}
        tags.update({LOCATION_TAG: lesion.location, MODEL_TAG: model_name,
                     SCORE_TAG: f"{score:.6f}" if has_score else "",
                     STATUS_TAG: row.get("ct_time_status") if has_score else "failed",
                     STANDARDIZATION_TAG: _tag_text(row.get("standardization", ""))})
        if row.get("error"):
            tags[ERROR_TAG] = _tag_text(row["error"])
        mask = sitk.GetArrayViewFromImage(lesion.mask).transpose(2, 1, 0).astype(bool)
        slicerio.add_segment(segmentation, mask, {
            "id": f"Segment_{index + 1}", "name": lesion.lesion_id,
            "color": [round(v, 6) for v in colormap.score_color(score if has_score else None)], "tags": tags})
    with atomic_path(path) as temporary:
        slicerio.write_segmentation(temporary, segmentation)
