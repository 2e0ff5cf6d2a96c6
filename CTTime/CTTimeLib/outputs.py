"""Outputs: lesions.csv, patients.csv and the coloured .seg.nrrd, each written atomically.

Every file is written to a temporary file in the target folder and renamed into place, so an interrupted run
never leaves a half-written output.
"""

import os
import re
import tempfile
import unicodedata
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from . import colormap
from .inputs import LOCATION_TAG, grid_offset, nonzero_box

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
            + ["ct_time_score", "ct_time_status", "standardization", "warning", "error", "error_kind"])
    known = LESION_KEYS + list(feature_names) + tail
    extras = [c for c in frame.columns if c not in known]
    for column in known:
        if column not in frame.columns:
            frame[column] = np.nan if column not in ("error", "error_kind", "standardization", "warning") else ""
    return frame[LESION_KEYS + extras + list(feature_names) + tail]


def ijk_to_lps(image):
    """The 4x4 voxel-index to LPS matrix of a SimpleITK image."""
    matrix = np.eye(4)
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    matrix[:3, :3] = direction @ np.diag(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    return matrix


def tag_text(value):
    """A segment tag value on one line, without the "|" that separates tags."""
    return " ".join(str(value).splitlines()).replace("|", "/")


class _HeaderText:
    """Header values for pynrrd, which writes ASCII only: non-ASCII values (UTF-8 in Slicer's own files) go in as
    unique ASCII placeholders that ``restore`` swaps for their UTF-8 bytes once the file is written."""

    def __init__(self):
        self.token = uuid.uuid4().hex
        self.placeholders = {}

    def __call__(self, value, tag=False):
        text = tag_text(value) if tag else " ".join(str(value).splitlines())
        if text.isascii():
            return text
        key = f"CTTIME{self.token}U{len(self.placeholders)}"
        self.placeholders[key] = text
        return key

    def restore(self, content):
        """The written file's bytes with the placeholders in its header replaced by UTF-8 text."""
        header, blank, data = content.partition(b"\n\n")
        for key, text in self.placeholders.items():
            header = header.replace(key.encode("ascii"), text.encode("utf-8"))
        return header + blank + data


def _segment_layers(image, masks):
    """Lesion masks (on ``image``'s grid, cropped or not) as Slicer stores segments: label values in layers (a new
    layer only where segments overlap, at most 255 labels a layer) over the smallest box of the CT holding every
    lesion voxel. Returns the box's first CT voxel (x, y, z), the voxels (i, j, k; layers first when more than
    one) and per mask its (layer, label value, extent)."""
    pieces = [_voxels_on_ct(mask, image) for mask in masks]
    boxes = [(start, start + inside.shape) for start, inside in filter(None, pieces)]
    low = np.min([box[0] for box in boxes], axis=0) if boxes else np.zeros(3, int)
    high = np.max([box[1] for box in boxes], axis=0) if boxes else np.ones(3, int)
    layers, labels, placed = [np.zeros(tuple(high - low), np.uint8)], [0], []
    for piece in pieces:
        if piece is None:  # an empty segment: a label value of its own, no voxel
            labels[0] += 1
            placed.append((0, labels[0], [0, -1, 0, -1, 0, -1]))
            continue
        start, inside = piece
        region = tuple(slice(int(a), int(a) + n) for a, n in zip(start - low, inside.shape))
        free = [n for n, voxels in enumerate(layers) if labels[n] < 255 and not voxels[region][inside].any()]
        if not free:
            layers.append(np.zeros_like(layers[0]))
            labels.append(0)
            free = [len(layers) - 1]
        layer = free[0]
        labels[layer] += 1
        layers[layer][region][inside] = labels[layer]
        placed.append((layer, labels[layer], [int(v) for r in region for v in (r.start, r.stop - 1)]))
    return low, layers[0] if len(layers) == 1 else np.stack(layers), placed


def _voxels_on_ct(mask, image):
    """A mask's non-zero box as (its first CT voxel x, y, z; its voxels as booleans, i, j, k), or None if empty."""
    array = sitk.GetArrayViewFromImage(mask)
    box = nonzero_box(array)
    if box is None:
        return None
    start = np.add(grid_offset(mask, image), [box[2 - axis].start for axis in range(3)])
    return start, array[box].transpose(2, 1, 0) != 0


def write_colored_segmentation(path, image, lesions, scored, model_name="CT-TIME"):
    """A Slicer segmentation of ``lesions`` coloured by score, with score and status as segment tags.

    ``scored`` maps lesion ID to its lesions.csv row (dict); a lesion without a score is coloured as failed.
    The file covers the lesions' bounding box on the image grid, as Slicer crops segmentations; names and tags
    are written in UTF-8, as Slicer writes them.
    """
    import slicerio

    text = _HeaderText()
    low, voxels, placed = _segment_layers(image, [lesion.mask for lesion in lesions])
    geometry = ijk_to_lps(image)
    geometry[:3, 3] = image.TransformIndexToPhysicalPoint([int(v) for v in low])
    segments = []
    for index, (lesion, (layer, value, extent)) in enumerate(zip(lesions, placed)):
        row = scored.get(lesion.lesion_id, {})
        score = row.get("ct_time_score")
        has_score = score is not None and np.isfinite(score)
        tags = dict(lesion.tags)
        tags.update({LOCATION_TAG: lesion.location, MODEL_TAG: model_name,
                     SCORE_TAG: f"{score:.6f}" if has_score else "",
                     STATUS_TAG: row.get("ct_time_status") if has_score else "failed",
                     STANDARDIZATION_TAG: row.get("standardization", "")})
        if row.get("error"):
            tags[ERROR_TAG] = row["error"]
        segments.append({
            "id": f"Segment_{index + 1}", "name": text(lesion.lesion_id), "labelValue": value, "layer": layer,
            "extent": extent, "color": [round(v, 6) for v in colormap.score_color(score if has_score else None)],
            "colorAutoGenerated": False, "nameAutoGenerated": False,
            "tags": {text(k, tag=True): text(v, tag=True) for k, v in tags.items()}})
    segmentation = {"voxels": voxels, "ijkToLPS": geometry, "segments": segments}
    with atomic_path(path) as temporary:
        slicerio.write_segmentation(temporary, segmentation, compression_level=1)
        if text.placeholders:
            Path(temporary).write_bytes(text.restore(Path(temporary).read_bytes()))
