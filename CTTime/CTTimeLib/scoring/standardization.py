"""Standardisation: the model takes z-scores, not raw features.

Two modes, one mechanism (a ``Reference`` of per-feature mean and SD):

* cohort: the reference is computed from the lesions scored together (mean and sample SD, n-1, like R's
  ``scale()`` in the published code), optionally per group (e.g. per time point);
* reference: a stored JSON file {"features": {name: {"mean", "sd"}}, "n_lesions", "source", ...}; ``n_lesions``
  (at least 2) is what the standardisation interval (``reference_interval``) draws the means' and SDs'
  uncertainty from, so a file without it is refused.

A reference built from fewer than ``MIN_RELIABLE_LESIONS`` lesions, or marked as a demo, carries a warning that
every output repeats. ``--reference demo`` names the demo reference shipped with CTTime.

A stored reference is also checked for plausibility against the scale of CT-TIME's features, taken from the demo
reference (36 sarcomas; the training cohort's own means and SDs were never published). For each feature the model
uses: an SD more than ``WARN_FACTOR`` times larger or smaller than the demo's, or a mean more than ``WARN_SDS`` demo
SDs from the demo's mean, is warned about loudly (cohorts differ: a cohort of small lung nodules has a much smaller
spread of the size-dependent SizeZoneNonUniformity than large sarcomas); beyond ``REFUSE_FACTOR`` or ``REFUSE_SDS``
the file is refused. Why those bounds: z-scores grow by the factor an SD is off, and with the model's coefficients
(0.5 to 2.1) a z-score off by 10 moves a score to 0 or 1; a factor of 1000 or a mean 100 SDs away (an SD of 1e-300,
a mean of 1e308) is a wrong file (units, a typo, another parameter file), never a cohort.
"""

import datetime
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..core.errors import CTTimeError
from ..core.imports import Deferred
from ..core.resources import DEMO_REFERENCE
from ..io.tables import read_json
from .reference_interval import MIN_REFERENCE_LESIONS

pd = Deferred("pandas")  # imported when first used: the `cttime` command starts without it

COHORT = "cohort"  # standardise over the lesions scored together
DEMO_ALIAS = "demo"  # --reference demo: the shipped demo reference
MIN_RELIABLE_LESIONS = 20
Z_PREFIX = "z_"
WARN_FACTOR, REFUSE_FACTOR = 20.0, 1000.0  # SD of a stored reference against the demo reference's
WARN_SDS, REFUSE_SDS = 5.0, 100.0  # distance of its mean from the demo mean, in demo SDs
QUANTILES = (("min", 0), ("p2.5", 2.5), ("median", 50), ("p97.5", 97.5), ("max", 100))  # kept by ``build``


@dataclass
class Reference:
    """Per-feature mean and SD with their provenance."""

    means: dict
    sds: dict
    n_lesions: int
    source: str
    extra: dict = field(default_factory=dict)
    mode: str = "reference"
    scale_warnings: list = field(default_factory=list)  # what lies outside the demo reference's scale

    @property
    def is_demo(self):
        return bool(self.extra.get("demo"))

    @property
    def warning(self):
        """Why scores against this reference are not clinically calibrated, or None."""
        reasons = []
        if self.is_demo:
            reasons.append("demo reference")
        if self.n_lesions < MIN_RELIABLE_LESIONS:
            reasons.append(f"only {self.n_lesions} lesions (< {MIN_RELIABLE_LESIONS})")
        parts = ["NOT CLINICALLY CALIBRATED: " + "; ".join(reasons)] if reasons else []
        if self.scale_warnings:
            parts.append("UNUSUAL REFERENCE SCALE: " + "; ".join(self.scale_warnings) + " (check that it was built "
                         "with CTTime's parameter file, from lesions like those scored)")
        return "; ".join(parts) or None

    def describe(self):
        """The text of the ``standardization`` column."""
        if self.mode == COHORT:
            text = f"cohort z-score over {self.n_lesions} lesions ({self.source})"
        else:
            text = f"reference {self.source} (n={self.n_lesions} lesions)"
        return f"{text} - {self.warning}" if self.warning else text

    def standardize(self, frame, features):
        """z-score columns (``z_<feature>``) for ``features`` of ``frame``."""
        missing = [name for name in features if name not in self.means]
        if missing:
            raise CTTimeError(f"Reference {self.source} has no mean/SD for {', '.join(missing)}; build it with "
                              "`cttime reference build` from a lesions table of the same model.", "standardization")
        return frame[list(features)].astype(float).sub(
            [self.means[n] for n in features], axis=1).div([self.sds[n] for n in features], axis=1).add_prefix(Z_PREFIX)

    def to_json(self):
        payload = {"features": {name: {"mean": self.means[name], "sd": self.sds[name]} for name in self.means},
                   "n_lesions": self.n_lesions, "source": self.source}
        payload.update(self.extra)
        return json.dumps(payload, indent=2) + "\n"


def from_lesions(frame, features, source, mode="reference", optional=(), **extra):
    """A reference computed from the rows of a lesions table (mean and sample SD, n-1) over the lesions whose
    ``features`` are all finite; those must have SD > 0. Each ``optional`` feature is added when it is finite in
    every one of those lesions and its SD > 0, else left out and named, with why, in ``extra["left_out"]``."""
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise CTTimeError(f"The lesions table has no column {', '.join(missing)}; it needs the signature's "
                          "features as pyradiomics names them.", "standardization")
    values = frame[list(features)].astype(float)
    kept = frame[np.isfinite(values).all(axis=1)]
    values = values.loc[kept.index]
    if len(values) < 2:
        raise CTTimeError(f"Cannot z-score {source}: {len(values)} scorable lesion(s); cohort standardisation "
                          "needs at least 2 (use --reference REF.json to score a single lesion).", "standardization")
    sds = values.std(ddof=1)
    flat = [name for name in features if not sds[name] > 0]
    if flat:
        raise CTTimeError(f"Cannot z-score {source}: feature(s) {', '.join(flat)} have SD 0 over "
                          f"{len(values)} lesions; add lesions or use a reference.", "standardization")
    means, sds = {n: float(values[n].mean()) for n in features}, {n: float(sds[n]) for n in features}
    left_out = {}
    for name in (n for n in optional if n not in means):
        column = pd.to_numeric(kept[name], errors="coerce") if name in kept else None
        bad = int((~np.isfinite(column)).sum()) if column is not None else len(kept)
        if bad:
            left_out[name] = f"not finite in {bad} of {len(kept)} lesions"
        elif not column.std(ddof=1) > 0:
            left_out[name] = f"SD 0 over {len(kept)} lesions"
        else:
            means[name], sds[name] = float(column.mean()), float(column.std(ddof=1))
    if left_out:
        extra["left_out"] = left_out
    return Reference(means, sds, len(values), source, dict(extra), mode)


def build(frame, features, source, model_name, tool_version, demo=False, optional=()):
    """A reference to store as JSON, with its creation date, tool version, model and the quantiles of the model's
    ``features`` over its lesions (where they lay: a reader's check, the z-scores use the means and SDs); those
    features must be usable, ``optional`` ones are kept where usable (see ``from_lesions``). Its scale is checked
    against the demo reference (``scale_warnings``; a built reference is never refused, the lesions are what they
    are)."""
    extra = {"created": datetime.date.today().isoformat(), "tool_version": tool_version, "model": model_name}
    if demo:
        extra["demo"] = True
    reference = from_lesions(frame, features, source, optional=optional, **extra)
    values = frame[list(features)].astype(float)
    values = values[np.isfinite(values).all(axis=1)]
    reference.extra["quantiles"] = {name: {label: float(np.percentile(values[name], q)) for label, q in QUANTILES}
                                    for name in features}
    reference.scale_warnings = check_scale(reference.means, reference.sds, features)[1]
    return reference


def _demo_scale():
    return _demo_scale_of(str(DEMO_REFERENCE))


@lru_cache(maxsize=1)
def _demo_scale_of(path):
    payload = read_json(path, "Demo reference", "standardization")
    return {name: (float(entry["mean"]), float(entry["sd"])) for name, entry in payload["features"].items()}


def check_scale(means, sds, features):
    """(refusals, warnings): texts for the ``features`` whose mean or SD lies outside the demo reference's scale
    (see the module docstring for the bounds); features the demo reference lacks are not checked."""
    refusals, warnings = [], []
    demo = _demo_scale()
    for name in features:
        if name not in demo:
            continue
        demo_mean, demo_sd = demo[name]
        ratio = sds[name] / demo_sd
        factor = max(ratio, 1 / ratio)
        distance = abs(means[name] - demo_mean) / demo_sd
        if factor > REFUSE_FACTOR or distance > REFUSE_SDS:
            refusals.append(f"{name}: mean {means[name]:.4g}, SD {sds[name]:.4g} against the demo reference's mean "
                            f"{demo_mean:.4g}, SD {demo_sd:.4g}")
        elif factor > WARN_FACTOR:
            warnings.append(f"SD of {name} {factor:.0f}x {'larger' if ratio > 1 else 'smaller'} than the demo "
                            "reference's")
        elif distance > WARN_SDS:
            warnings.append(f"mean of {name} {distance:.0f} demo SDs from the demo reference's")
    return refusals, warnings


def load(path, features, model_name=None):
    """Read and validate a reference JSON file for the given features (and model, when it names one); "demo" is
    the demo reference shipped with CTTime. An implausible scale is refused or warned about (module docstring)."""
    if str(path).strip().lower() == DEMO_ALIAS:
        path = DEMO_REFERENCE
    payload = read_json(path, "Reference file", "standardization")
    for key in ("features", "n_lesions", "source"):
        if key not in payload:
            raise CTTimeError(f"Reference file {path} lacks the required key {key!r} (needs features, n_lesions, "
                              "source)" + (": without the number of lesions behind its means and SDs neither the "
                              "score nor its standardisation interval can be trusted; build the reference with "
                              "`cttime reference build`" if key == "n_lesions" else "") + ".", "standardization")
    if model_name and payload.get("model") not in (None, model_name):
        raise CTTimeError(f"Reference file {path} was made for model {payload['model']!r}, not {model_name!r}; "
                          "build a reference for this model.", "standardization")
    means, sds = {}, {}
    for name in features:
        entry = payload["features"].get(name) if isinstance(payload["features"], dict) else None
        if not isinstance(entry, dict) or "mean" not in entry or "sd" not in entry:
            raise CTTimeError(f"Reference file {path} has no mean/sd for {name}.", "standardization")
        mean, sd = _number(entry["mean"], path, name), _number(entry["sd"], path, name)
        if not sd > 0:
            raise CTTimeError(f"Reference file {path}: SD of {name} is {sd}; an SD must be positive.",
                              "standardization")
        means[name], sds[name] = mean, sd
    n_lesions = payload["n_lesions"]
    try:
        whole = not isinstance(n_lesions, bool) and isinstance(n_lesions, (int, float)) and \
            float(n_lesions).is_integer() and n_lesions >= MIN_REFERENCE_LESIONS
    except OverflowError:  # an integer beyond any float
        whole = False
    if not whole:
        raise CTTimeError(f"Reference file {path}: n_lesions is {n_lesions!r}; it must be the number of lesions the "
                          f"reference was built from, a whole number of at least {MIN_REFERENCE_LESIONS} (an SD, and "
                          "the standardisation interval, need 2); build the reference with `cttime reference build` "
                          "from a lesions table.", "standardization")
    refusals, warnings = check_scale(means, sds, features)
    if refusals:
        raise CTTimeError(f"Reference file {path} is not on the scale of CT-TIME's features: "
                          + "; ".join(refusals) + ". Against it every score would be 0 or 1. The file is wrong "
                          "(units, a typo, another parameter file): rebuild it with `cttime reference build`.",
                          "standardization")
    extra = {k: v for k, v in payload.items() if k not in ("features", "n_lesions", "source")}
    return Reference(means, sds, int(n_lesions), str(payload["source"]), extra, scale_warnings=warnings)


def _number(value, path, name):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise CTTimeError(f"Reference file {path}: mean/sd of {name} is not a finite number.", "standardization")
    return number
