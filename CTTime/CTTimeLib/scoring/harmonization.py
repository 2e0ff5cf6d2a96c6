"""Harmonisation: ComBat correction of the features across batches (scanner, kernel) before z-scoring.

Uses neuroCombat (Fortin et al., the ComBat implementation for imaging features; parametric empirical Bayes,
no covariates, pooled reference) on every original_* feature that is finite for all scorable lesions, so the
empirical-Bayes priors are estimated over many features as ComBat intends. The corrected values feed only the
z-scores: lesions.csv keeps the raw pyradiomics features, so a rescore harmonises again from the same input.
The paper harmonised its sharp-kernel cohort to the soft-kernel one before scaling.
"""

import contextlib
import io

import numpy as np

from ..core.errors import CTTimeError
from ..core.imports import Deferred
from .extraction import FEATURE_PREFIX

pd = Deferred("pandas")  # imported when first used: the `cttime` command starts without it

PACKAGE = "neuroCombat"


def package_version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        raise CTTimeError(f"Harmonisation needs the {PACKAGE} package: pip install {PACKAGE}.", "standardization") \
            from None


def record(batch_column):
    """What run.json says about the harmonisation."""
    return {"method": "ComBat (parametric empirical Bayes, no covariates)", "package": PACKAGE,
            "package_version": package_version(), "batch_column": batch_column}


def describe(batch_column):
    """The prefix of the ``standardization`` column text."""
    return f"ComBat across {batch_column!r} ({PACKAGE} {package_version()})"


def combat(values, batches):
    """ComBat-corrected copy of ``values`` (rows = lesions, columns = features) for the batch of each row."""
    from neuroCombat import neuroCombat

    covariates = pd.DataFrame({"batch": list(batches)})
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints its progress
        corrected = neuroCombat(values.to_numpy(dtype=float).T, covariates, "batch")["data"]
    return pd.DataFrame(np.asarray(corrected, dtype=float).T, index=values.index, columns=values.columns)


def harmonize(table, features, rows, batch_column):
    """``features`` (the model's columns) with the ``rows`` replaced by their ComBat-corrected values."""
    if batch_column not in table:
        raise CTTimeError(f"Cannot harmonise: the table has no column {batch_column!r} (add it to the manifest, "
                          "one batch name per study).", "standardization")
    batches = _batch_names(table.loc[rows, batch_column])
    if (batches == "").any():
        raise CTTimeError(f"Cannot harmonise: {int((batches == '').sum())} lesion(s) have no {batch_column!r} value.",
                          "standardization")
    sizes = batches.value_counts()
    if len(sizes) < 2 or (sizes < 2).any():
        raise CTTimeError(f"Cannot harmonise across {batch_column!r}: ComBat needs at least 2 batches of at least 2 "
                          f"scorable lesions each (found {dict(sizes)}).", "standardization")
    columns = list(dict.fromkeys(list(features.columns)
                                 + [c for c in table.columns if c.startswith(FEATURE_PREFIX)]))
    values = table.loc[rows, columns].apply(pd.to_numeric, errors="coerce")
    values = values.loc[:, np.isfinite(values).all(axis=0)]
    flat = [c for c in values.columns if (values[c].groupby(batches).std(ddof=1).fillna(0) == 0).any()]
    missing = [c for c in features.columns if c in flat or c not in values.columns]
    if missing:
        raise CTTimeError(f"Cannot harmonise {', '.join(missing)}: constant within a batch of {batch_column!r}.",
                          "standardization")
    corrected = combat(values.drop(columns=flat), batches)
    result = features.copy()
    result.loc[rows, features.columns] = corrected[features.columns]
    return result


def _batch_names(column):
    return column.fillna("").astype(str).str.strip()


def as_fitted(raw, corrected, batches):
    """ComBat as fitted, for further rows of the same batches (e.g. perturbed delineations): ComBat without
    covariates maps each feature of a batch by one affine function, recovered here from the ``raw`` and
    ``corrected`` rows (frames of the same features) of each batch. Returns ``correct(frame, batch)``."""
    batches = _batch_names(batches)
    maps = {}
    for batch, index in raw.groupby(batches).groups.items():
        maps[batch] = {name: np.polyfit(raw.loc[index, name].to_numpy(float), corrected.loc[index, name].to_numpy(
            float), 1) for name in raw.columns}

    def correct(frame, batch):
        fitted = maps[str(batch).strip()]
        return pd.DataFrame({name: np.polyval(fitted[name], frame[name].to_numpy(float)) for name in frame.columns},
                            index=frame.index)
    return correct
