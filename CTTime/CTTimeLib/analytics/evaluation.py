"""Evaluation: how well scores separate labelled lesions or patients (e.g. GEP-inflamed vs not).

AUC with a 95% CI from DeLong's variance (computed with midranks, Sun & Xu 2014), sensitivity and specificity at
the model threshold, Hosmer-Lemeshow calibration over groups of equal size, and a ROC figure.
"""

import json
from pathlib import Path

import numpy as np
from scipy import stats

from ..core.colormap import INFLAMED_HEX
from ..core.files import write_table, write_text
from ..figures import drawing
from . import outcomes
from .provenance import table_warnings, warning_lines

CI_METHOD = "DeLong (normal approximation, clipped to 0..1)"
MIN_GROUP_SIZE = 5  # Hosmer-Lemeshow: scores per group, at the least


def delong(scores, labels):
    """AUC and its DeLong variance for scores of positives (label 1) against negatives (label 0)."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    positives, negatives = scores[labels == 1], scores[labels == 0]
    m, n = len(positives), len(negatives)
    combined = stats.rankdata(np.concatenate([positives, negatives]))
    within_positive, within_negative = stats.rankdata(positives), stats.rankdata(negatives)
    auc = (combined[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    v10 = (combined[:m] - within_positive) / n  # per positive: share of negatives below it (ties 1/2)
    v01 = 1.0 - (combined[m:] - within_negative) / m  # per negative: share of positives above it
    variance = (np.var(v10, ddof=1) / m if m > 1 else 0.0) + (np.var(v01, ddof=1) / n if n > 1 else 0.0)
    return float(auc), float(variance)


def auc_ci(auc, variance, level=0.95):
    half = stats.norm.ppf(0.5 + level / 2.0) * np.sqrt(variance)
    return float(max(0.0, auc - half)), float(min(1.0, auc + half))


def hosmer_lemeshow(probabilities, labels, groups=10, min_size=MIN_GROUP_SIZE):
    """Hosmer-Lemeshow statistic over ``groups`` groups of equal size by predicted probability (df = groups - 2),
    fewer groups when that leaves a group smaller than ``min_size``; not computed (with the reason) below 3 groups."""
    probabilities, labels = np.asarray(probabilities, dtype=float), np.asarray(labels, dtype=int)
    groups = min(groups, len(labels) // min_size)
    if groups < 3:
        return {"statistic": None, "df": None, "p": None, "groups": [],
                "not_computed": f"{len(labels)} scores make fewer than 3 groups of at least {min_size} (a "
                                f"chi-square on smaller groups means nothing); it needs {3 * min_size} or more"}
    order = np.argsort(probabilities, kind="stable")
    statistic, table = 0.0, []
    for index in np.array_split(order, groups):
        expected, observed, size = probabilities[index].sum(), labels[index].sum(), len(index)
        mean = expected / size
        statistic += (observed - expected) ** 2 / (size * mean * (1 - mean)) if 0 < mean < 1 else 0.0
        table.append({"n": int(size), "observed": int(observed), "expected": float(expected)})
    return {"statistic": float(statistic), "df": groups - 2, "p": float(stats.chi2.sf(statistic, groups - 2)),
            "groups": table}


def metrics(scores, labels, threshold=0.5):
    """AUC with DeLong CI, sensitivity/specificity at ``threshold`` and Hosmer-Lemeshow for one set of scores."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    auc, variance = delong(scores, labels)
    predicted = scores > threshold
    positives, negatives = labels == 1, labels == 0
    return {"n": int(len(labels)), "n_positive": int(positives.sum()), "n_negative": int(negatives.sum()),
            "auc": auc, "auc_ci95": list(auc_ci(auc, variance)), "auc_variance": variance, "ci_method": CI_METHOD,
            "threshold": threshold,
            "sensitivity": float((predicted & positives).sum() / positives.sum()),
            "specificity": float((~predicted & negatives).sum() / negatives.sum()),
            "hosmer_lemeshow": hosmer_lemeshow(scores, labels)}


def roc_figure(scores, labels, result, title):
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    figure, axes = drawing.new(figsize=(4.6, 4.4))
    axes.plot([0, 1], [0, 1], color="#bbbbbb", linestyle="--", linewidth=1)
    low, high = result["auc_ci95"]
    axes.plot(fpr, tpr, color=INFLAMED_HEX, linewidth=2,
              label=f"AUC {result['auc']:.3f} (95% CI {low:.3f}-{high:.3f}, DeLong)")
    axes.plot(1 - result["specificity"], result["sensitivity"], "o", color="black",
              label=f"threshold {result['threshold']:g}")
    axes.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), title=title)
    axes.legend(loc="lower right", fontsize=8)
    return figure


def evaluate(lesions, labels, labels_path, aggregate="min", timepoint=None, threshold=0.5, lesions_path=None,
             figure_warnings=True):
    """(result dict, scored and labelled rows, ROC figure as PNG bytes); the warnings of the run behind the
    lesions (``provenance``; run.json beside ``lesions_path``) are repeated in the result and, with
    ``figure_warnings``, under the figure."""
    frame, level, notes = outcomes.attach_labels(lesions, labels, labels_path, aggregate, timepoint, threshold)
    result = metrics(frame["score"], frame["label"], threshold)
    result.update(level=level, aggregate=aggregate if level == "patient" else None, labels=str(labels_path),
                  notes=notes, warnings=table_warnings(lesions, lesions_path, used=frame))
    title = f"ROC, {level} level" + (f" ({aggregate} score)" if level == "patient" else "")
    keys = [c for c in ("patient_id", "timepoint", "lesion_id") if c in frame]
    extra = [c for c in ("aggregate_coverage", "warning") if c in frame]
    return result, frame[keys + ["score", "label"] + extra], drawing.png_bytes(drawing.add_warnings(
        roc_figure(frame["score"], frame["label"], result, title), result["warnings"] if figure_warnings else []))


def run(lesions, labels, labels_path, out_dir, aggregate="min", timepoint=None, threshold=0.5, lesions_path=None):
    """Evaluate and write evaluation.json, evaluation_scores.csv and roc.png; return the result dict."""
    out_dir = Path(out_dir)
    result, frame, figure = evaluate(lesions, labels, labels_path, aggregate, timepoint, threshold, lesions_path)
    drawing.write_png(figure, out_dir / "roc.png")
    write_table(frame, out_dir / "evaluation_scores.csv")
    write_text(out_dir / "evaluation.json", json.dumps(result, indent=2) + "\n")
    return result


def summary_lines(result):
    """Plain-text lines for the terminal and the report."""
    low, high = result["auc_ci95"]
    hl = result["hosmer_lemeshow"]
    lines = [f"{result['n']} {result['level']}s ({result['n_positive']} positive, {result['n_negative']} negative)"
             + (f", {result['aggregate']} score per patient" if result.get("aggregate") else ""),
             f"AUC {result['auc']:.3f} (95% CI {low:.3f}-{high:.3f}, {result['ci_method']})",
             f"Sensitivity {result['sensitivity']:.3f}, specificity {result['specificity']:.3f} at score > "
             f"{result['threshold']:g}"]
    if hl["statistic"] is not None:
        lines.append(f"Hosmer-Lemeshow chi2 {hl['statistic']:.2f} on {hl['df']} df, p = {hl['p']:.3g} "
                     f"({len(hl['groups'])} groups of {min(g['n'] for g in hl['groups'])} or more)")
    else:
        lines.append(f"Hosmer-Lemeshow calibration not computed: {hl['not_computed']}")
    return lines + [f"Note: {n}" for n in result.get("notes", [])] + warning_lines(result["warnings"])
