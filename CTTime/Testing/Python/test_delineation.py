"""Lesion masks proposed from RECIST lines (CTTimeLib.delineation) on the 36 real sarcoma CTs: lines derived from
the manual masks, the proposals' Dice, scores and statuses against the manual masks', jittered lines, wrong marks
(flagged, never an exception) and determinism."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from CTTimeLib.core.geometry import grid_offset, on_image_grid, whole_mask
from CTTimeLib.core.lesions import Lesion
from CTTimeLib.core.resources import DEMO_REFERENCE
from CTTimeLib.delineation import ALGORITHM_NAME, ALGORITHM_VERSION, Proposal, marks_from_mask, propose
from CTTimeLib.delineation.lines import jittered
from CTTimeLib.io.images import read_image
from CTTimeLib.io.marks import Mark
from CTTimeLib.run.study import extract_lesions
from CTTimeLib.scoring.engine import EngineExtractor
from CTTimeLib.scoring.lesion_scores import resolve_standardization, score_table
from CTTimeLib.scoring.signature import load_model


@pytest.fixture(scope="module")
def sarcomas(shared_sts):
    """(name, CT, manual lesion mask, RECIST long axis derived from the mask) of each of the 36 sarcomas."""
    cases = []
    for folder in sorted(shared_sts.glob("STS_*")):
        image = read_image(folder / "CT_image.nii.gz")
        manual = on_image_grid(sitk.Cast(sitk.ReadImage(str(folder / "CT_mask.nii.gz")) > 0, sitk.sitkUInt8), image)
        cases.append((folder.name, image, manual, replace(marks_from_mask(manual, image, folder.name),
                                                          short_axis=None)))
    assert len(cases) == 36
    return cases


@pytest.fixture(scope="module")
def proposals(sarcomas):
    return {name: propose(image, mark) for name, image, _, mark in sarcomas}


def whole(mask, image):
    return sitk.GetArrayFromImage(whole_mask(mask, image)) > 0


def dice(a, b):
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_marks_from_mask_span_the_largest_axial_diameter(sarcomas):
    """The derived line lies on one axial slice, and its length is the lesion's largest axial diameter as CTTime's
    engine measures it (Maximum2DDiameterSlice, from the mask's surface mesh: about a voxel longer than the line
    between boundary voxel centres)."""
    extractor = EngineExtractor()
    for name, image, manual, mark in sarcomas[:6]:
        ends = [image.TransformPhysicalPointToContinuousIndex(point) for point in (mark.start, mark.end)]
        assert ends[0][2] == pytest.approx(ends[1][2], abs=1e-6)
        length = float(np.linalg.norm(np.subtract(mark.end, mark.start)))
        row, = extract_lesions(image, [Lesion(name, manual)], extractor, {})
        assert 0 <= row["original_shape_Maximum2DDiameterSlice"] - length <= 2 * max(image.GetSpacing()[:2]), name
    full = marks_from_mask(sarcomas[0][2], sarcomas[0][1], "L1")
    assert full.lesion_id == "L1" and full.short_axis is not None
    assert marks_from_mask(sitk.Image(sarcomas[0][2]) * 0, sarcomas[0][1], "empty") is None


def test_proposals_match_the_manual_masks(sarcomas, proposals):
    """Median Dice >= 0.80 over the 36 lesions from their long axes alone (the issue's baseline: about 0.69); each
    proposal is a lesion mask on the CT's grid, says it was proposed and is held against its line."""
    scores = {}
    for name, image, manual, mark in sarcomas:
        proposal = proposals[name]
        assert isinstance(proposal, Proposal) and proposal.lesion_id == name
        assert proposal.delineation == "proposed from RECIST line"
        assert proposal.mask.GetPixelID() == sitk.sitkUInt8 and grid_offset(proposal.mask, image) is not None
        assert proposal.line_length_mm == pytest.approx(np.linalg.norm(np.subtract(mark.end, mark.start)))
        if not proposal.warnings:
            assert abs(proposal.diameter_mm - proposal.line_length_mm) <= 0.2 * proposal.line_length_mm
        scores[name] = dice(whole(manual, image), whole(proposal.mask, image))
    assert np.median(list(scores.values())) >= 0.80, scores
    assert min(scores.values()) > 0.3, scores
    unflagged = [name for name in scores if not proposals[name].warnings]
    assert len(unflagged) >= 34 and min(scores[name] for name in unflagged) > 0.6


def test_proposals_from_both_axes(sarcomas):
    """The short axis, where drawn, sets the proposal's width: median Dice >= 0.78 (0.81 measured)."""
    scores = []
    for name, image, manual, _ in sarcomas:
        mark = marks_from_mask(manual, image, name)
        proposal = propose(image, mark)
        assert proposal.delineation == "proposed from RECIST long and short axes"
        scores.append(dice(whole(manual, image), whole(proposal.mask, image)))
    assert np.median(scores) >= 0.78, scores


def test_proposed_scores_and_status_follow_the_manual_masks(sarcomas, proposals):
    """Scored in-process with CTTime's engine and the stored demo reference (each lesion's score its own), the
    proposals' CT-TIME status equals the manual masks' for at least 28 of 36 lesions (30 measured), and the
    median |score difference| is at most 0.10 (0.07 measured)."""
    extractor = EngineExtractor()
    model = load_model()
    rows = []
    for name, image, manual, _ in sarcomas:
        rows += extract_lesions(image, [Lesion(name, manual)], extractor, {"drawn": "manual"})
        rows += extract_lesions(image, [Lesion(name, proposals[name].mask)], extractor, {"drawn": "proposed"})
    table = score_table(pd.DataFrame(rows), model, resolve_standardization(str(DEMO_REFERENCE), model),
                        features_by=extractor.features_by)
    assert (table["error"] == "").all(), table["error"].tolist()
    by = table.pivot(index="lesion_id", columns="drawn", values=["ct_time_score", "ct_time_status"])
    agree = int((by["ct_time_status"]["manual"] == by["ct_time_status"]["proposed"]).sum())
    difference = (by["ct_time_score"]["manual"] - by["ct_time_score"]["proposed"]).abs()
    assert agree >= 28, by
    assert difference.median() <= 0.10, difference.sort_values().tolist()


def test_jittered_lines(sarcomas):
    """Each end moved 2 mm in a random in-plane direction (seeded): median Dice still >= 0.78."""
    rng = np.random.default_rng(20)
    scores = []
    for name, image, manual, mark in sarcomas:
        moved = jittered(mark, image, 2.0, rng)
        assert np.linalg.norm(np.subtract(moved.start, mark.start)) == pytest.approx(2.0)
        scores.append(dice(whole(manual, image), whole(propose(image, moved).mask, image)))
    assert np.median(scores) >= 0.78, scores


def two_lesion_ct(image):
    """A CT holding the lesion twice: the sarcoma's CT beside a copy of itself."""
    values = sitk.GetArrayFromImage(image)
    pair = sitk.GetImageFromArray(np.concatenate([values, values], axis=2))
    pair.SetSpacing(image.GetSpacing())
    pair.SetOrigin(image.GetOrigin())
    pair.SetDirection(image.GetDirection())
    return pair


def test_wrong_marks_give_flagged_proposals_never_exceptions(shared_sts):
    """A line in air, in bone, across two lesions, across slices, of no length, outside the CT, with an end that is
    not a number, a metre long: each gives a proposal (a lesion
    mask on the CT's grid) with warnings that name the lesion and say what to check."""
    image = read_image(shared_sts / "STS_008" / "CT_image.nii.gz")
    manual = on_image_grid(sitk.Cast(sitk.ReadImage(str(shared_sts / "STS_008" / "CT_mask.nii.gz")) > 0,
                                      sitk.sitkUInt8), image)
    values = sitk.GetArrayFromImage(image)
    lesion = whole(manual, image)
    k = int(lesion.sum(axis=(1, 2)).argmax())

    def point(k, j, i, on=image):
        return on.TransformContinuousIndexToPhysicalPoint([float(i), float(j), float(k)])

    across = int(np.ceil(30 / image.GetSpacing()[0]))  # 30 mm of air beside the body, on the lesion's slice
    j, i = next((j, i) for j in range(values.shape[1]) for i in range(values.shape[2] - across)
                if (values[k, j, i:i + across + 1] < -900).all())
    bone = sitk.BinaryThreshold(image, 400, 4000)
    bone_mark = marks_from_mask(sitk.Cast(bone, sitk.sitkUInt8), image, "femur")
    centre = np.argwhere(lesion[k]).mean(axis=0)
    pair = two_lesion_ct(image)
    width = values.shape[2]
    marks = {
        "air": (image, Mark("air", point(k, j, i), point(k, j, i + across))),
        "bone": (image, replace(bone_mark, lesion_id="bone", short_axis=None)),
        "pair": (pair, Mark("pair", point(k, *centre, on=pair), point(k, centre[0], centre[1] + width, on=pair))),
        "oblique": (image, Mark("oblique", point(k - 3, *centre), point(k + 3, centre[0], centre[1] + 20))),
        "dot": (image, Mark("dot", point(k, *centre), point(k, *centre))),
        "outside": (image, Mark("outside", (1e4, 1e4, 1e4), (1e4 + 30, 1e4, 1e4))),
        "nan": (image, Mark("nan", (float("nan"),) * 3, point(k, *centre))),
        "long": (image, Mark("long", point(k, *centre), tuple(np.add(point(k, *centre), 1000.0)))),
    }
    for name, (ct, mark) in marks.items():
        proposal = propose(ct, mark)
        assert proposal.warnings, name
        for text in proposal.warnings:  # each names the lesion and says what to check or do
            assert text.startswith(f"Lesion {name}: ") and ("check" in text or "draw" in text), text
        assert proposal.mask.GetPixelID() == sitk.sitkUInt8 and grid_offset(proposal.mask, ct) is not None
    assert "air or lung" in " ".join(propose(image, marks["air"][1]).warnings)
    assert "bone" in " ".join(propose(image, marks["bone"][1]).warnings)
    assert "one lesion, not two" in " ".join(propose(pair, marks["pair"][1]).warnings)
    assert "different axial slices" in " ".join(propose(image, marks["oblique"][1]).warnings)
    for name in ("dot", "outside", "nan"):
        assert not sitk.GetArrayViewFromImage(propose(image, marks[name][1]).mask).any()
    for ct in (image[:, :, k:k + 1], image[40:43, 40:42, k:k + 2]):  # a single slice; a CT smaller than the line
        mark = marks_from_mask(manual, image, "cut")
        assert isinstance(propose(ct, mark), Proposal)


def test_proposals_are_deterministic(sarcomas, proposals):
    for name, image, _, mark in sarcomas[:3]:
        again = propose(image, mark)
        first = proposals[name]
        assert again.mask.GetOrigin() == first.mask.GetOrigin()
        assert np.array_equal(sitk.GetArrayViewFromImage(again.mask), sitk.GetArrayViewFromImage(first.mask))
        assert (again.warnings, again.diameter_mm) == (first.warnings, first.diameter_mm)


def test_algorithm_identity_for_dicom_seg():
    assert ALGORITHM_NAME == "CTTime RECIST proposal" and ALGORITHM_VERSION
