"""Standardisation: the model takes z-scores, not raw features.

Two modes, one mechanism (a ``Reference`` of per-feature mean and SD):

* cohort: the reference is computed from the lesions scored together (mean and sample SD, n-1, like R's
  ``scale()`` in the published code), optionally per group (e.g. per time point);
* reference: a stored JSON file {"features": {name: {"mean", "sd"}}, "n_lesions", "source", ...}.

A reference built from fewer than ``MIN_RELIABLE_LESIONS`` lesions, or marked as a demo, carries a warning that
every output repeats.
"""

import datetime
import json
import math
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import CTTimeError
from ..io.tables import read_json

COHORT = "cohort"  # standardise over the lesions scored together
MIN_RELIABLE_LESIONS = 20
Z_PREFIX = "z_"


@dataclass
class Reference:
    """Per-feature mean and SD with their provenance."""

    means: dict
    sds: dict
    n_lesions: int
    source: str
    extra: dict = field(default_factory=dict)
    mode: str = "reference"

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
        if not reasons:
            return None
        return "NOT CLINICALLY CALIBRATED: " + "; ".join(reasons)

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


def from_lesions(frame, features, source, mode="reference", **extra):
    """A reference computed from the rows of a lesions table (mean and sample SD, n-1)."""
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise CTTimeError(f"The lesions table has no column {', '.join(missing)}; it needs the signature's "
                          "features as pyradiomics names them.", "standardization")
    values = frame[list(features)].astype(float)
    values = values[np.isfinite(values).all(axis=1)]
    if len(values) < 2:
        raise CTTimeError(f"Cannot z-score {source}: {len(values)} scorable lesion(s); cohort standardisation "
                          "needs at least 2 (use --reference REF.json to score a single lesion).", "standardization")
    sds = values.std(ddof=1)
    flat = [name for name in features if not sds[name] > 0]
    if flat:
        raise CTTimeError(f"Cannot z-score {source}: feature(s) {', '.join(flat)} have SD 0 over "
                          f"{len(values)} lesions; add lesions or use a reference.", "standardization")
    return Reference({n: float(values[n].mean()) for n in features}, {n: float(sds[n]) for n in features},
                     len(values), source, dict(extra), mode)


def build(frame, features, source, model_name, tool_version, demo=False):
    """A reference to store as JSON, with its creation date, tool version and model."""
    extra = {"created": datetime.date.today().isoformat(), "tool_version": tool_version, "model": model_name}
    if demo:
        extra["demo"] = True
    return from_lesions(frame, features, source, **extra)


def load(path, features, model_name=None):
    """Read and validate a reference JSON file for the given features (and model, when it names one)."""
    payload = read_json(path, "Reference file", "standardization")
    for key in ("features", "n_lesions", "source"):
        if key not in payload:
            raise CTTimeError(f"Reference file {path} lacks the required key {key!r} (needs features, n_lesions, "
                              "source).", "standardization")
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
    try:
        n_lesions = int(payload["n_lesions"])
    except (TypeError, ValueError, OverflowError):
        raise CTTimeError(f"Reference file {path}: n_lesions must be a whole number.", "standardization") from None
    extra = {k: v for k, v in payload.items() if k not in ("features", "n_lesions", "source")}
    return Reference(means, sds, n_lesions, str(payload["source"]), extra)


def _number(value, path, name):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise CTTimeError(f"Reference file {path}: mean/sd of {name} is not a finite number.", "standardization")
    return number
