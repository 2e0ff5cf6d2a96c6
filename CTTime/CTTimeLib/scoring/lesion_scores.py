"""Lesion scores: a table of raw feature rows -> z-scores, CT-TIME score, status and RECIST size per lesion."""

import numpy as np

from ..core.errors import CTTimeError
from ..core.imports import Deferred
from . import harmonization, reference_interval, robustness, standardization
from .standardization import COHORT

pd = Deferred("pandas")  # imported when first used: the `cttime` command starts without it

RECIST_MIN_DIAMETER_MM = 10.0


DIAMETER_FEATURE = "original_shape_Maximum2DDiameterSlice"


def resolve_standardization(spec, model):
    """``"cohort"`` stays as it is; anything else is a reference file, loaded and checked for ``model``."""
    if spec == COHORT:
        return COHORT
    return standardization.load(spec, model.features, model.name)


def check_group_by(group_by, standardize, columns):
    """--group-by must name columns of the table (``columns``, None: not known yet) and go with cohort
    standardisation: a stored reference has one mean and SD per feature for every lesion."""
    if not group_by:
        return
    if standardize != COHORT:
        raise CTTimeError(f"--group-by {' '.join(group_by)} applies to cohort standardisation (--standardize "
                          "cohort); a stored reference z-scores every lesion with the same means and SDs. Drop "
                          "--group-by, or use --standardize cohort.", "input")
    missing = [c for c in group_by if columns is not None and c not in columns]
    if missing:
        shown = [c for c in columns if not str(c).startswith(("original_", "z_"))]
        raise CTTimeError(f"--group-by {', '.join(missing)}: the lesions table has no such column; group by one of "
                          f"{', '.join(shown)}.", "input")


def score_table(table, model, standardize=COHORT, group_by=(), harmonize_by=None, features_by=None):
    """Add z-scores, CT-TIME score, status and the standardisation used to a table of raw feature rows
    (ComBat-harmonised across the ``harmonize_by`` column first, when given). Rows holding perturbed delineations
    (column ``robustness.PERTURBED``) also get their score interval, from the same harmonisation and z-scoring
    as their lesion. ``features_by`` names what computed the features when it is not pyradiomics; the
    standardization column says so."""
    check_group_by(group_by, standardize, list(table.columns))
    table = table.copy()
    if "error" not in table:
        table["error"] = ""
    table["error"] = table["error"].fillna("").astype(str)
    table["error_kind"] = table["error_kind"].fillna("").astype(str) if "error_kind" in table else ""
    missing = [name for name in model.features if name not in table.columns]
    if missing and (table["error"] == "").any():
        raise CTTimeError(f"The lesions table has no column {', '.join(missing)}: the model needs its four "
                          "features, as pyradiomics names them.", "input")
    for name in missing:  # every row failed before extraction: the rows still carry their errors
        table[name] = np.nan
    features = table[model.features].apply(pd.to_numeric, errors="coerce").astype(float)
    scorable = (table["error"] == "") & np.isfinite(features).all(axis=1)
    for index in table.index[(table["error"] == "") & ~scorable]:
        bad = [name for name in model.features if not np.isfinite(features.at[index, name])]
        table.at[index, "error"] = (f"Lesion {table.at[index, 'lesion_id'] if 'lesion_id' in table else index}: "
                                    f"signature feature(s) {', '.join(bad)} missing, NaN or infinite; extract the "
                                    "lesion again or correct its row.")
        table.at[index, "error_kind"] = "features"
    prefix, correct, perturbed, drawn = (f"{features_by} features, " if features_by else ""), None, {}, {}
    if harmonize_by:
        raw, rows = features, table.index[scorable]
        features = harmonization.harmonize(table, features, rows, harmonize_by)
        correct = harmonization.as_fitted(raw.loc[rows], features.loc[rows], table.loc[rows, harmonize_by])
        prefix += harmonization.describe(harmonize_by) + ", then "
    for name in model.features:
        table[f"z_{name}"] = np.nan
    table["standardization"] = ""
    groups = [((), table.index[scorable])] if standardize != COHORT or not group_by else \
        list(table[scorable].groupby(list(group_by), sort=False).groups.items())
    for label, index in groups:
        if standardize == COHORT:
            source = "all scored lesions" if not group_by else ", ".join(
                f"{k}={v}" for k, v in zip(group_by, label if isinstance(label, tuple) else (label,)))
            try:
                reference = standardization.from_lesions(features.loc[index], model.features, source, mode=COHORT)
            except CTTimeError as exc:
                raise CTTimeError(_with_failures(str(exc), table), exc.kind) from None
        else:
            reference = standardize
        z = reference.standardize(features.loc[index], model.features)
        table.loc[index, z.columns] = z
        table.loc[index, "standardization"] = prefix + reference.describe()
        drawn.update(reference_interval.draw_scores(features.loc[index], reference, model))
        if robustness.PERTURBED in table:
            batches = table.loc[index, harmonize_by] if harmonize_by else None
            perturbed.update(robustness.perturbed_scores(table.loc[index, robustness.PERTURBED], model, reference,
                                                         correct, batches))
    scores = model.score(table.loc[scorable, [f"z_{n}" for n in model.features]])
    table["ct_time_score"] = np.nan
    table.loc[scorable, "ct_time_score"] = scores
    table["ct_time_status"] = model.status(table["ct_time_score"])
    robustness.add_intervals(table, perturbed, model.threshold)
    reference_interval.add_columns(table, drawn, model.features, model.threshold)
    if DIAMETER_FEATURE in table:
        diameter = pd.to_numeric(table[DIAMETER_FEATURE], errors="coerce")
        table["longest_axial_diameter_mm"] = diameter
        table["recist_measurable"] = (diameter >= RECIST_MIN_DIAMETER_MM).where(diameter.notna())
    return table


def _with_failures(message, table, shown=5):
    """A message followed by why the failed rows failed (they are why too few lesions are left)."""
    failed = table[table["error"] != ""]
    lines = [f"{row.get('patient_id', '')} {row.get('timepoint', '')} {row.get('lesion_id') or '(study)'}: "
             f"{row['error']}" for row in failed.head(shown).to_dict("records")]
    more = [f"... and {len(failed) - shown} more"] if len(failed) > shown else []
    return message + "".join(f"\n  failed: {line}" for line in lines + more)
