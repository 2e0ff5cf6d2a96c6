"""Longitudinal analysis: how a patient's aggregated CT-TIME changes over time points (BS, FU, BR).

As the authors counted it: lesions are matched by patient and lesion ID, and only lesions scored at every time
point analysed are kept; each patient's matched lesions are aggregated per time point (aggregation.summarize);
the status of the *minimum* score is followed between consecutive time points (inflamed -> uninflamed, ...);
score changes and the volumetric response are taken against the first time point:
volume change = 100 * (sum volume later - sum volume first) / sum volume first, >= 0 Progression, else Regression
(volume: original_shape_MeshVolume summed over the matched lesions, patients.csv's total_volume_mm3).
``n_lesions_<t>`` says how many lesions each study had, against ``n_matched_lesions`` the aggregates stand on.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from ..core.colormap import INFLAMED_HEX, UNINFLAMED_HEX
from ..core.errors import CTTimeError
from ..core.files import write_table
from ..core.lesions import join_warnings
from ..core.timepoints import TIMEPOINTS
from ..figures import drawing
from ..scoring import aggregation
from ..scoring.signature import INFLAMED, UNINFLAMED
from . import outcomes
from .provenance import run_warnings, study_warnings, table_warnings, warning_lines

TRACKED = "min"  # the aggregate whose status is followed, as in the paper
VOLUME = "total_volume_mm3"


def matched(lesions, timepoints):
    """Scored lesions present (by patient_id and lesion_id) at every one of ``timepoints``."""
    lesions = outcomes.scored(lesions[lesions["timepoint"].astype(str).isin(timepoints)])
    present = lesions.groupby(["patient_id", "lesion_id"])["timepoint"].nunique()
    keep = present[present == len(timepoints)].index
    return lesions[pd.MultiIndex.from_frame(lesions[["patient_id", "lesion_id"]]).isin(keep)]


def analyse(lesions, timepoints=None, threshold=0.5):
    """(longitudinal table, one row per patient; transition counts) for the time points present, in order."""
    present = set(lesions["timepoint"].astype(str))
    repeated = sorted({t for t in (timepoints or ()) if list(timepoints).count(t) > 1})
    if repeated:
        raise CTTimeError(f"Time point {', '.join(repeated)} is given more than once; give each once, in order "
                          "(e.g. --timepoints BS,FU,BR).", "input")
    timepoints = [t for t in (timepoints or TIMEPOINTS) if t in present]
    if len(timepoints) < 2:
        raise CTTimeError(f"A longitudinal analysis needs at least two of the time points "
                          f"{', '.join(timepoints or TIMEPOINTS)}; the table has {', '.join(sorted(present))}.",
                          "input")
    per_timepoint = aggregation.summarize(matched(lesions, timepoints), threshold).set_index(
        ["patient_id", "timepoint"])
    in_study = lesions[lesions["lesion_id"].fillna("").astype(str) != ""].groupby(["patient_id", "timepoint"]).size()
    first = timepoints[0]
    rows = []
    for patient in dict.fromkeys(lesions["patient_id"]):
        matched_here = (patient, first) in per_timepoint.index
        row = {"patient_id": patient,
               "n_matched_lesions": int(per_timepoint.loc[(patient, first), "n_lesions"]) if matched_here else 0,
               **{f"n_lesions_{t}": int(in_study.get((patient, t), 0)) for t in timepoints}}
        if not all((patient, t) in per_timepoint.index for t in timepoints):
            row["note"] = f"excluded: no lesion scored at every time point ({', '.join(timepoints)})"
            rows.append(row)
            continue
        for t in timepoints:
            values = per_timepoint.loc[(patient, t)]
            row.update({f"ct_time_{a}_{t}": values[f"ct_time_{a}"] for a in aggregation.AGGREGATES})
            row[f"status_{TRACKED}_{t}"] = values[f"status_{TRACKED}"]
            row[f"{VOLUME}_{t}"] = values[VOLUME]
        for before, after in zip(timepoints, timepoints[1:]):
            row[f"transition_{before}_{after}"] = f"{row[f'status_{TRACKED}_{before}']} -> " \
                                                  f"{row[f'status_{TRACKED}_{after}']}"
        for t in timepoints[1:]:
            row.update({f"ct_time_{a}_change_{first}_{t}": row[f"ct_time_{a}_{t}"] - row[f"ct_time_{a}_{first}"]
                        for a in aggregation.AGGREGATES})
            base = row[f"{VOLUME}_{first}"]
            change = 100.0 * (row[f"{VOLUME}_{t}"] - base) / base if base > 0 else np.nan
            row[f"volume_change_pct_{first}_{t}"] = change
            row[f"volumetric_response_{first}_{t}"] = "" if np.isnan(change) else (
                "Progression" if change >= 0 else "Regression")
        row["note"] = ""
        rows.append(row)
    table = pd.DataFrame(rows)
    table = table[[c for c in table.columns if c != "note"] + ["note"]]
    return table, transition_counts(table, timepoints)


def transition_counts(table, timepoints):
    """Patients per (from, to, status before, status after), every combination listed."""
    rows = []
    for before, after in zip(timepoints, timepoints[1:]):
        for old in (INFLAMED, UNINFLAMED):
            for new in (INFLAMED, UNINFLAMED):
                n = int(((table.get(f"status_{TRACKED}_{before}") == old)
                         & (table.get(f"status_{TRACKED}_{after}") == new)).sum())
                rows.append({"from_timepoint": before, "to_timepoint": after, "from_status": old, "to_status": new,
                             "n_patients": n})
    return pd.DataFrame(rows)


def _band(axes, x0, x1, top0, bottom0, top1, bottom1, color):
    t = np.linspace(0.0, 1.0, 60)
    ease = 3 * t ** 2 - 2 * t ** 3
    axes.fill_between(x0 + (x1 - x0) * t, bottom0 + (bottom1 - bottom0) * ease, top0 + (top1 - top0) * ease,
                      color=color, alpha=0.45, linewidth=0)


def sankey_figure(table, counts, timepoints):
    """A Sankey-style figure of the minimum's status at each time point, flows between consecutive ones."""
    colors = {INFLAMED: INFLAMED_HEX, UNINFLAMED: UNINFLAMED_HEX}
    included = table[table["note"] == ""]
    total, gap, width = max(len(included), 1), 0.04, 0.08
    figure, axes = drawing.new(figsize=(2.2 + 2.0 * len(timepoints), 4.2))
    nodes = {}  # (time point, status) -> (top, bottom)
    for i, t in enumerate(timepoints):
        top = 1.0
        for status in (INFLAMED, UNINFLAMED):
            n = int((included[f"status_{TRACKED}_{t}"] == status).sum())
            height = (1.0 - gap) * n / total
            nodes[(t, status)] = (top, top - height)
            if n:
                axes.add_patch(Rectangle((i - width / 2, top - height), width, height, color=colors[status]))
                axes.text(i + width / 2 + 0.02, top - height / 2, f"{status}\nn={n}", va="center", fontsize=8)
            top -= height + gap
    for i, (before, after) in enumerate(zip(timepoints, timepoints[1:])):
        out_used = {s: nodes[(before, s)][0] for s in (INFLAMED, UNINFLAMED)}
        in_used = {s: nodes[(after, s)][0] for s in (INFLAMED, UNINFLAMED)}
        pairs = counts[(counts["from_timepoint"] == before) & (counts["to_timepoint"] == after)]
        for row in pairs.to_dict("records"):
            height = (1.0 - gap) * row["n_patients"] / total
            if not height:
                continue
            old, new = row["from_status"], row["to_status"]
            _band(axes, i + width / 2, i + 1 - width / 2, out_used[old], out_used[old] - height,
                  in_used[new], in_used[new] - height, colors[old])
            out_used[old] -= height
            in_used[new] -= height
    axes.set_xticks(range(len(timepoints)))
    axes.set_xticklabels(timepoints)
    axes.set_yticks([])
    axes.set_xlim(-0.3, len(timepoints) - 0.4)
    axes.set_ylim(-0.05, 1.05)
    for side in ("left", "right", "top"):
        axes.spines[side].set_visible(False)
    axes.set_title(f"Status of the minimum CT-TIME per patient (n={len(included)})", fontsize=10)
    return figure


def figure_png(table, counts):
    """The Sankey-style figure of an analysis as PNG bytes."""
    used = list(dict.fromkeys(list(counts["from_timepoint"]) + list(counts["to_timepoint"])))
    return drawing.png_bytes(sankey_figure(table, counts, used))


def patient_warnings(table, lesions, lesions_path=None):
    """Each patient's ``warning`` cell: the run's warnings and those of its own studies and lesions."""
    run_wide = run_warnings(lesions, lesions_path)
    own = {}
    for patient_id, timepoint, text in study_warnings(lesions, run_wide):
        own.setdefault(patient_id, []).append(f"{timepoint}: {text}")
    return [join_warnings(run_wide + own.get(patient, [])) for patient in table["patient_id"]]


def run(lesions, out_dir, timepoints=None, threshold=0.5, lesions_path=None):
    """Write longitudinal.csv (with each patient's warnings), transitions.csv and transitions.png (the warnings
    of the run behind the table under it, see ``provenance``); return (table, counts, warnings)."""
    out_dir = Path(out_dir)
    table, counts = analyse(lesions, timepoints, threshold)
    warnings = table_warnings(lesions, lesions_path)
    table["warning"] = patient_warnings(table, lesions, lesions_path)
    write_table(table, out_dir / "longitudinal.csv")
    write_table(counts, out_dir / "transitions.csv")
    used = list(dict.fromkeys(list(counts["from_timepoint"]) + list(counts["to_timepoint"])))
    drawing.write_png(drawing.png_bytes(drawing.add_warnings(sankey_figure(table, counts, used), warnings)),
                      out_dir / "transitions.png")
    return table, counts, warnings


def summary_lines(table, counts, warnings=()):
    included = int((table["note"] == "").sum())
    lines = [f"{included} patient(s) with lesions matched at every time point, {len(table) - included} excluded"]
    for (before, after), group in counts.groupby(["from_timepoint", "to_timepoint"], sort=False):
        parts = [f"{r['from_status']} -> {r['to_status']}: {r['n_patients']}" for r in group.to_dict("records")]
        lines.append(f"{before} -> {after}: " + ", ".join(parts))
    return lines + warning_lines(warnings)
