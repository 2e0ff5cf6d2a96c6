"""Live scores while delineating: after a Compute, a lesion whose segment changes is scored again on its own.

``LiveScores`` remembers a content hash of each segment's voxels; ``update`` finds the segments whose hash
changed (or that are new), extracts only those with CTTime's engine, z-scores them against the standardisation
(means and SDs) of the last Compute, recolours them and sets their tags. No Qt: the panel calls ``update`` from
a debounced timer, which the segmentation's ``edit_events`` start.
"""

import hashlib
from dataclasses import dataclass

import numpy as np

from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.geometry import nonzero_box

from .images import mask_on_image, volume_to_image
from .segments import color_by_score, segment_location, segments


# vtkSegmentation events that a change of the lesions raises. Segment Editor effects (Paint, Threshold, Islands, ...)
# change a segment's voxels through vtkSegmentationModifier, which raises SourceRepresentationModified (named
# MasterRepresentationModified before Slicer 5.2), never SegmentModified.
EDIT_EVENT_NAMES = ("SegmentAdded", "SegmentRemoved", "SegmentModified", "SourceRepresentationModified",
                    "MasterRepresentationModified")


def edit_events():
    """The event IDs of EDIT_EVENT_NAMES that this Slicer's vtkSegmentation has (each once)."""
    import slicer

    events = []
    for name in EDIT_EVENT_NAMES:
        event = getattr(slicer.vtkSegmentation, name, None)
        if event is not None and event not in events:
            events.append(event)
    return events


@dataclass
class LiveScore:
    """One lesion's current score (None when it failed), status and error message."""

    score: object
    status: str
    error: str = ""


def content_hash(segmentation_node, segment_id):
    """A digest of the segment's voxels (its own label in its labelmap layer) and of where they lie."""
    import slicer

    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    layer = slicer.util.arrayFromSegmentInternalBinaryLabelmap(segmentation_node, segment_id)
    mine = layer == segment.GetLabelValue()
    box = nonzero_box(mine)
    digest = hashlib.sha1(repr(segmentation_node.GetBinaryLabelmapInternalRepresentation(segment_id).GetExtent())
                          .encode())
    if box is not None:
        digest.update(repr([(part.start, part.stop) for part in box]).encode())
        digest.update(np.packbits(mine[box]).tobytes())
    return digest.hexdigest()


class LiveScores:
    """The scores of one study's segments, kept current while they are edited (see the module docstring)."""

    def __init__(self, study, results, extractor=None, model=None):
        from CTTimeLib.scoring.engine import EngineExtractor
        from CTTimeLib.scoring.signature import load_model

        self.study, self.reference = study, results.reference
        self.extractor = extractor or EngineExtractor()
        self.model = model or load_model()
        self.image = volume_to_image(study.volume_node)
        rows = results.lesions[(results.lesions["patient_id"] == study.patient_id)
                               & (results.lesions["timepoint"] == study.timepoint)]
        by_name = {row["lesion_id"]: row for row in rows.to_dict("records")}
        self.scores, self.hashes = {}, {}
        for segment_id, segment in segments(study.segmentation_node):
            row = by_name.get(segment.GetName())
            if row is not None:
                self.scores[segment_id] = _live(row)
                self.hashes[segment_id] = content_hash(study.segmentation_node, segment_id)

    def text(self, segment_id):
        """(score, status) as the panel's lesion list shows them; empty for a segment not scored yet."""
        current = self.scores.get(segment_id)
        if current is None:
            return "", ""
        return ("" if current.score is None else f"{current.score:.3f}"), current.status

    def changed(self):
        """IDs of the segments whose voxels differ from when they were last scored (new segments too)."""
        return [segment_id for segment_id, _ in segments(self.study.segmentation_node)
                if self.hashes.get(segment_id) != content_hash(self.study.segmentation_node, segment_id)]

    def update(self):
        """Score the changed segments again, recolour them and set their tags; {segment ID: LiveScore}."""
        present = {segment_id for segment_id, _ in segments(self.study.segmentation_node)}
        for gone in set(self.scores) - present:
            del self.scores[gone], self.hashes[gone]
        updated = {}
        for segment_id in self.changed():
            self.hashes[segment_id] = content_hash(self.study.segmentation_node, segment_id)
            self.scores[segment_id] = updated[segment_id] = self._rescore(segment_id)
        return updated

    def _rescore(self, segment_id):
        import pandas as pd
        import slicer
        from CTTimeLib.core.lesions import Lesion
        from CTTimeLib.run.study import extract_lesions
        from CTTimeLib.scoring.lesion_scores import score_table

        node = self.study.segmentation_node
        segment = node.GetSegmentation().GetSegment(segment_id)
        name, location = segment.GetName(), segment_location(segment)
        meta = {"patient_id": self.study.patient_id, "timepoint": self.study.timepoint}
        try:
            array = slicer.util.arrayFromSegmentBinaryLabelmap(node, segment_id, self.study.volume_node)
            mask = mask_on_image(array, self.image, name)
        except CTTimeError as exc:
            row = dict(meta, lesion_id=name, location=location, error=str(exc), error_kind=exc.kind)
        else:  # as Compute extracts it: its soft-tissue share measured, a mask that misses its lesion fails
            (row,) = extract_lesions(self.image, [Lesion(name, mask, location)], self.extractor, meta)
        scored = score_table(pd.DataFrame([row]), self.model, self.reference,
                             features_by=self.extractor.features_by).to_dict("records")[0]
        color_by_score(segment, scored, location, self.model.name)
        return _live(scored)


def _live(row):
    score = row.get("ct_time_score")
    finite = score is not None and np.isfinite(score)
    return LiveScore(float(score) if finite else None, str(row["ct_time_status"]) if finite else "failed",
                     str(row.get("error") or ""))
