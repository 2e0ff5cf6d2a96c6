"""Cohort z-scoring equals R's scale(); references are built, stored, validated (on the scale of CT-TIME's
features) and flagged when weak."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.resources import DEMO_REFERENCE
from CTTimeLib.run import pipeline
from CTTimeLib.scoring import lesion_scores, standardization
from CTTimeLib.scoring.signature import load_model

MODEL = load_model()
FEATURES = MODEL.features
DEMO = json.loads(DEMO_REFERENCE.read_text())["features"]


def lesion_table(values):
    """A lesions table whose four signature features are ``values``, standardised and put on the demo reference's
    scale (mean, and SD times 1 to 1.3), so that z-scores are those of ``values``."""
    v = np.asarray(values, float)
    spread = v.std(ddof=1) if len(v) > 1 and v.std() > 0 else 1.0
    columns = {name: DEMO[name]["mean"] + DEMO[name]["sd"] * (1 + 0.1 * i) * (v - v.mean()) / spread
               for i, name in enumerate(FEATURES)}
    return pd.DataFrame(dict(columns, patient_id=[f"P{i}" for i in range(len(values))], timepoint="BS",
                             lesion_id="L1"))


def test_cohort_z_scores_equal_r_scale():
    # R: scale(c(1, 2, 3, 4)) -> -1.1618950038622251 -0.3872983346207417 0.3872983346207417 1.1618950038622251
    r_scale = [-1.1618950038622251, -0.3872983346207417, 0.3872983346207417, 1.1618950038622251]
    scored = lesion_scores.score_table(lesion_table([1, 2, 3, 4]), MODEL, pipeline.COHORT)
    for name in FEATURES:
        np.testing.assert_allclose(scored[f"z_{name}"], r_scale, rtol=0, atol=1e-15)
    assert scored["standardization"].str.startswith("cohort z-score over 4 lesions").all()
    assert scored["standardization"].str.contains("NOT CLINICALLY CALIBRATED").all()  # 4 < 20 lesions


def test_cohort_groups_are_z_scored_separately():
    table = pd.concat([lesion_table([1, 2, 3]).assign(timepoint="BS"),
                       lesion_table([10, 20, 30]).assign(timepoint="FU")], ignore_index=True)
    scored = lesion_scores.score_table(table, MODEL, pipeline.COHORT, group_by=("timepoint",))
    z = scored[f"z_{FEATURES[0]}"].to_numpy()
    np.testing.assert_allclose(z[:3], [-1, 0, 1], atol=1e-15)
    np.testing.assert_allclose(z[3:], [-1, 0, 1], atol=1e-15)
    assert "timepoint=FU" in scored["standardization"].iloc[4]


def test_cohort_of_one_lesion_and_flat_features_are_errors():
    with pytest.raises(CTTimeError, match="at least 2"):
        lesion_scores.score_table(lesion_table([1]), MODEL, pipeline.COHORT)
    with pytest.raises(CTTimeError, match="SD 0"):
        lesion_scores.score_table(lesion_table([2, 2, 2]), MODEL, pipeline.COHORT)


def test_failed_lesions_are_left_out_of_the_cohort_statistics():
    table = lesion_table([1, 2, 3, 4, 1000])
    table.loc[4, "error"] = "Lesion L1 is empty"
    table["error"] = table["error"].fillna("")
    scored = lesion_scores.score_table(table, MODEL, pipeline.COHORT)
    np.testing.assert_allclose(scored[f"z_{FEATURES[0]}"][:4], [-1.1618950038622251, -0.3872983346207417,
                                                                0.3872983346207417, 1.1618950038622251], atol=1e-15)
    assert np.isnan(scored["ct_time_score"][4]) and scored["ct_time_status"][4] is None


def test_reference_round_trip_and_scoring(tmp_path):
    table = lesion_table(np.linspace(0, 1, 25))
    reference = standardization.build(table, FEATURES, "unit cohort", MODEL.name, "test")
    path = tmp_path / "ref.json"
    path.write_text(reference.to_json())
    loaded = standardization.load(path, FEATURES, MODEL.name)
    assert loaded.n_lesions == 25 and loaded.warning is None and loaded.extra["model"] == "CT-TIME"
    assert loaded.means == pytest.approx(reference.means) and loaded.sds == pytest.approx(reference.sds)
    scored = lesion_scores.score_table(table, MODEL, loaded)
    cohort = lesion_scores.score_table(table, MODEL, pipeline.COHORT)
    np.testing.assert_allclose(scored["ct_time_score"], cohort["ct_time_score"], atol=1e-12)
    assert scored["standardization"].iloc[0] == "reference unit cohort (n=25 lesions)"


def test_demo_reference_is_flagged_everywhere():
    reference = standardization.load(DEMO_REFERENCE, FEATURES, MODEL.name)
    assert reference.is_demo and reference.n_lesions == 36
    assert "NOT CLINICALLY CALIBRATED: demo reference" in reference.describe()


def test_small_reference_is_flagged(tmp_path):
    reference = standardization.build(lesion_table(np.arange(5.0)), FEATURES, "five", MODEL.name, "test")
    assert reference.warning == "NOT CLINICALLY CALIBRATED: only 5 lesions (< 20)"


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("source"), "required key 'source'"),
    (lambda d: d["features"].pop(FEATURES[2]), f"no mean/sd for {FEATURES[2]}"),
    (lambda d: d["features"][FEATURES[0]].update(sd=0), "SD .* must be positive"),
    (lambda d: d.update(model="another-model"), "made for model 'another-model'"),
    (lambda d: d["features"][FEATURES[1]].update(mean="NaN"), "not a finite number"),
])
def test_invalid_references_are_refused_with_the_reason(tmp_path, edit, message):
    payload = json.loads(DEMO_REFERENCE.read_text())
    edit(payload)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(CTTimeError, match=message):
        standardization.load(path, FEATURES, MODEL.name)


def _edited_demo(tmp_path, edit):
    payload = json.loads(DEMO_REFERENCE.read_text())
    edit(payload)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(payload))
    return path


@pytest.mark.parametrize("edit", [
    lambda d: d["features"][FEATURES[1]].update(sd=1e-300),
    lambda d: d["features"][FEATURES[0]].update(mean=1e308),
    lambda d: d["features"][FEATURES[3]].update(sd=DEMO[FEATURES[3]]["sd"] * 2000),
])
def test_a_reference_off_the_features_scale_is_refused(tmp_path, edit):
    """Against these every score would be exactly 0 or 1: refused, with the numbers and what to do."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning on the way
        with pytest.raises(CTTimeError, match="not on the scale of CT-TIME's features: .*every score would be 0 or 1"
                                              ".*rebuild it"):
            standardization.load(_edited_demo(tmp_path, edit), FEATURES, MODEL.name)


def test_an_unusual_reference_scale_is_warned_about_in_every_output(tmp_path):
    """A cohort of small lesions: SizeZoneNonUniformity's SD 25 times smaller than the sarcomas'. Scored, loudly."""
    name = "original_glszm_SizeZoneNonUniformity"
    path = _edited_demo(tmp_path, lambda d: d["features"][name].update(sd=DEMO[name]["sd"] / 25))
    reference = standardization.load(path, FEATURES, MODEL.name)
    assert reference.scale_warnings == [f"SD of {name} 25x smaller than the demo reference's"]
    assert "UNUSUAL REFERENCE SCALE: SD of" in reference.describe()
    scored = lesion_scores.score_table(lesion_table(np.linspace(0, 1, 5)), MODEL, reference)
    assert scored["standardization"].str.contains("UNUSUAL REFERENCE SCALE").all()
    shifted = _edited_demo(tmp_path, lambda d: d["features"][FEATURES[1]].update(
        mean=DEMO[FEATURES[1]]["mean"] + 7 * DEMO[FEATURES[1]]["sd"]))
    assert standardization.load(shifted, FEATURES, MODEL.name).scale_warnings == [
        f"mean of {FEATURES[1]} 7 demo SDs from the demo reference's"]


def test_the_demo_reference_is_on_its_own_scale():
    assert standardization.check_scale(*(lambda r: (r.means, r.sds))(standardization.load(
        DEMO_REFERENCE, FEATURES, MODEL.name)), FEATURES) == ([], [])


@pytest.mark.parametrize("value", [-5, 0, 1, 3.5, "12", True, None, float("inf")])
def test_n_lesions_must_be_a_whole_number_of_at_least_2(tmp_path, value):
    path = _edited_demo(tmp_path, lambda d: d.update(n_lesions=value))
    with pytest.raises(CTTimeError, match="n_lesions is .*a whole number of at least 2.*cttime reference build"):
        standardization.load(path, FEATURES, MODEL.name)


def test_demo_is_a_name_for_the_shipped_demo_reference():
    named = standardization.load("demo", FEATURES, MODEL.name)
    assert named.is_demo and named.means == standardization.load(DEMO_REFERENCE, FEATURES, MODEL.name).means


def test_reference_build_needs_only_the_model_features():
    """A feature the model does not use with SD 0, or not finite in one lesion, is left out with the reason; that
    lesion still counts for the model's features."""
    table = lesion_table(np.linspace(0, 1, 25)).assign(original_firstorder_Minimum=-100.0,
                                                       original_glcm_Idmn=np.linspace(0.9, 0.99, 25))
    table.loc[3, "original_glcm_Idmn"] = np.inf
    table["original_firstorder_Mean"] = np.linspace(30, 60, 25)
    reference = standardization.build(table, FEATURES, "lung-like", MODEL.name, "test",
                                      optional=["original_firstorder_Minimum", "original_glcm_Idmn",
                                                "original_firstorder_Mean"])
    assert reference.n_lesions == 25
    assert reference.extra["left_out"] == {"original_firstorder_Minimum": "SD 0 over 25 lesions",
                                           "original_glcm_Idmn": "not finite in 1 of 25 lesions"}
    assert set(reference.means) == set(FEATURES) | {"original_firstorder_Mean"}
    with pytest.raises(CTTimeError, match="SD 0"):  # the model's own features must be usable
        standardization.build(table.assign(**{FEATURES[0]: 1.0}), FEATURES, "flat", MODEL.name, "test")
