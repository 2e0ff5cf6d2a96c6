"""How much the reference decides the score (issue #23): the standardisation interval on the 36 real sarcomas
(features by CTTime's engine, equal to pyradiomics'), lesions constructed at and far from 0.5, lesions pushed
outside the reference, and references that cannot carry an interval."""

import json

import numpy as np
import pandas as pd
import pytest

from CTTimeLib.cli import commands
from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.resources import DEMO_REFERENCE
from CTTimeLib.run import pipeline, run_folder, study
from CTTimeLib.run.summary import print_report
from CTTimeLib.scoring import lesion_scores, reference_interval, standardization
from CTTimeLib.scoring.signature import load_model

MODEL = load_model()
FEATURES = MODEL.features
P90 = "original_firstorder_90Percentile"


@pytest.fixture(scope="module")
def sarcomas(shared_sts):
    """The 36 sarcomas' raw rows (one lesion each), extracted by CTTime's engine."""
    from CTTimeLib.scoring.engine import EngineExtractor

    extractor, rows = EngineExtractor(), []
    for folder in sorted(p for p in shared_sts.iterdir() if (p / "CT_mask.nii.gz").exists()):
        case = pipeline.Case(folder.name, "BS", str(folder / "CT_image.nii.gz"), str(folder / "CT_mask.nii.gz"))
        rows += study.extract_case(case, extractor)
    table = pd.DataFrame(rows)
    assert len(table) == 36 and (table["error"] == "").all()
    return table


def _width(scored):
    return scored["ct_time_score_ref_high"] - scored["ct_time_score_ref_low"]


def test_on_the_36_sarcomas_intervals_contain_their_own_score_and_a_rerun_gives_the_same(sarcomas):
    scored = lesion_scores.score_table(sarcomas, MODEL, standardization.COHORT)
    score, low, high = (scored[c].to_numpy(float) for c in ("ct_time_score", "ct_time_score_ref_low",
                                                            "ct_time_score_ref_high"))
    assert np.isfinite(low).all() and (low <= score).all() and (score <= high).all()
    assert (high - low > 0.01).all()  # n = 36: every score moves with the reference
    again = lesion_scores.score_table(sarcomas, MODEL, standardization.COHORT)
    for column in reference_interval.COLUMNS:
        assert again[column].tolist() == scored[column].tolist(), column
    robust = [(s > 0.5) == (lo > 0.5) == (hi > 0.5) for s, lo, hi in zip(score, low, high)]
    assert scored["ct_time_status_reference_robust"].tolist() == robust and 0 < sum(robust) < 36


def test_a_lesions_interval_does_not_depend_on_the_lesions_scored_with_it(sarcomas):
    reference = standardization.load(DEMO_REFERENCE, FEATURES, MODEL.name)
    together = lesion_scores.score_table(sarcomas, MODEL, reference)
    alone = lesion_scores.score_table(sarcomas.iloc[[7]], MODEL, reference)
    for column in ("ct_time_score", "ct_time_score_ref_low", "ct_time_score_ref_high"):
        assert alone[column].iloc[0] == together[column].iloc[7], column


def test_the_median_width_falls_as_the_reference_grows(sarcomas):
    """References of 10, 20 and 36 sarcomas (a fixed random order); every lesion scored against each. The
    z-scores are those of the reference's means and SDs, untouched by the interval."""
    order = np.random.default_rng(23).permutation(len(sarcomas))
    medians = []
    for n in (10, 20, 36):
        reference = standardization.build(sarcomas.iloc[order[:n]], FEATURES, f"{n} sarcomas", MODEL.name, "test")
        assert reference.n_lesions == n
        scored = lesion_scores.score_table(sarcomas, MODEL, reference)
        for name in FEATURES:
            expected = (sarcomas[name].astype(float) - reference.means[name]) / reference.sds[name]
            assert scored[f"z_{name}"].tolist() == expected.tolist()
        medians.append(float(_width(scored).median()))
    assert medians[0] > medians[1] > medians[2], medians


def _lesions_at(z_by_feature, reference):
    """A lesions table with one lesion per z-vector (feature -> z per lesion) against ``reference``."""
    n = len(next(iter(z_by_feature.values())))
    columns = {name: [reference.means[name] + reference.sds[name] * z for z in z_by_feature.get(name, [0.0] * n)]
               for name in FEATURES}
    return pd.DataFrame(dict(columns, patient_id=[f"P{i}" for i in range(n)], timepoint="BS", lesion_id="L1",
                             error=""))


def test_a_lesion_at_half_is_not_reference_robust_one_far_from_it_is():
    reference = standardization.load(DEMO_REFERENCE, FEATURES, MODEL.name)
    at_half = -MODEL.intercept / dict(MODEL.coefficients)[P90]  # eta = 0: score 0.5
    scored = lesion_scores.score_table(_lesions_at({P90: [at_half, 2.5, -2.5]}, reference), MODEL, reference)
    assert scored["ct_time_score"].iloc[0] == pytest.approx(0.5, abs=1e-12)
    assert scored["ct_time_score"].iloc[1] < 0.01 and scored["ct_time_score"].iloc[2] > 0.99
    assert scored["ct_time_status_reference_robust"].tolist() == [False, True, True]
    assert scored["ct_time_score_ref_low"].iloc[0] < 0.45 and scored["ct_time_score_ref_high"].iloc[0] > 0.55


def test_lesions_beyond_three_sds_on_one_feature_are_flagged_with_its_name(tmp_path, capsys):
    """Four lesions pushed to z = +-3.5 on one feature each are outside the reference, warned about by name;
    the same lesions at z = 2.5 are not. At least half outside: the run says once that the reference does not
    describe its lesions."""
    reference = DEMO_REFERENCE
    loaded = standardization.load(reference, FEATURES, MODEL.name)
    pushed = {name: [3.5 * (-1) ** i if j == i else 0.3 for j in range(4)] + [0.2, -0.4]
              for i, name in enumerate(FEATURES)}
    inside = {name: [min(max(z, -2.5), 2.5) for z in values] for name, values in pushed.items()}
    result = pipeline.rescore(_lesions_at(pushed, loaded), tmp_path / "out", pipeline.Options(standardize=reference))
    lesions = result.lesions
    assert lesions["outside_reference"].tolist() == [True] * 4 + [False] * 2
    for i, name in enumerate(FEATURES):
        assert f"{name} z = {3.5 * (-1) ** i:+.1f}" in lesions["warning"].iloc[i]
        assert all(name not in cell for cell in lesions["warning"].iloc[[j for j in range(6) if j != i]])
    assert "outside the reference" not in " ".join(lesions["warning"].iloc[4:])
    mismatch = "4 of 6 scored lesions lie outside the reference"
    record = json.loads((tmp_path / "out" / run_folder.RUN_JSON).read_text())
    assert record["summary"]["reference_mismatch"].startswith(mismatch)
    assert "build one from your own cohort (at least 20 lesions, `cttime reference build`)" in \
        record["summary"]["reference_mismatch"]
    print_report(result)
    printed = capsys.readouterr()
    assert (printed.out + printed.err).count(mismatch) == 1
    written = pd.read_csv(tmp_path / "out" / run_folder.LESIONS_CSV)
    assert written["outside_reference"].tolist() == [True] * 4 + [False] * 2

    result = pipeline.rescore(_lesions_at(inside, loaded), tmp_path / "in", pipeline.Options(standardize=reference))
    assert result.lesions["outside_reference"].tolist() == [False] * 6
    assert "outside the reference" not in " ".join(result.lesions["warning"])
    assert "reference_mismatch" not in result.summary


def test_aggregates_and_rescore_fill_the_intervals(sarcomas, tmp_path):
    """A patient of one lesion: its aggregates' intervals are the lesion's. A patient of three: the minimum's
    interval is the percentiles of the per-draw minimum, which lies below each lesion's own draws. `cttime
    rescore` of the run's lesions.csv writes the same numbers."""
    table = sarcomas.copy()
    table.loc[:2, "patient_id"] = "THREE"
    table.loc[:2, "lesion_id"] = ["L1", "L2", "L3"]
    first = pipeline.rescore(table, tmp_path / "a", pipeline.Options(standardize=str(DEMO_REFERENCE)))
    lesions, patients = first.lesions, first.patients.set_index("patient_id")
    one = lesions.iloc[5]
    for name in ("min", "median", "mean", "max"):
        assert patients.loc[one["patient_id"], f"ct_time_{name}_ref_low"] == one["ct_time_score_ref_low"]
        assert patients.loc[one["patient_id"], f"ct_time_{name}_ref_high"] == one["ct_time_score_ref_high"]
    three = lesions[lesions["patient_id"] == "THREE"]
    reference = standardization.load(DEMO_REFERENCE, FEATURES, MODEL.name)
    draws = np.vstack(list(reference_interval.draw_scores(table.iloc[:3], reference, MODEL).values()))
    low, high = np.percentile(draws.min(axis=0), [2.5, 97.5])
    assert (patients.loc["THREE", "ct_time_min_ref_low"], patients.loc["THREE", "ct_time_min_ref_high"]) == (low, high)
    assert low <= three["ct_time_score_ref_low"].min() and high <= three["ct_time_score_ref_high"].min()
    code = commands.main(["rescore", str(tmp_path / "a" / "lesions.csv"), "--reference", str(DEMO_REFERENCE),
                          "--out", str(tmp_path / "b")])
    assert code == 0
    again = pd.read_csv(tmp_path / "b" / "lesions.csv", dtype={"patient_id": str})
    written = pd.read_csv(tmp_path / "a" / "lesions.csv", dtype={"patient_id": str})
    for column in reference_interval.COLUMNS:
        assert again[column].tolist() == written[column].tolist(), column
    assert pd.read_csv(tmp_path / "b" / "patients.csv")["ct_time_min_ref_low"].notna().all()


@pytest.mark.parametrize("edit", [lambda p: p.pop("n_lesions"), lambda p: p.update(n_lesions=1)],
                         ids=["without n", "n = 1"])
def test_a_reference_without_n_is_refused_with_a_message(edit, tmp_path, capsys):
    payload = json.loads(DEMO_REFERENCE.read_text())
    edit(payload)
    path = tmp_path / "old-reference.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(CTTimeError, match="cttime reference build") as refused:
        standardization.load(path, FEATURES, MODEL.name)
    assert str(path) in str(refused.value)
    lesions = _lesions_at({P90: [0.0, 1.0]}, standardization.load(DEMO_REFERENCE, FEATURES, MODEL.name))
    lesions.to_csv(tmp_path / "lesions.csv", index=False)
    code = commands.main(["rescore", str(tmp_path / "lesions.csv"), "--reference", str(path), "--out",
                          str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err and "`cttime reference build`" in err and "Traceback" not in err


def test_reference_build_keeps_the_quantiles_and_old_references_still_load(sarcomas, tmp_path):
    reference = standardization.build(sarcomas, FEATURES, "sarcomas", MODEL.name, "test")
    path = tmp_path / "reference.json"
    path.write_text(reference.to_json())
    loaded = standardization.load(path, FEATURES, MODEL.name)
    quantiles = loaded.extra["quantiles"][P90]
    assert quantiles["min"] == sarcomas[P90].min() and quantiles["max"] == sarcomas[P90].max()
    assert quantiles["min"] < quantiles["p2.5"] < quantiles["median"] < quantiles["p97.5"] < quantiles["max"]
    assert "quantiles" not in json.loads(DEMO_REFERENCE.read_text())  # an old reference
    assert standardization.load(DEMO_REFERENCE, FEATURES, MODEL.name).n_lesions == 36
