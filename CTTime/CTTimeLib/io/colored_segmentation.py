"""The coloured segmentation: a run's lesions as a Slicer .seg.nrrd coloured by score, with CTTime.* tags (and the
proposed lesions of ``cttime delineate``, before any score)."""

import uuid
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core import colormap
from ..core.files import atomic_path
from ..core.geometry import grid_offset, ijk_to_lps, nonzero_box
from ..core.tags import result_tags, tag_text


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
    def appearance(lesion):
        row = scored.get(lesion.lesion_id, {})
        score = row.get("ct_time_score")
        has_score = score is not None and np.isfinite(score)
        tags = dict(lesion.tags)
        tags.update(result_tags(row, lesion.location, model_name))
        return colormap.score_color(score if has_score else None), tags

    _write_segments(path, image, lesions, appearance)


# Segment colours of proposed lesions before they are scored (Slicer's first label colours: distinct, not a score)
PROPOSAL_COLORS = ((0.5, 0.68, 0.5), (0.945, 0.839, 0.569), (0.694, 0.478, 0.396), (0.435, 0.722, 0.824),
                   (0.847, 0.396, 0.31), (0.867, 0.51, 0.396), (0.565, 0.933, 0.565), (0.753, 0.408, 0.98))


def write_lesion_segmentation(path, image, lesions):
    """A Slicer segmentation of ``lesions`` with their own tags (e.g. proposed lesions, for editing), each in a
    colour of its own."""
    colors = {id(lesion): PROPOSAL_COLORS[n % len(PROPOSAL_COLORS)] for n, lesion in enumerate(lesions)}
    _write_segments(path, image, lesions, lambda lesion: (colors[id(lesion)], dict(lesion.tags)))


def _write_segments(path, image, lesions, appearance):
    """Write ``lesions`` as a .seg.nrrd; ``appearance(lesion)`` gives its (colour, tags)."""
    import slicerio

    text = _HeaderText()
    low, voxels, placed = _segment_layers(image, [lesion.mask for lesion in lesions])
    geometry = ijk_to_lps(image)
    geometry[:3, 3] = image.TransformIndexToPhysicalPoint([int(v) for v in low])
    segments = []
    for index, (lesion, (layer, value, extent)) in enumerate(zip(lesions, placed)):
        color, tags = appearance(lesion)
        tags = {key: value for key, value in tags.items() if value is not None}
        segments.append({
            "id": f"Segment_{index + 1}", "name": text(lesion.lesion_id), "labelValue": value, "layer": layer,
            "extent": extent, "color": [round(v, 6) for v in color],
            "colorAutoGenerated": False, "nameAutoGenerated": False,
            "tags": {text(k, tag=True): text(v, tag=True) for k, v in tags.items()}})
    segmentation = {"voxels": voxels, "ijkToLPS": geometry, "segments": segments}
    with atomic_path(path) as temporary:
        slicerio.write_segmentation(temporary, segmentation, compression_level=1)
        if text.placeholders:
            Path(temporary).write_bytes(text.restore(Path(temporary).read_bytes()))
