"""Delineation robustness on real CTs: perturbed delineations, score intervals, robust statuses, their outputs."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from conftest import REPO, SAMPLE_CASES, SAMPLE_DATA

from CTTimeLib.core import tags
from CTTimeLib.core.resources import DEMO_REFERENCE
from CTTimeLib.io.images import read_image
from CTTimeLib.io.segmentations import read_lesions
from CTTimeLib.run import pipeline
from CTTimeLib.scoring import harmonization, robustness
from CTTimeLib.scoring.lesion_scores import score_table
from CTTimeLib.scoring.signature import load_model
from CTTimeLib.scoring.standardization import COHORT, from_lesions

CTTIME = [sys.executable, "-m", "CTTimeLib.cli"]
ENV = dict(os.environ, PYTHONPATH=str(REPO / "CTTime"))
N = 4
MODEL = load_model()
Z = [f"z_{name}" for name in MODEL.features]


def _lesion(folder):
    image = read_image(folder / "CT_image.nii.gz")
    return image, read_lesions(folder / "CT_mask.nii.gz", image)[0]


def _cases(with_follow_up, tmp_path):
    """The sample cases (batch A) and, optionally, STS_019 again cut into two slab lesions (batch B)."""
    cases = [pipeline.Case(name, "BS", str(SAMPLE_DATA / name / "CT_image.nii.gz"),
                           str(SAMPLE_DATA / name / "CT_mask.nii.gz"), extras={"batch": "A"}) for name in SAMPLE_CASES]
    if with_follow_up:
        mask = sitk.ReadImage(str(SAMPLE_DATA / "STS_019" / "CT_mask.nii.gz"))
        values = sitk.GetArrayFromImage(mask) > 0
        middle = int(np.flatnonzero(values.any(axis=(1, 2))).mean())
        labels = values.astype(np.uint8)
        labels[middle:] *= 2
        out = sitk.GetImageFromArray(labels)
        out.CopyInformation(mask)
        sitk.WriteImage(out, str(tmp_path / "slabs.nii.gz"))
        cases.append(pipeline.Case("STS_019", "FU", cases[1].image, str(tmp_path / "slabs.nii.gz"),
                                   extras={"batch": "B"}))
    return cases


@pytest.fixture(scope="module")
def cohort_run(tmp_path_factory):
    """`cttime cohort --perturbations 4` on the sample cases and a two-lesion follow-up, as a user runs it."""
    folder = tmp_path_factory.mktemp("robust-cohort")
    cases = _cases(True, folder)
    pd.DataFrame([dict(patient_id=c.patient_id, timepoint=c.timepoint, image=c.image, segmentation=c.segmentation,
                       batch=c.extras["batch"]) for c in cases]).to_csv(folder / "manifest.csv", index=False)
    done = subprocess.run(CTTIME + ["cohort", str(folder / "manifest.csv"), "--standardize", "cohort", "--out",
                                    str(folder / "out"), "--workers", "1", "--perturbations", str(N), "--quiet"],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr
    return folder / "out"


# ---------------------------------------------------------------- the perturbed delineations


def test_perturbations_depend_only_on_the_lesion_and_their_number():
    image, lesion = _lesion(SAMPLE_DATA / "STS_019")
    first, again = robustness.Perturbations(image, lesion.mask), robustness.Perturbations(image, lesion.mask)
    wider = robustness.Perturbations(image, lesion.mask, max_level=3)  # another crop: the same perturbations
    for index in range(6):
        mask = sitk.GetArrayFromImage(first.mask(index))
        assert np.array_equal(mask, sitk.GetArrayFromImage(again.mask(index)))
        assert np.array_equal(mask, sitk.GetArrayFromImage(wider.mask(index)))
        assert first.mask(index).GetOrigin() == wider.mask(index).GetOrigin()
    assert not np.array_equal(first.array(0), first.array(2))  # each pair its own random numbers


def test_perturbations_move_the_surface_by_about_a_voxel_both_ways():
    image, lesion = _lesion(SAMPLE_DATA / "STS_025")
    generator = robustness.Perturbations(image, lesion.mask, max_level=2)
    volume = generator.inside.sum()
    changes = []
    for index in range(8):
        perturbed = generator.array(index)
        changed = perturbed != generator.inside
        assert changed.any()
        assert np.abs(generator.phi[changed]).max() < robustness.REACH  # never further than REACH voxels
        changes.append((perturbed.sum() - volume) / volume)
        dice = 2 * (perturbed & generator.inside).sum() / (perturbed.sum() + volume)
        assert dice > 0.85
    assert min(changes) < 0 < max(changes)  # grown and shrunk delineations
    assert max(abs(c) for c in changes) < 0.3


def test_a_larger_magnitude_moves_each_delineation_further():
    """Common random numbers: at level 2 each perturbation changes every voxel level 1 changed, and more."""
    for name in SAMPLE_CASES:
        image, lesion = _lesion(SAMPLE_DATA / name)
        generator = robustness.Perturbations(image, lesion.mask, max_level=2)
        for index in range(4):
            level1 = generator.array(index, 1) != generator.inside
            level2 = generator.array(index, 2) != generator.inside
            assert np.all(level2[level1]) and level2.sum() > level1.sum()


def test_interval_contains_the_score_and_never_narrows_as_the_magnitude_grows(shared_sts, extractor):
    """On real sarcomas: the interval at magnitude K (levels 1..K) holds the lesion's score and the interval at
    magnitude K-1, each level computed afresh."""
    signature = extractor.restricted(MODEL.features)
    reference = from_lesions(_demo_frame(), MODEL.features, "demo")
    for name in ("STS_002", "STS_035", "STS_042"):
        image, lesion = _lesion(shared_sts / name)
        own = pd.DataFrame([extractor.extract(image, lesion.mask)])
        score = float(MODEL.score(reference.standardize(own, MODEL.features)).iloc[0])
        previous, widths, scores = None, [], []
        for level in (1, 2, 3):
            payload = robustness.perturbed_features(image, lesion.mask, name, signature, N, level=level)
            frame = robustness.perturbed_frame(payload, MODEL.features)
            scores += list(MODEL.score(reference.standardize(frame, MODEL.features)))
            low, high, _ = robustness.interval(score, scores, MODEL.threshold)
            assert low <= score <= high
            if previous is not None:
                assert low <= previous[0] and high >= previous[1]
            previous = (low, high)
            widths.append(high - low)
        assert widths[-1] > widths[0]  # a larger magnitude reaches further


def _demo_frame():
    """Two pseudo-lesions whose mean and sample SD are the demo reference's (a Reference via from_lesions)."""
    features = json.load(open(DEMO_REFERENCE))["features"]
    half = {name: features[name]["sd"] / np.sqrt(2) for name in MODEL.features}
    return pd.DataFrame([{n: features[n]["mean"] + sign * half[n] for n in MODEL.features} for sign in (1, -1)])


def test_interval_logic():
    assert robustness.interval(0.6, [0.55, 0.7], 0.5) == (0.55, 0.7, True)
    assert robustness.interval(0.6, [0.65, 0.7], 0.5) == (0.6, 0.7, True)  # widened to hold the score
    assert robustness.interval(0.6, [0.45, 0.7], 0.5)[2] is False
    assert robustness.interval(0.5, [0.45, 0.49], 0.5)[2] is True  # 0.5 itself is uninflamed
    assert robustness.interval(0.3, [0.2, np.nan], 0.5) == (0.2, 0.3, False)  # a perturbation failed
    assert robustness.interval(np.nan, [0.2], 0.5)[2] is None
    assert robustness.interval(0.3, [], 0.5)[2] is None


# ---------------------------------------------------------------- runs


def test_rerun_gives_the_same_numbers_and_more_perturbations_extend_the_first(tmp_path):
    cases = _cases(False, tmp_path)[:2]
    options = pipeline.Options(standardize=str(DEMO_REFERENCE), perturbations=N, cache=False,
                               write_segmentations=False)
    first = pipeline.run(cases, tmp_path / "a", options)
    second = pipeline.run(cases, tmp_path / "b", options)
    for name in ("lesions.csv", "perturbations.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (first.lesions["ct_time_perturbations"] == N).all()
    more = pipeline.run(cases, tmp_path / "a", pipeline.Options(standardize=str(DEMO_REFERENCE), perturbations=N + 2,
                                                                write_segmentations=False))
    extended = pd.read_csv(tmp_path / "a" / "perturbations.csv")
    original = pd.read_csv(tmp_path / "b" / "perturbations.csv")
    assert len(extended) == len(original) + 2 * len(cases)
    pd.testing.assert_frame_equal(extended[extended["perturbation"] <= N].reset_index(drop=True), original)
    assert (more.lesions["ct_time_score_low"] <= second.lesions["ct_time_score_low"]).all()
    assert (more.lesions["ct_time_score_high"] >= second.lesions["ct_time_score_high"]).all()


def test_perturbed_lesions_do_not_change_the_cohort_z_scores(cohort_run, tmp_path):
    cases = _cases(True, tmp_path)
    pipeline.run(cases, tmp_path / "plain", pipeline.Options(perturbations=0, write_segmentations=False))
    plain = pd.read_csv(tmp_path / "plain" / "lesions.csv", dtype={"lesion_id": str})
    perturbed = pd.read_csv(cohort_run / "lesions.csv", dtype={"lesion_id": str})
    assert perturbed["ct_time_perturbations"].eq(N).all() and plain["ct_time_perturbations"].eq(0).all()
    np.testing.assert_array_equal(perturbed[Z + ["ct_time_score"]].to_numpy(float),
                                  plain[Z + ["ct_time_score"]].to_numpy(float))
    assert plain["ct_time_score_low"].isna().all()


def test_a_perturbation_equal_to_its_lesion_gets_its_score(cohort_run):
    """The perturbed delineations are standardised like their lesion: per group, and after the lesion's ComBat."""
    table = pd.read_csv(cohort_run / "lesions.csv", dtype={"lesion_id": str})
    table[robustness.PERTURBED] = [[{n: row[n] for n in MODEL.features}] for row in table.to_dict("records")]
    for options in (dict(), dict(group_by=("timepoint",)), dict(harmonize_by="batch"),
                    dict(standardize=from_lesions(_demo_frame(), MODEL.features, "demo"))):
        options.setdefault("standardize", COHORT)
        scored = score_table(table.drop(columns=Z + ["ct_time_score"]), MODEL, **options)
        np.testing.assert_allclose(scored["ct_time_score_low"], scored["ct_time_score"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(scored["ct_time_score_high"], scored["ct_time_score"], rtol=0, atol=1e-9)


def test_combat_as_fitted_reproduces_the_harmonised_rows(cohort_run):
    table = pd.read_csv(cohort_run / "lesions.csv", dtype={"lesion_id": str})
    raw = table[MODEL.features]
    corrected = harmonization.harmonize(table, raw, table.index, "batch")
    correct = harmonization.as_fitted(raw, corrected, table["batch"])
    for batch in ("A", "B"):
        rows = table.index[table["batch"] == batch]
        np.testing.assert_allclose(correct(raw.loc[rows], batch), corrected.loc[rows], rtol=1e-9)
    assert not np.allclose(corrected, raw)


def test_a_lesion_at_the_threshold_is_uncertain_and_one_far_from_it_robust(cohort_run, tmp_path):
    """References built so that a real lesion's own score sits at 0.5, or far below it, then `cttime rescore` with
    the run's perturbations.csv (the perturbed features are not extracted again)."""
    lesions = pd.read_csv(cohort_run / "lesions.csv", dtype={"lesion_id": str})
    perturbed = pd.read_csv(cohort_run / "perturbations.csv", dtype={"lesion_id": str})
    row = lesions[lesions["patient_id"] == "STS_025"].iloc[0]
    mine = perturbed[perturbed["patient_id"] == "STS_025"]
    reference = json.load(open(DEMO_REFERENCE))
    percentile, b90 = "original_firstorder_90Percentile", dict(MODEL.coefficients)["original_firstorder_90Percentile"]
    sd = reference["features"][percentile]["sd"]

    def rescore(target_eta, out):
        """Reference whose means are this lesion's features but 90Percentile's, set for eta = target_eta."""
        features = {n: {"mean": float(row[n]), "sd": reference["features"][n]["sd"]} for n in MODEL.features}
        features[percentile]["mean"] = float(row[percentile] - (target_eta - MODEL.intercept) / b90 * sd)
        path = tmp_path / f"{out}.json"
        path.write_text(json.dumps(dict(reference, features=features)))
        done = subprocess.run(CTTIME + ["rescore", str(cohort_run / "lesions.csv"), "--reference", str(path),
                                        "--out", str(tmp_path / out)], capture_output=True, text=True, env=ENV,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        result = pd.read_csv(tmp_path / out / "lesions.csv", dtype={"lesion_id": str}).set_index("patient_id")
        return result.loc["STS_025"] if "STS_025" in result.index else None, tmp_path / out

    at, folder = rescore(-1e-9, "at")  # eta just below 0: score just above 0.5, inflamed
    assert abs(at["ct_time_score"] - 0.5) < 1e-6 and at["ct_time_status"] == "inflamed"
    rescored = pd.read_csv(folder / "perturbations.csv", dtype={"lesion_id": str})
    scores = rescored[rescored["patient_id"] == "STS_025"]["ct_time_score"]
    assert len(scores) == len(mine) == N and (scores < 0.5).any()  # some re-delineation is uninflamed
    assert not at["ct_time_status_robust"] and at["ct_time_score_low"] < 0.5 < at["ct_time_score_high"]
    patients = pd.read_csv(folder / "patients.csv").set_index("patient_id")
    assert not patients.loc["STS_025", "status_min_robust"]
    far, folder = rescore(4.0, "far")  # eta 4: score 0.018
    assert far["ct_time_score"] < 0.02 and far["ct_time_status_robust"] and far["ct_time_score_high"] < 0.5
    assert pd.read_csv(folder / "patients.csv").set_index("patient_id").loc["STS_025", "status_min_robust"]


def test_outputs_carry_the_intervals(cohort_run):
    lesions = pd.read_csv(cohort_run / "lesions.csv", dtype={"lesion_id": str})
    perturbed = pd.read_csv(cohort_run / "perturbations.csv", dtype={"lesion_id": str})
    columns = list(lesions.columns)
    assert columns[columns.index("ct_time_status") + 1:][:4] == list(robustness.COLUMNS)
    assert robustness.PERTURBED not in columns and all(len(str(v)) < 400 for v in lesions.iloc[0])
    assert len(perturbed) == N * len(lesions) and (perturbed["error"].fillna("") == "").all()
    for row in lesions.to_dict("records"):
        mine = perturbed[(perturbed["patient_id"] == row["patient_id"]) & (perturbed["timepoint"] == row["timepoint"])
                         & (perturbed["lesion_id"] == row["lesion_id"])]
        assert list(mine["perturbation"]) == list(range(1, N + 1))
        assert row["ct_time_score_low"] == min(row["ct_time_score"], mine["ct_time_score"].min())
        assert row["ct_time_score_high"] == max(row["ct_time_score"], mine["ct_time_score"].max())
        assert row["ct_time_status_robust"] == (
            (mine["ct_time_score"] > 0.5) == (row["ct_time_score"] > 0.5)).all()
    patients = pd.read_csv(cohort_run / "patients.csv")
    assert {f"status_{n}_robust" for n in ("mean", "median", "min", "max")} <= set(patients.columns)
    run = json.loads((cohort_run / "run.json").read_text())
    assert run["robustness"]["perturbations"] == N and run["robustness"]["method"] == robustness.METHOD
    import slicerio

    segmentation = slicerio.read_segmentation(str(cohort_run / "STS_019_FU_cttime.seg.nrrd"))
    follow_up = lesions[lesions["timepoint"] == "FU"].set_index("lesion_id")
    for segment in segmentation["segments"]:
        row = follow_up.loc[segment["name"]]
        low, high = map(float, segment["tags"][tags.SCORE_INTERVAL_TAG].split("-"))
        assert abs(low - row["ct_time_score_low"]) < 1e-6 and abs(high - row["ct_time_score_high"]) < 1e-6
        assert segment["tags"][tags.STATUS_ROBUST_TAG] == ("robust" if row["ct_time_status_robust"] else "uncertain")


def test_rescore_without_perturbations_leaves_intervals_empty_and_says_so(cohort_run, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "lesions.csv").write_bytes((cohort_run / "lesions.csv").read_bytes())
    done = subprocess.run(CTTIME + ["rescore", str(tmp_path / "in" / "lesions.csv"), "--standardize", "cohort",
                                    "--out", str(tmp_path / "out")], capture_output=True, text=True, env=ENV,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "perturbations.csv" in done.stderr and "left empty" in done.stderr
    rescored = pd.read_csv(tmp_path / "out" / "lesions.csv")
    assert rescored["ct_time_score_low"].isna().all() and (rescored["ct_time_perturbations"] == 0).all()
    assert rescored["ct_time_score"].notna().all()
    assert not (tmp_path / "out" / "perturbations.csv").exists()
    assert "perturbations.csv" in " ".join(json.loads((tmp_path / "out" / "run.json").read_text())["warnings"])
