"""The CT-TIME score equals the published model's output."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.resources import MODEL_FILE
from CTTimeLib.scoring import signature

DATA = Path(__file__).parent / "Data"
FEATURES = ["original_shape_Elongation", "original_firstorder_90Percentile", "original_glcm_MaximumProbability",
            "original_glszm_SizeZoneNonUniformity"]

# The two checked rows of SIGNATURE.md: z-scores of training lesions -> the published model's output.
SIGNATURE_ROWS = [
    ([1.31011892865179, 0.541447240695973, 0.474120619245273, -0.506122142652776], 0.23761789127715),
    ([0.341962980258235, -0.360120442019841, 1.41936052081855, 0.837603695383898], 0.468407404890747),
]


def test_signature_rows_to_1e12():
    frame = pd.DataFrame([z for z, _ in SIGNATURE_ROWS], columns=FEATURES)
    scores = signature.score_standardized(frame)
    assert isinstance(scores, pd.Series)
    np.testing.assert_allclose(scores.to_numpy(), [p for _, p in SIGNATURE_ROWS], rtol=0, atol=1e-12)


def test_all_training_lesions_equal_the_published_model_output():
    table = pd.read_csv(DATA / "ct_time_training_predictions.csv")
    scores = signature.score_standardized(table[FEATURES])
    np.testing.assert_allclose(scores.to_numpy(), table["ct_time_r"].to_numpy(), rtol=0, atol=1e-12)


def test_direction_gives_the_published_auc():
    from sklearn.metrics import roc_auc_score

    table = pd.read_csv(DATA / "ct_time_training_predictions.csv")
    scores = signature.score_standardized(table[FEATURES])
    auc = roc_auc_score(table["gep_class"] == "inflamed", scores)
    assert auc == pytest.approx(0.845, abs=0.0005)  # SIGNATURE.md: 0.845 on the 41 training lesions


def test_z_prefixed_columns_and_status():
    model = signature.load_model()
    z = pd.DataFrame({f"z_{n}": [0.0, 0.0] for n in FEATURES})
    z.iloc[1] = [0.0, 3.0, 0.0, 0.0]
    scores = model.score(z)
    assert scores.iloc[0] == pytest.approx(1 / (1 + np.exp(model.intercept)), abs=1e-15)
    # a positive coefficient raises the log-odds of UNinflamed: a high 90th percentile lowers the score
    assert list(model.status(scores)) == ["inflamed", "uninflamed"]
    assert list(model.status(pd.Series([0.5, 0.5000001, np.nan]))) == ["uninflamed", "inflamed", None]


def test_model_file_is_the_only_place_with_coefficients():
    model = signature.load_model()
    assert model.features == FEATURES and model.threshold == 0.5
    assert model.provenance["doi"] == "10.1136/jitc-2024-009140"
    assert "CC BY 4.0" in model.provenance["licence"] and "CT-TIME-public" in model.provenance["repository"]
    library = Path(signature.__file__).parent
    for path in library.glob("*.py"):
        assert "2.1354" not in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize("mutation, message", [
    (lambda d: d.pop("coefficients"), "coefficients"),
    (lambda d: d.update(intercept="x"), "intercept"),
    (lambda d: d.update(threshold=1.5), "threshold"),
])
def test_invalid_model_files_are_refused(tmp_path, mutation, message):
    payload = json.loads(Path(MODEL_FILE).read_text())
    mutation(payload)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(CTTimeError, match=message):
        signature.load_model(path)


def test_missing_z_column_is_named():
    with pytest.raises(CTTimeError, match="original_glcm_MaximumProbability"):
        signature.score_standardized(pd.DataFrame({n: [0.0] for n in FEATURES if "glcm" not in n}))
