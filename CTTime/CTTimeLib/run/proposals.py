"""Proposed lesions: one lesion per RECIST mark, its mask proposed by ``delineation``, tagged as proposed.

Shared by ``cttime delineate`` (``pipeline.delineate``), ``cttime score --marks``, the cohort's ``marks`` column, the batch script and the
Slicer module, so every one of them proposes and tags lesions alike.
"""

import numpy as np

from ..core.errors import CTTimeError
from ..core.geometry import lesion_mask
from ..core.lesions import MANUAL, Lesion, infer_location, join_warnings, normalize_location
from ..core.tags import DELINEATION_TAG, DELINEATION_WARNING_TAG, LOCATION_TAG


def propose_lesions(image, marks, locations=None, default_location=""):
    """A Lesion per mark on ``image``'s grid, tagged with its delineation and the proposal's warnings; a proposal
    that fails leaves its lesion empty, with the reason as its warning, and costs no other lesion. ``locations``
    (lesion ID -> location) overrides a mark's own location, else the name implies one, else the study's
    ``default_location``."""
    if not marks:
        return []
    from ..delineation import propose  # scipy: imported only when there is a mark

    lesions = []
    for mark in marks:
        given = (locations or {}).get(mark.lesion_id)
        location = normalize_location(given, mark.lesion_id) if given else mark.location or infer_location(
            mark.lesion_id, default_location)
        try:
            proposal = propose(image, mark)
            mask, delineation, warnings = proposal.mask, proposal.delineation, list(proposal.warnings)
        except Exception as exc:  # one mark's failure is that lesion's warning (and its extraction's error)
            mask, delineation = lesion_mask(np.zeros((1, 1, 1), np.uint8), image), "proposed (failed)"
            warnings = [f"Lesion {mark.lesion_id}: no mask could be proposed from its RECIST line "
                        f"({type(exc).__name__}: {exc}); delineate it by hand."]
        tags = {LOCATION_TAG: location, DELINEATION_TAG: delineation}
        if warnings:
            tags[DELINEATION_WARNING_TAG] = join_warnings(warnings)
        lesions.append(Lesion(mark.lesion_id, mask, location, tags))
    return lesions


def delineation_of(lesion):
    """(delineation, its warnings as one warning cell) of a lesion: "manual" for a lesion drawn by hand."""
    return lesion.tags.get(DELINEATION_TAG) or MANUAL, lesion.tags.get(DELINEATION_WARNING_TAG) or ""


def check_new_marks(held, marks, segmentation, marks_path):
    """Refuse marks of lesions the segmentation already holds (``held``: its lesion IDs), naming both."""
    twice = [mark.lesion_id for mark in marks if mark.lesion_id in set(held)]
    if twice:
        raise CTTimeError(f"Marks file {marks_path}: lesion(s) {', '.join(twice)} are already delineated in "
                          f"segmentation {segmentation}; give marks only for the lesions it lacks (or rename the "
                          "marks).", "input")

