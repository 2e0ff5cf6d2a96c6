"""Training: re-derive a CT-TIME-like signature on a labelled cohort, as the authors derived theirs.

Steps (CT-TIME-public, CT-TIME_signature.R and CT-TIME_model_training.R):
1. z-score every feature over the training lesions (mean, sample SD, like R's scale());
2. optionally keep only robust features: concordance (e.g. CCC or ICC) >= 0.75 in a test-retest table;
3. tune an elastic-net logistic regression over alpha (L1 share) and lambda (penalty) by repeated stratified
   k-fold cross-validation (10 x 5 in the paper) on ROC AUC;
4. keep the features with a non-zero coefficient at the best alpha and lambda;
5. drop redundant features: while two remaining features correlate above 0.59 (absolute Pearson), drop the one
   with the larger mean absolute correlation with the others (as caret's findCorrelation);
6. refit at the same alpha and lambda on the remaining features; its cross-validated AUC is reported.

glmnet's penalty lambda * ((1 - alpha) / 2 * |b|^2 + alpha * |b|_1) on the mean log-loss is scikit-learn's
LogisticRegression with l1_ratio = alpha and C = 1 / (n * lambda). The model JSON has CT-TIME.json's format and
direction: eta = intercept + sum(b * z) is the log-odds of the NEGATIVE class, score = 1 / (1 + exp(eta)) =
P(label 1), so the written coefficients are scikit-learn's with the sign reversed.
"""

import datetime
import inspect
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from .. import __version__
from ..core.errors import CTTimeError
from ..scoring import standardization
from ..scoring.extraction import FEATURE_PREFIX
from . import outcomes

CONCORDANCE_COLUMNS = ("ccc", "icc", "concordance", "Concordance.Correlation.Coefficient")


@dataclass
class Settings:
    alphas: tuple = (0.1, 0.55, 1.0)
    lambdas: tuple = tuple(float(v) for v in np.round(np.geomspace(0.001, 0.1, 11), 6))
    folds: int = 5
    repeats: int = 10
    correlation_cutoff: float = 0.59
    min_concordance: float = 0.75
    seed: int = 1234


class ElasticNetLogistic(ClassifierMixin, BaseEstimator):
    """glmnet's binomial elastic net (alpha, lambda) as a scikit-learn classifier."""

    def __init__(self, alpha=0.55, lam=0.01):
        self.alpha = alpha
        self.lam = lam

    def fit(self, x, y):
        from sklearn.linear_model import LogisticRegression

        from sklearn.exceptions import ConvergenceWarning

        options = dict(solver="saga", l1_ratio=self.alpha, C=1.0 / (len(y) * self.lam), max_iter=10000, tol=1e-5,
                       random_state=0)
        if inspect.signature(LogisticRegression).parameters["penalty"].default != "deprecated":
            options["penalty"] = "elasticnet"  # scikit-learn < 1.8
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self.model_ = LogisticRegression(**options).fit(x, y)
        self.converged_ = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, x):
        return self.model_.predict_proba(x)

    def predict(self, x):
        return self.model_.predict(x)


def labelled_lesions(lesions, labels, path, timepoint=None):
    """Lesions without error joined to per-lesion labels (or per-patient labels, given to each of its lesions)."""
    labels = labels.assign(label=outcomes.binary(labels["label"], path))
    keys = ["patient_id"] + (["lesion_id"] if "lesion_id" in labels else []) + (
        ["timepoint"] if "timepoint" in labels else [])
    if labels.duplicated(keys).any():
        raise CTTimeError(f"{path}: {', '.join(keys)} must be unique; some rows repeat.", "input")
    lesions = lesions[lesions["error"].fillna("").astype(str) == ""] if "error" in lesions else lesions
    if "timepoint" not in labels:
        lesions = outcomes.one_timepoint(lesions, timepoint)
    frame = lesions.merge(labels[keys + ["label"]], on=keys, how="inner")
    if frame["label"].value_counts().reindex([0, 1], fill_value=0).min() < 2:
        raise CTTimeError(f"{path}: training needs at least 2 lesions of each class; {len(frame)} labelled lesion(s) "
                          "matched.", "input")
    return frame.reset_index(drop=True)


def candidate_features(frame):
    """original_* features finite on every lesion and not constant."""
    values = frame[[c for c in frame.columns if c.startswith(FEATURE_PREFIX)]].apply(pd.to_numeric, errors="coerce")
    keep = np.isfinite(values).all(axis=0) & (values.max() > values.min())  # not std > 0: rounding leaves 1e-16
    return list(values.columns[keep])


def robust_features(concordance, path, features, minimum):
    """Features whose concordance (first of CONCORDANCE_COLUMNS present) is >= minimum."""
    if "feature" not in concordance:
        raise CTTimeError(f"Concordance table {path} needs a 'feature' column.", "input")
    column = next((c for c in CONCORDANCE_COLUMNS if c in concordance), None)
    if column is None:
        raise CTTimeError(f"Concordance table {path} needs one of the columns {', '.join(CONCORDANCE_COLUMNS)}.",
                          "input")
    values = pd.to_numeric(concordance[column], errors="coerce")
    robust = set(concordance.loc[values >= minimum, "feature"].astype(str))
    kept = [f for f in features if f in robust]
    if not kept:
        raise CTTimeError(f"No feature of the lesions table has {column} >= {minimum} in {path}.", "input")
    return kept


def remove_correlated(z, cutoff):
    """(kept, dropped): drop, pair by pair, the feature with the larger mean absolute correlation."""
    keep, dropped = list(z.columns), []
    correlation = z.corr().abs().to_numpy()
    np.fill_diagonal(correlation, 0.0)
    index = {name: i for i, name in enumerate(z.columns)}
    while len(keep) > 1:
        rows = [index[name] for name in keep]
        sub = correlation[np.ix_(rows, rows)]
        if sub.max() <= cutoff:
            break
        i, j = np.unravel_index(np.argmax(sub), sub.shape)
        drop = keep[i] if sub[i].mean() >= sub[j].mean() else keep[j]
        keep.remove(drop)
        dropped.append(drop)
    return keep, dropped


def _cv(settings):
    from sklearn.model_selection import RepeatedStratifiedKFold

    return RepeatedStratifiedKFold(n_splits=settings.folds, n_repeats=settings.repeats, random_state=settings.seed)


def tune(z, y, settings):
    """(best alpha, best lambda, grid table of mean and SD of the cross-validated AUC)."""
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(ElasticNetLogistic(), {"alpha": list(settings.alphas), "lam": list(settings.lambdas)},
                          scoring="roc_auc", cv=_cv(settings), refit=False, error_score="raise")
    search.fit(z.to_numpy(), y)
    results = pd.DataFrame({"alpha": search.cv_results_["param_alpha"].astype(float),
                            "lambda": search.cv_results_["param_lam"].astype(float),
                            "cv_auc_mean": search.cv_results_["mean_test_score"],
                            "cv_auc_sd": search.cv_results_["std_test_score"]})
    return float(search.best_params_["alpha"]), float(search.best_params_["lam"]), results


def train(lesions, labels, labels_path, settings=None, concordance=None, concordance_path=None,
          name="CT-TIME-retrained", timepoint=None, positive_class="inflamed", negative_class="uninflamed"):
    """Derive a signature; returns a dict with the model JSON payload, the training reference and the CV grid."""
    from sklearn.model_selection import cross_val_score

    settings = settings or Settings()
    frame = labelled_lesions(lesions, labels, labels_path, timepoint)
    y = frame["label"].to_numpy()
    smallest = int(min((y == 0).sum(), (y == 1).sum()))
    if settings.folds > smallest:
        raise CTTimeError(f"{labels_path}: {settings.folds}-fold cross-validation needs at least {settings.folds} "
                          f"lesions of each class; the smaller class has {smallest}. Give fewer --folds or more "
                          "labelled lesions.", "input")
    features = candidate_features(frame)
    if not features:
        raise CTTimeError(f"No original_* feature of the {len(frame)} labelled lesions is finite and varies between "
                          "them: nothing to train on. Give a lesions table with pyradiomics' features (cttime score "
                          "or cohort with --features all) of different lesions.", "input")
    unusable = [lam for lam in settings.lambdas if not 0.0 < 1.0 / (len(y) * lam) < math.inf]
    if unusable:
        raise CTTimeError(f"lambda {', '.join(f'{lam:g}' for lam in unusable)} cannot be used with {len(y)} lesions: "
                          "scikit-learn's C = 1 / (n * lambda) would be 0 or infinite. Give smaller lambdas "
                          "(--lambdas; the default grid runs from 0.001 to 0.1).", "input")
    reference = standardization.from_lesions(frame, features, f"training lesions of {labels_path}")
    z = reference.standardize(frame, features).set_axis(features, axis=1)
    robust = robust_features(concordance, concordance_path, features, settings.min_concordance) \
        if concordance is not None else features
    alpha, lam, grid = tune(z[robust], y, settings)
    first = ElasticNetLogistic(alpha, lam).fit(z[robust].to_numpy(), y).model_
    nonzero = [f for f, b in zip(robust, first.coef_[0]) if b != 0]
    if not nonzero:
        raise CTTimeError(f"The elastic net kept no feature at alpha {alpha}, lambda {lam}: give smaller lambdas "
                          "(--lambdas) or more lesions.", "model")
    selected, redundant = remove_correlated(z[nonzero], settings.correlation_cutoff)
    final = ElasticNetLogistic(alpha, lam).fit(z[selected].to_numpy(), y)
    cv_auc = cross_val_score(ElasticNetLogistic(alpha, lam), z[selected].to_numpy(), y, scoring="roc_auc",
                             cv=_cv(settings))
    coefficients = {f: float(b) for f, b in zip(selected, final.model_.coef_[0]) if b != 0}
    if not coefficients:
        raise CTTimeError("The refitted model has no non-zero coefficient; give smaller lambdas.", "model")
    payload = model_payload(name, float(final.model_.intercept_[0]), coefficients, positive_class, negative_class, {
        "method": "cttime train: elastic-net logistic regression (scikit-learn saga), tuned by repeated stratified "
                  "k-fold cross-validation on ROC AUC, as in CT-TIME-public's training scripts",
        "created": datetime.date.today().isoformat(), "tool_version": __version__, "labels": str(labels_path),
        "n_lesions": int(len(y)), "n_positive": int(y.sum()), "alpha": alpha, "lambda": lam,
        "C": 1.0 / (len(y) * lam), "converged": final.converged_,
        "cv": {"folds": settings.folds, "repeats": settings.repeats, "seed": settings.seed,
               "auc_mean": float(cv_auc.mean()), "auc_sd": float(cv_auc.std(ddof=1))},
        "selection": {"candidates": len(features), "robust": len(robust),
                      "robustness_table": str(concordance_path) if concordance is not None else None,
                      "min_concordance": settings.min_concordance if concordance is not None else None,
                      "nonzero": nonzero, "correlated_removed": redundant,
                      "correlation_cutoff": settings.correlation_cutoff},
        "warning": f"Re-derived on {len(y)} lesions; not the published CT-TIME model. Validate on an independent "
                   "cohort before use."})
    training_reference = standardization.build(frame, list(coefficients), f"training lesions of {labels_path}", name,
                                               __version__)
    return {"model": payload, "reference": training_reference, "grid": grid, "z": z[selected], "labels": y,
            "sklearn": final}


def model_payload(name, intercept, coefficients, positive_class, negative_class, provenance):
    """A model JSON in CT-TIME.json's format: scikit-learn's log-odds of label 1, sign reversed."""
    return {"name": name, "version": "1.0",
            "description": f"Elastic-net logistic regression on {len(coefficients)} z-scored radiomic features; the "
                           f"score is the probability of '{positive_class}'.",
            "intercept": -intercept, "coefficients": {f: -b for f, b in coefficients.items()},
            "direction": f"eta = intercept + sum(coefficient * z) is the log-odds of '{negative_class}'; score = "
                         f"P({positive_class}) = 1 / (1 + exp(eta))",
            "positive_class": positive_class, "negative_class": negative_class, "threshold": 0.5,
            "input": "z-scores of the raw pyradiomics features (mean and sample SD, n-1, per cohort as R's scale())",
            "parameter_file": "CT-TIME.yaml", "provenance": provenance}
