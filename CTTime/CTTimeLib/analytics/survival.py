"""Outcome: progression-free survival against the aggregated CT-TIME of each patient (lifelines).

Cox proportional hazards, one model per aggregate (min, median, mean, max; hazard ratio per 0.1 increase of the
score), and Kaplan-Meier curves by the aggregate's status (inflamed / uninflamed) with the log-rank p. The clinical
CSV has patient_id, pfs_months and event (1 progression or death, 0 censored).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.colormap import INFLAMED_HEX, UNINFLAMED_HEX
from ..core.errors import CTTimeError
from ..core.files import write_table, write_text
from ..figures import drawing
from ..scoring import aggregation
from ..scoring.signature import INFLAMED, UNINFLAMED
from . import outcomes
from .provenance import table_warnings, warning_lines

CLINICAL_COLUMNS = ("patient_id", "pfs_months", "event")
SCORE_UNIT = 0.1  # hazard ratios are per this increase of the score
MIN_EVENTS = 10  # events per covariate below which a Cox hazard ratio is not reported (Peduzzi et al. 1995)
NOT_REPORTED = "cannot conclude"


def separation(score, time, event):
    """"highest" or "lowest" when at every event the patient with the event has the highest (lowest) score of those
    still at risk: the partial likelihood then grows without bound, and the fitted hazard ratio is only where the
    optimiser stopped. "" otherwise."""
    score, time, event = (np.asarray(v, dtype=float) for v in (score, time, event))
    at_risk = [score[time >= t] for t in time[event == 1]]
    found = [name for name, test in (("highest", np.max), ("lowest", np.min))
             if all(s == test(risk) for s, risk in zip(score[event == 1], at_risk))]
    return found[0] if len(found) == 1 else ""


def inconclusive(data):
    """Why a Cox model of ``data`` (score, T, E) cannot conclude, or ""."""
    events = int(data["E"].sum())
    if data["score"].nunique() < 2:
        return f"{NOT_REPORTED}: every patient has the same score"
    side = separation(data["score"], data["T"], data["E"])
    if side:
        return (f"{NOT_REPORTED}: perfect separation (at each of the {events} event(s), the patient with the {side} "
                "score still at risk progressed): the hazard ratio is infinite")
    if events < MIN_EVENTS:
        return f"{NOT_REPORTED}: {events} event(s) in {len(data)} patients, fewer than {MIN_EVENTS} for one covariate"
    return ""


def patient_outcomes(lesions, clinical, path, timepoint=None, threshold=0.5):
    """patients.csv rows of one time point joined to the clinical table."""
    clinical = clinical.assign(event=outcomes.binary(clinical["event"], path, "event"),
                               pfs_months=pd.to_numeric(clinical["pfs_months"], errors="coerce"))
    if not (np.isfinite(clinical["pfs_months"]) & (clinical["pfs_months"] >= 0)).all():
        raise CTTimeError(f"{path}: pfs_months must be a number >= 0 in every row.", "input")
    if clinical["patient_id"].duplicated().any():
        raise CTTimeError(f"{path}: each patient_id may appear once.", "input")
    patients = outcomes.patient_aggregates(lesions, timepoint, threshold)
    frame = patients.merge(clinical[list(CLINICAL_COLUMNS)], on="patient_id", how="inner")
    if len(frame) < 3 or frame["event"].sum() < 1:
        raise CTTimeError(f"{path}: {len(frame)} patient(s) with a score and an outcome, {int(frame['event'].sum())} "
                          "event(s); survival analysis needs at least 3 patients and 1 event.", "input")
    return frame


def cox(frame):
    """One Cox model per aggregate: hazard ratio per SCORE_UNIT with 95% CI, Wald p and concordance."""
    from lifelines import CoxPHFitter

    rows = []
    for name in aggregation.AGGREGATES:
        data = pd.DataFrame({"score": frame[f"ct_time_{name}"] / SCORE_UNIT, "T": frame["pfs_months"],
                             "E": frame["event"]})
        row = {"aggregate": name, "n": len(data), "events": int(data["E"].sum())}
        reason = inconclusive(data)
        if reason:  # no numbers that would read as a finding
            row.update(hr_per_0_1=np.nan, hr_ci_low=np.nan, hr_ci_high=np.nan, p=np.nan, concordance=np.nan,
                       note=reason)
            rows.append(row)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitter = CoxPHFitter().fit(data, duration_col="T", event_col="E")
            summary = fitter.summary.loc["score"]
            row.update(hr_per_0_1=float(summary["exp(coef)"]), hr_ci_low=float(summary["exp(coef) lower 95%"]),
                       hr_ci_high=float(summary["exp(coef) upper 95%"]), p=float(summary["p"]),
                       concordance=float(fitter.concordance_index_), note="")
        except Exception as exc:  # lifelines' convergence errors: report, keep the other aggregates
            row.update(hr_per_0_1=np.nan, hr_ci_low=np.nan, hr_ci_high=np.nan, p=np.nan, concordance=np.nan,
                       note=f"not estimable: {type(exc).__name__}")
        rows.append(row)
    return pd.DataFrame(rows)


def kaplan_meier(frame):
    """(log-rank rows per aggregate, figure): survival by each aggregate's status."""
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test

    figure, grid = drawing.new(2, 2, figsize=(9, 7), sharex=True, sharey=True)
    rows = []
    for axes, name in zip(grid.ravel(), aggregation.AGGREGATES):
        status = frame[f"status_{name}"]
        groups = {s: frame[status == s] for s in (INFLAMED, UNINFLAMED)}
        for label, color in ((INFLAMED, INFLAMED_HEX), (UNINFLAMED, UNINFLAMED_HEX)):
            group = groups[label]
            if len(group):
                KaplanMeierFitter(label=f"{label} (n={len(group)})").fit(
                    group["pfs_months"], group["event"]).plot_survival_function(ax=axes, ci_show=False, color=color)
        p = np.nan
        if all(len(g) for g in groups.values()):
            p = float(logrank_test(groups[INFLAMED]["pfs_months"], groups[UNINFLAMED]["pfs_months"],
                                   groups[INFLAMED]["event"], groups[UNINFLAMED]["event"]).p_value)
        events = int(frame["event"].sum())
        note = f"{NOT_REPORTED}: {events} event(s), fewer than {MIN_EVENTS}" if events < MIN_EVENTS else ""
        rows.append({"aggregate": name, "n_inflamed": len(groups[INFLAMED]), "n_uninflamed": len(groups[UNINFLAMED]),
                     "logrank_p": p, "logrank_note": note})
        axes.set_title(f"{name} CT-TIME: log-rank p = " + (f"{p:.3g}" if np.isfinite(p) else "n/a (one group)")
                       + (f"\n({note})" if note else ""), fontsize=9)
        axes.set(xlabel="PFS (months)", ylabel="progression-free", ylim=(0, 1.05))
        axes.legend(fontsize=8, loc="lower left")
    return pd.DataFrame(rows), figure


def analyse(lesions, clinical, clinical_path, timepoint=None, threshold=0.5, lesions_path=None,
            figure_warnings=True):
    """(result dict, Cox table, log-rank table, Kaplan-Meier figure as PNG bytes); the warnings of the run behind
    the lesions (``provenance``; run.json beside ``lesions_path``) are repeated in the result and, with
    ``figure_warnings``, under the figure."""
    frame = patient_outcomes(lesions, clinical, clinical_path, timepoint, threshold)
    cox_table = cox(frame)
    logrank, figure = kaplan_meier(frame)
    found = table_warnings(lesions, lesions_path, used=frame)
    incomplete = outcomes.incomplete_note(frame)
    result = {"clinical": str(clinical_path), "timepoint": timepoint, "n_patients": len(frame),
              "n_unmatched": int(len(clinical) - len(frame)), "events": int(frame["event"].sum()),
              "n_incomplete": int((~frame["aggregate_complete"].astype(bool)).sum()),
              "hazard_ratio_unit": f"per {SCORE_UNIT} increase of the score",
              "cox": _records(cox_table), "logrank": _records(logrank),
              "warnings": found + ([incomplete] if incomplete else [])}
    return result, cox_table, logrank, drawing.png_bytes(drawing.add_warnings(
        figure, result["warnings"] if figure_warnings else []))


def _records(frame):
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


def run(lesions, clinical, clinical_path, out_dir, timepoint=None, threshold=0.5, lesions_path=None):
    """Write survival_cox.csv, survival_logrank.csv, survival.json and kaplan_meier.png; return the result."""
    out_dir = Path(out_dir)
    result, cox_table, logrank, figure = analyse(lesions, clinical, clinical_path, timepoint, threshold, lesions_path)
    drawing.write_png(figure, out_dir / "kaplan_meier.png")
    write_table(cox_table, out_dir / "survival_cox.csv")
    write_table(logrank, out_dir / "survival_logrank.csv")
    write_text(out_dir / "survival.json", json.dumps(result, indent=2) + "\n")
    return result


def summary_lines(result):
    lines = [f"{result['n_patients']} patients, {result['events']} events; Cox HR {result['hazard_ratio_unit']}:"]
    if result["n_unmatched"]:
        lines.insert(0, f"Note: {result['n_unmatched']} clinical row(s) matched no scored patient")
    for row, km in zip(result["cox"], result["logrank"]):
        hr = (row["note"] or "not estimable") if row["hr_per_0_1"] is None else \
            f"HR {row['hr_per_0_1']:.3f} ({row['hr_ci_low']:.3f}-{row['hr_ci_high']:.3f}), p = {row['p']:.3g}, " \
            f"C = {row['concordance']:.3f}"
        p = ("n/a" if km["logrank_p"] is None else f"{km['logrank_p']:.3g}") + (
            f" ({km['logrank_note']})" if km.get("logrank_note") else "")
        lines.append(f"  {row['aggregate']:>6}: {hr}; KM inflamed {km['n_inflamed']} vs uninflamed "
                     f"{km['n_uninflamed']}, log-rank p = {p}")
    return lines + warning_lines(result.get("warnings", []))
