"""How much the reference decides a score: the standardisation interval, and lesions outside the reference.

A reference's means and SDs are estimates from ``n`` lesions. With the reference's mean m and sample SD s of a
feature, the feature's population mean and SD are drawn ``DRAWS`` times as sampling theory allows (the
normal-theory posterior under the reference prior, i.e. the inverse of the usual sampling distributions):

    sigma_d^2 = (n - 1) s^2 / X_d,   X_d ~ chi-square(n - 1)       ((n - 1) s^2 / sigma^2 ~ chi-square(n - 1))
    mu_d      = m + sigma_d Z_d / sqrt(n),   Z_d ~ N(0, 1)          (m ~ N(mu, sigma^2 / n))

independently per feature (a reference stores no correlations). Each draw z-scores the lesion, z_d = (x - mu_d) /
sigma_d, and scores it with the model; the interval is the 2.5th to 97.5th percentile of the ``DRAWS`` scores
(``ct_time_score_ref_low``, ``ct_time_score_ref_high``). The status is reference-robust when the score and both
ends lie on the same side of the threshold. Every lesion scored against one reference uses the same draws (common
random numbers), seeded by the reference's content (n, means, SDs), so a rerun gives the same numbers. A patient's
aggregate gets its interval the same way: the aggregate per draw, then its percentiles.

A lesion with a signature feature beyond ``OUTSIDE_Z`` reference SDs from the reference's mean is outside the
reference: its score is an extrapolation (``outside_reference``, and a warning naming the feature and its z).
"""

import hashlib
import json

import numpy as np

MIN_REFERENCE_LESIONS = 2  # a stored reference needs 2 lesions for an SD (and the SD's sampling uncertainty)
DRAWS = 2000  # Monte Carlo draws of the reference's means and SDs (docs/method.md: the error this leaves)
LEVEL = 95.0  # percent: the interval is the central LEVEL% of the draws' scores
OUTSIDE_Z = 3.0  # |z| beyond this on a signature feature: the lesion lies outside the reference
COLUMNS = ("ct_time_score_ref_low", "ct_time_score_ref_high", "ct_time_status_reference_robust", "outside_reference")
DRAW_SCORES = "reference_draw_scores"  # table column (not written): per lesion, its score under each draw
_CHUNK = 256  # lesions scored per block of draws (bounds the memory of one block to _CHUNK * DRAWS rows)


def seed_of(reference, features):
    """A seed from what the reference says about ``features`` (n, and means and SDs to 12 significant digits):
    the same reference, the same draws, whatever its file is called, which lesions it scores or in which order
    its lesions were summed."""
    content = json.dumps([reference.n_lesions] + [[name, f"{reference.means[name]:.12g}",
                                                   f"{reference.sds[name]:.12g}"] for name in features])
    return int.from_bytes(hashlib.sha256(content.encode("utf-8")).digest()[:8], "little")


def draws(reference, features, seed=None):
    """(means, sds): arrays of shape (DRAWS, len(features)), the reference's means and SDs as drawn (module
    docstring), from NumPy's PCG64 generator seeded by ``seed_of`` (or ``seed``: to measure the Monte Carlo
    error)."""
    n = reference.n_lesions
    rng = np.random.Generator(np.random.PCG64(seed_of(reference, features) if seed is None else seed))
    chi2 = rng.standard_gamma((n - 1) / 2.0, size=(DRAWS, len(features))) * 2.0
    normal = rng.standard_normal(size=(DRAWS, len(features)))
    means = np.array([reference.means[name] for name in features], dtype=float)
    sds = np.array([reference.sds[name] for name in features], dtype=float)
    drawn_sds = sds * np.sqrt((n - 1) / chi2)
    return means + drawn_sds * normal / np.sqrt(n), drawn_sds


def draw_scores(frame, reference, model, seed=None):
    """Row index -> the lesion's score under each draw of the reference (``frame``: the lesions' raw, or
    harmonised, signature features); {} when the reference has fewer than ``MIN_REFERENCE_LESIONS`` lesions."""
    import pandas as pd

    if reference.n_lesions < MIN_REFERENCE_LESIONS:
        return {}
    means, sds = draws(reference, model.features, seed)
    values = frame[model.features].to_numpy(dtype=float)
    scores = np.empty((len(values), DRAWS))
    columns = [f"z_{name}" for name in model.features]
    for start in range(0, len(values), _CHUNK):
        block = values[start:start + _CHUNK]
        z = (block[:, None, :] - means[None]) / sds[None]  # (lesions, draws, features)
        z = pd.DataFrame(z.reshape(-1, len(columns)), columns=columns)
        scores[start:start + len(block)] = model.score(z).to_numpy().reshape(len(block), DRAWS)
    return dict(zip(frame.index, scores))


def interval(scores):
    """(low, high): the central ``LEVEL`` percent of the draws' scores (the last axis)."""
    tail = (100.0 - LEVEL) / 2
    return np.percentile(scores, tail, axis=-1), np.percentile(scores, 100.0 - tail, axis=-1)


def robust(score, low, high, threshold):
    """True when the score and both ends of its interval lie on the same side of the threshold."""
    return bool((score > threshold) == (low > threshold) == (high > threshold))


def add_columns(table, drawn, features, threshold):
    """The interval columns and ``outside_reference`` of every row of a scored table (``drawn``: row index ->
    its draws' scores); rows without a score, or without draws, get none. ``DRAW_SCORES`` keeps the draws' scores
    for the patients' aggregates."""
    import pandas as pd

    low, high, flags = (pd.Series(np.nan, index=table.index, dtype=float),
                        pd.Series(np.nan, index=table.index, dtype=float),
                        pd.Series(None, index=table.index, dtype=object))
    for index, score in table["ct_time_score"].astype(float).items():
        if index in drawn and np.isfinite(score):
            low[index], high[index] = interval(drawn[index])
            flags[index] = robust(score, low[index], high[index], threshold)
    table["ct_time_score_ref_low"], table["ct_time_score_ref_high"] = low, high
    table["ct_time_status_reference_robust"] = flags
    z = table[[f"z_{name}" for name in features]].astype(float)
    scored = table["ct_time_score"].astype(float).notna()
    table["outside_reference"] = pd.Series((z.abs() > OUTSIDE_Z).any(axis=1).where(scored), dtype=object)
    table[DRAW_SCORES] = pd.Series([drawn.get(index) for index in table.index], index=table.index, dtype=object)


def outside_warning(lesion_id, row, features):
    """"lesion X outside the reference (<feature> z = +3.8; |z| > 3): ..." for a lesions.csv row (dict) with a
    signature feature beyond ``OUTSIDE_Z``, else ""."""
    beyond = []
    for name in features:
        try:
            z = float(row.get(f"z_{name}"))
        except (TypeError, ValueError):
            continue
        if abs(z) > OUTSIDE_Z:
            beyond.append(f"{name} z = {z:+.1f}")
    if not beyond:
        return ""
    return (f"lesion {lesion_id} outside the reference ({', '.join(beyond)}; |z| > {OUTSIDE_Z:g}): its score is an "
            "extrapolation")


def mismatch(lesions):
    """The run's one message when at least half of its scored lesions lie outside the reference, else ""."""
    flags = [flag for flag in lesions.get("outside_reference", ()) if flag is not None and flag == flag]
    outside = sum(flag in (True, "True", "true") for flag in flags)
    if not flags or 2 * outside < len(flags):
        return ""
    return (f"{outside} of {len(flags)} scored lesions lie outside the reference (a signature feature beyond |z| = "
            f"{OUTSIDE_Z:g}): this reference does not describe these lesions; build one from your own cohort (at "
            "least 20 lesions, `cttime reference build`)")


def aggregate_intervals(group_draws, aggregates):
    """Per aggregate name: (low, high) of the aggregate computed per draw (``group_draws``: lesions x DRAWS)."""
    found = {}
    for name in aggregates:
        found[name] = interval(getattr(np, name)(group_draws, axis=0))  # np.mean, np.median, np.min, np.max
    return found


def settings():
    """What run.json records about the standardisation interval."""
    return {"draws": DRAWS, "level_percent": LEVEL, "outside_z": OUTSIDE_Z,
            "interval": "percentiles of the score over draws of the reference's means (normal, SD/sqrt(n)) and "
                        "variances ((n-1)s^2/sigma^2 ~ chi-square(n-1)), seeded by the reference's content"}
