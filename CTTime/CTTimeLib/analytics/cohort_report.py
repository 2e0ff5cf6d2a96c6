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
from .provenance import run_record, run_warnings, study_warnings

STYLE = """body{font-family:sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}
.table{max-width:100%;overflow-x:auto}table{border-collapse:collapse;font-size:.8em;max-width:100%}
td,th{border:1px solid #ccc;padding:2px 5px;text-align:right;overflow-wrap:break-word}
th{background:#f2f2f2;vertical-align:bottom;font-weight:600}td.text,th.text{text-align:left}
.warning{background:#fff3cd;border:1px solid #e6c619;padding:.6em 1em}.note{color:#555;font-size:.9em}
img{max-width:100%}"""

LONGITUDINAL_SHOWN = ("patient_id", "n_matched", "ct_time_min_", "status_min_", "transition_", "volume_change",
                      "volumetric_response", "note")
HEADERS = {"location": "Location", "patient_id": "Patient", "timepoint": "Time point", "n_scored": "Lesions scored",
           "n_lesions": "Lesions", "aggregate_coverage": "Coverage", "ct_time_min": "Min CT-TIME",
           "min_lesion_id": "Min set by", "ct_time_median": "Median CT-TIME", "ct_time_mean": "Mean CT-TIME",
           "ct_time_max": "Max CT-TIME", "ct_time_sd": "SD of scores", "status_min": "Status (min)",
           "heterogeneity": "Heterogeneity", "n_matched_lesions": "Matched lesions",
           "ct_time_min_change": "Change of min CT-TIME", "transition": "Status (min)",
           "volume_change_pct": "Volume change %", "volumetric_response": "Volumetric response", "note": "Note",
           "aggregate": "Aggregate", "n": "Patients", "events": "Events", "hr_per_0_1": "Cox HR per 0.1",
           "hr_ci_low": "HR 95% CI low", "hr_ci_high": "HR 95% CI high", "p": "Cox p", "concordance": "C-index",
           "n_inflamed": "Inflamed", "n_uninflamed": "Uninflamed", "logrank_p": "Log-rank p",
           "logrank_note": "Log-rank note"}


def header(column):
    """A readable column header: ct_time_min_BS -> "Min CT-TIME BS", transition_BS_FU -> "Status (min) BS → FU"."""
    parts = column.split("_")
    tail = []
    while len(parts) > 1 and parts[-1] in TIMEPOINTS:
        tail.insert(0, parts.pop())
    base = "_".join(parts).rstrip("_")
    name = HEADERS.get(base, base.replace("_", " "))
    return f"{name} {' → '.join(tail)}".strip()


def number_text(column, value):
    """One format per kind of number, as the printed summaries: scores, their changes and hazard ratios 3 decimals,
    p-values 3 significant digits (< 0.001 below), percentages 1 decimal, counts whole."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, str) or isinstance(value, (bool, np.bool_)):
        return str(value).replace(" -> ", " → ")
    if (column in ("n", "events") or column.startswith("n_")) and float(value).is_integer():
        return f"{int(value)}"
    if column in ("p", "logrank_p"):
        return "< 0.001" if value < 0.001 else f"{value:.3g}"
    if column.startswith("volume_change_pct"):
        return f"{value:+.1f}"
    if "_change_" in column:
        return f"{value:+.3f}"
    return f"{value:.3f}"


def _image(data, alt):
    return f'<img alt="{html.escape(alt)}" src="{drawing.data_uri(data)}">'


def _lines(lines):
    return "".join(f"<p>{html.escape(line)}</p>" for line in lines)


def _table(frame):
    """An HTML table with readable headers and one number format per kind; text columns left-aligned."""
    texts = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, str)).any()]
    kind = {c: " class='text'" if c in texts else "" for c in frame.columns}
    head = "".join(f"<th{kind[c]}>{html.escape(header(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td{kind[c]}>{html.escape(number_text(c, v))}</td>" for c, v in row.items())
                   + "</tr>" for row in frame.to_dict("records"))
    return f"<div class='table'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def grouped_warnings(lesions, lesions_path, extra=()):
    """Every warning once: the run's, then each study's text with how many studies carry it and which."""
    run_wide = run_warnings(lesions, lesions_path)
    places = {}
    for patient_id, timepoint, text in study_warnings(lesions, run_wide):
        places.setdefault(text, []).append(f"{patient_id} {timepoint}")
    found = list(run_wide)
    for text, where in places.items():
        shown = ", ".join(where[:6]) + (f" and {len(where) - 6} more" if len(where) > 6 else "")
        found.append(f"{text} ({len(where)} studies: {shown})" if len(where) > 1 else f"{where[0]}: {text}")
    return list(dict.fromkeys(found + [text for text in extra if text]))


def location_groups(lesions):
    """(location, time point, scores) of every location at every time point, locations by name, time points in
    order: a lesion at BS and again at FU is two measurements, never pooled."""
    places = lesions.assign(location=lesions["location"].fillna("").astype(str).replace("", "other"),
                            timepoint=lesions["timepoint"].astype(str))
    keys = sorted(set(zip(places["location"], places["timepoint"])), key=lambda k: (k[0], order_key(k[1])))
    return [(location, timepoint, places.loc[(places["location"] == location) & (places["timepoint"] == timepoint),
                                             "ct_time_score"]) for location, timepoint in keys]


def location_table(groups, threshold=0.5):
    return pd.DataFrame([{"location": location, "timepoint": timepoint, "n_lesions": len(scores),
                          "ct_time_median": float(scores.median()), "n_inflamed": int((scores > threshold).sum())}
                         for location, timepoint, scores in groups])


def location_figure(groups):
    """Scores of the lesions by location and time point: a box per location and time point (those of a location
    side by side), every lesion as a point in its score colour."""
    locations = list(dict.fromkeys(location for location, _, _ in groups))
    positions, position, previous = [], 0.0, None
    for location, _, _ in groups:
        position += 1.0 if location == previous or previous is None else 1.6
        positions.append(position)
        previous = location
    figure, axes = drawing.new(figsize=(1.6 + 0.9 * position, 4))
    rng = np.random.default_rng(0)  # fixed jitter: the same table gives the same figure
    axes.boxplot([scores for _, _, scores in groups], positions=positions, widths=0.5, showfliers=False)
    axes.set_xticks(positions)
    axes.set_xticklabels([f"{location}\n{timepoint} (n={len(scores)})" for location, timepoint, scores in groups],
                         fontsize=8)
    for x, (_, _, values) in zip(positions, groups):
        axes.scatter(x + rng.uniform(-0.15, 0.15, len(values)), values, s=22, edgecolors="black", linewidths=0.4,
                     c=[colormap.score_hex(v) for v in values], zorder=3)
    axes.axhline(0.5, color="#888888", linestyle="--", linewidth=1)
    axes.set(ylabel="CT-TIME score", ylim=(-0.02, 1.02), xlim=(positions[0] - 0.8, positions[-1] + 0.8),
             title="CT-TIME by lesion location" + (" and time point" if len(groups) > len(locations) else ""))
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
    warnings = grouped_warnings(lesions, lesions_path, [outcomes.incomplete_note(patients)])
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
    summary += [f"Standardisation: {text.split(' - ', 1)[0]}" for text in standardizations]  # its warning: above
    if record.get("harmonization"):
        h = record["harmonization"]
        summary.append(f"Harmonisation: {h.get('method')} with {h.get('package')} {h.get('package_version')} across "
                       f"'{h.get('batch_column')}'")
    parts += ["<h2>Cohort</h2>", _lines(summary)]
    groups = location_groups(scored)
    parts += ["<h2>Scores by lesion location</h2>", _image(location_figure(groups), "scores by location"),
              _table(location_table(groups, threshold))]
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
                                                lesions_path, figure_warnings=False)  # shown once, above
        parts += [f"<h2>Evaluation against {html.escape(str(labels_path))}</h2>", _image(figure, "ROC"),
                  _lines(evaluation.summary_lines(dict(result, warnings=[])))]
    if clinical is not None:
        result, cox_table, logrank, figure = survival.analyse(lesions, clinical, clinical_path, timepoint, threshold,
                                                              lesions_path, figure_warnings=False)
        parts += [f"<h2>Progression-free survival ({html.escape(str(clinical_path))})</h2>",
                  _image(figure, "Kaplan-Meier"), _lines(survival.summary_lines(dict(result, warnings=[]))),
                  _table(cox_table.merge(logrank, on="aggregate"))]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>CT-TIME cohort report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
