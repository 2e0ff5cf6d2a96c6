"""Signature: the published CT-TIME model, loaded and validated in one place.

The model file (Resources/Models/CT-TIME.json) holds the intercept and coefficients read out of the authors'
caret/glmnet model. glmnet models the second class level, so the linear predictor is the log-odds of
*uninflamed* and the CT-TIME score is P(inflamed) = 1 / (1 + exp(eta)).
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..core.errors import CTTimeError
from ..core.imports import Deferred
from ..core.resources import MODEL_FILE
from ..io.tables import read_json
from .standardization import Z_PREFIX

pd = Deferred("pandas")  # imported when first used: the `cttime` command starts without it

INFLAMED, UNINFLAMED = "inflamed", "uninflamed"


@dataclass(frozen=True)
class Model:
    """A logistic signature over z-scored features."""

    name: str
    intercept: float
    coefficients: tuple  # ((feature, coefficient), ...) in file order
    threshold: float
    provenance: dict
    path: str

    @property
    def features(self):
        return [name for name, _ in self.coefficients]

    def linear_predictor(self, z):
        """eta = intercept + sum(b_i * z_i): the log-odds of uninflamed. Summed feature by feature in the model's
        order, so a lesion's value does not depend on which other rows are scored with it (a matrix product's
        rounding varies with the number of rows)."""
        values = _z_columns(z, self.features).to_numpy(dtype=float)
        total = np.zeros(len(values))
        for column, (_, coefficient) in enumerate(self.coefficients):
            total = total + coefficient * values[:, column]
        return self.intercept + total

    def score(self, z):
        """P(inflamed) for each row of z-scores."""
        z = _z_columns(z, self.features)
        with np.errstate(over="ignore"):  # exp overflows to inf for eta > 709: the score is then 0, as it should be
            return pd.Series(1.0 / (1.0 + np.exp(self.linear_predictor(z))), index=z.index, name="ct_time_score")

    def status(self, scores):
        """'inflamed' where the score is above the threshold, else 'uninflamed' (missing scores stay missing)."""
        scores = pd.Series(scores, dtype=float)
        labels = np.where(scores > self.threshold, INFLAMED, UNINFLAMED).astype(object)
        labels[scores.isna().to_numpy()] = None
        return pd.Series(labels, index=scores.index, name="ct_time_status")


def load_model(path=MODEL_FILE):
    """Read and validate a model JSON (CT-TIME.json or one written by ``cttime train``)."""
    return _load(str(path))


@lru_cache(maxsize=8)
def _load(path):
    payload = read_json(path, "Model file", "model")
    try:
        coefficients = tuple((str(k), float(v)) for k, v in payload["coefficients"].items())
        model = Model(str(payload["name"]), float(payload["intercept"]), coefficients,
                      float(payload.get("threshold", 0.5)), dict(payload.get("provenance", {})), path)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CTTimeError(f"Model file {path} lacks a valid name, intercept or coefficients ({exc}).",
                          "model") from None
    values = [model.intercept, model.threshold] + [b for _, b in coefficients]
    if not coefficients or not all(math.isfinite(v) for v in values) or not 0 < model.threshold < 1:
        raise CTTimeError(f"Model file {path}: coefficients must be finite numbers and the threshold within 0..1.",
                          "model")
    return model


def score_standardized(frame, model=None):
    """P(inflamed) for a frame of the model's z-scored features (columns named as the features or ``z_<feature>``)."""
    return (model or load_model()).score(frame)


def _z_columns(frame, features):
    if all(Z_PREFIX + name in frame.columns for name in features):
        return frame[[Z_PREFIX + name for name in features]]
    if all(name in frame.columns for name in features):
        return frame[features]
    missing = [name for name in features if name not in frame.columns and Z_PREFIX + name not in frame.columns]
    raise CTTimeError(f"No z-scored column for {', '.join(missing)}.", "model")
