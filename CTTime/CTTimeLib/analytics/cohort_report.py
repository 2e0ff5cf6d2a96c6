"""Cohort report: one self-contained HTML file (figures embedded as base64 PNG) summarising a lesions table.

Always: the standardisation used and its warnings, scores by lesion location and per-patient heterogeneity.
When they apply: the longitudinal transitions (two or more of BS, FU, BR), the evaluation against labels and
the survival analysis against a clinical table.
"""

import html

import numpy as np
import pandas as pd

from .. import __version__
from ..core import colormap
from ..core.errors import CTTimeError
from ..core.timepoints import TIMEPOINTS, order_key
from ..figures import drawing
from . import evaluation, longitudinal, outcomes, survival
from .provenance import run_record, table_warnings

STYLE = """body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
.warning{background:#fff3cd;border:1px solid #e6c619;padding:.6em 1em}.note{color:#555;font-size:.9em}
img{max-width:100%}"""


LONGITUDINAL_SHOWN = ("patient_id", "n_matched", "ct_time_min_", "status_min_", "transition_", "volume_change",
                      "volumetric_response", "note")


def _image(data, alt):
    return f'<img alt="{html.escape(alt)}" src="{drawing.data_uri(data)}">'


def _lines(lines):
    return "".join(f"<p>{html.escape(line)}</p>" for line in lines)


def _table(frame, digits=3):
    return frame.to_html(index=False, float_format=lambda v: f"{v:.{digits}g}", na_rep="", border=0)


def location_figure(lesions):
    """Scores of the lesions by location: box plot with every lesion as a point in its score colour."""
    locations = sorted(lesions["location"].fillna("other").astype(str).unique())
    figure, axes = drawing.new(figsize=(1.6 + 1.3 * len(locations), 4))
    rng = np.random.default_rng(0)  # fixed jitter: the same table gives the same figure
    data = [lesions.loc[lesions["location"].fillna("other").astype(str) == loc, "ct_time_score"] for loc in locations]
    axes.boxplot(data, widths=0.5, showfliers=False)
    axes.set_xticks(range(1, len(locations) + 1))
    axes.set_xticklabels([f"{loc}\n(n={len(d)})" for loc, d in zip(locations, data)])
    for i, values in enumerate(data, start=1):
        axes.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=22, edgecolors="black", linewidths=0.4,
                     c=[colormap.score_hex(v) for v in values], zorder=3)
    axes.axhline(0.5, color="#888888", linestyle="--", linewidth=1)
    axes.set(ylabel="CT-TIME score", ylim=(-0.02, 1.02), title="CT-TIME by lesion location")
    return drawing.png_bytes(figure)


def heterogeneity_figure(lesions, patients):
    """Each patient (and time point) a row: its lesions' scores, the range between min and max."""
    rows = list(reversed(patients[patients["n_scored"] > 0].sort_values("ct_time_min").to_dict("records")))
    figure, axes = drawing.new(figsize=(7, min(2 + 0.22 * len(rows), 30)))
    for y, row in enumerate(rows):
        scores = lesions.loc[(lesions["patient_id"] == row["patient_id"]) & (lesions["timepoint"] == row["timepoint"]),
                             "ct_time_score"]
        axes.plot([row["ct_time_min"], row["ct_time_max"]], [y, y], color="#bbbbbb", zorder=1)
        axes.scatter(scores, [y] * len(scores), s=20, c=[colormap.score_hex(v) for v in scores], edgecolors="black",
                     linewidths=0.4, zorder=2)
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels([f"{row['patient_id']} {row['timepoint']}" for row in rows], fontsize=7)
    axes.axvline(0.5, color="#888888", linestyle="--", linewidth=1)
    axes.set(xlabel="CT-TIME score of each lesion", xlim=(-0.02, 1.02), title="Per-patient heterogeneity")
    return drawing.png_bytes(figure)


def build(lesions, lesions_path, labels=None, labels_path=None, clinical=None, clinical_path=None, aggregate="min",
          timepoint=None, threshold=0.5):
    """The report's HTML text."""
    record = run_record(lesions_path)
    scored = outcomes.scored(lesions)
    if scored.empty:
        raise CTTimeError(f"{lesions_path} has no scored lesion: nothing to report.", "input")
    patients = outcomes.patient_aggregates(lesions, threshold=threshold, by_timepoint=True)
    warnings = table_warnings(lesions, lesions_path)
    incomplete = outcomes.incomplete_note(patients)
    warnings += [incomplete] if incomplete else []
    failed = int(len(lesions) - len(scored))
    parts = [f"<h1>CT-TIME cohort report</h1><p class='note'>{html.escape(str(lesions_path))} &middot; CTTime "
             f"{__version__} &middot; research use only</p>"]
    parts.append("<div class='warning'>" + ("".join(f"<p><b>WARNING:</b> {html.escape(w)}</p>" for w in warnings)
                                            or "<p>No warning.</p>")
                 + "<p>CT-TIME z-scores each feature against a reference population; a score is only as good as "
                   "that standardisation.</p></div>")
    standardizations = sorted(set(lesions.get("standardization", pd.Series(dtype=str)).dropna().astype(str)) - {""})
    summary = [f"{scored['patient_id'].nunique()} patients, {len(scored)} scored lesions, {failed} failed; time "
               f"points: {', '.join(sorted(scored['timepoint'].astype(str).unique(), key=order_key))}",
               f"Inflamed lesions (score > {threshold:g}): {int((scored['ct_time_score'] > threshold).sum())}"]
    summary += [f"Standardisation: {text}" for text in standardizations]
    if record.get("harmonization"):
        h = record["harmonization"]
        summary.append(f"Harmonisation: {h.get('method')} with {h.get('package')} {h.get('package_version')} across "
                       f"'{h.get('batch_column')}'")
    parts += ["<h2>Cohort</h2>", _lines(summary)]
    parts += ["<h2>Scores by lesion location</h2>", _image(location_figure(scored), "scores by location")]
    classes = patients[patients["heterogeneity"] != ""]["heterogeneity"].value_counts()
    parts += ["<h2>Per-patient heterogeneity</h2>", _image(heterogeneity_figure(scored, patients), "heterogeneity"),
              "<p>Heterogeneity (SD of the lesion scores): " + html.escape(
                  ", ".join(f"{k}: {v}" for k, v in classes.items())) + "</p>",
              _table(patients[["patient_id", "timepoint", "n_scored", "n_lesions", "aggregate_coverage", "ct_time_min",
                               "min_lesion_id", "ct_time_median", "ct_time_mean", "ct_time_max", "ct_time_sd",
                               "status_min", "heterogeneity"]])]
    present = set(scored["timepoint"].astype(str)) & set(TIMEPOINTS)
    if len(present) >= 2:
        table, counts = longitudinal.analyse(lesions, threshold=threshold)
        parts += ["<h2>Longitudinal: status of the minimum CT-TIME</h2>",
                  _image(longitudinal.figure_png(table, counts), "transitions"),
                  _lines(longitudinal.summary_lines(table, counts)),
                  _table(table[[c for c in table.columns if c.startswith(LONGITUDINAL_SHOWN)]])]
    if labels is not None:
        result, _, figure = evaluation.evaluate(lesions, labels, labels_path, aggregate, timepoint, threshold,
                                                lesions_path)
        parts += [f"<h2>Evaluation against {html.escape(str(labels_path))}</h2>", _image(figure, "ROC"),
                  _lines(evaluation.summary_lines(result))]
    if clinical is not None:
        result, cox_table, logrank, figure = survival.analyse(lesions, clinical, clinical_path, timepoint, threshold,
                                                              lesions_path)
        parts += [f"<h2>Progression-free survival ({html.escape(str(clinical_path))})</h2>",
                  _image(figure, "Kaplan-Meier"), _lines(survival.summary_lines(result)),
                  _table(cox_table.merge(logrank, on="aggregate"))]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>CT-TIME cohort report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
