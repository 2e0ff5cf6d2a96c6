"""Cohort analytics (longitudinal, ComBat, evaluate, survival, train, cohort-report) on real sts-ct features.

The shared cohort has one lesion per patient and one time point, so multi-lesion, multi-time-point cohorts are
built from the real extracted features of several sts-ct lesions assigned to synthetic patients and time points;
labels and outcomes are generated from the real features with a fixed seed.
"""

import itertools
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from CTTimeLib.analytics import evaluation, training
from CTTimeLib.cli import commands
from CTTimeLib.core.errors import CTTimeError
from CTTimeLib.core.resources import MODEL_FILE
from CTTimeLib.run import pipeline, study
from CTTimeLib.scoring import harmonization, signature, standardization

N_CASES = 24
P90, ELONG = "original_firstorder_90Percentile", "original_shape_Elongation"


@pytest.fixture(scope="module")
def features(shared_sts, extractor):
    """Raw pyradiomics rows of the N_CASES sts-ct lesions with the smallest masks (quickest to extract)."""
    folders = sorted((p for p in shared_sts.iterdir() if (p / "CT_mask.nii.gz").exists()),
                     key=lambda p: ((p / "CT_mask.nii.gz").stat().st_size, p.name))[:N_CASES]
    rows = []
    for folder in folders:
        case = pipeline.Case(folder.name, "BS", str(folder / "CT_image.nii.gz"), str(folder / "CT_mask.nii.gz"))
        rows += study.extract_case(case, extractor)
    table = pd.DataFrame(rows)
    assert (table["error"] == "").all(), table["error"]
    return table.drop(columns=["image", "segmentation"], errors="ignore")


def _written(table, out_dir, **options):
    """lesions.csv and patients.csv as CTTime writes them (pipeline.rescore of raw feature rows)."""
    pipeline.rescore(table, out_dir, pipeline.Options(**options))
    return out_dir / "lesions.csv"


def _run(argv, capsys=None):
    code = commands.main([str(a) for a in argv])
    out = capsys.readouterr() if capsys else None
    assert code == 0, out
    return out


def _longitudinal_cohort(features):
    """6 patients x BS, FU, BR x 2 lesions from real rows, plus P7 whose lesion L1 lacks BR and P8 without FU."""
    rows, pool = [], itertools.cycle(range(len(features)))
    plan = [(f"P{p}", t, f"L{l}") for p in range(1, 7) for t in ("BS", "FU", "BR") for l in (1, 2)]
    plan += [("P7", t, l) for t in ("BS", "FU", "BR") for l in ("L1", "L2") if (t, l) != ("BR", "L1")]
    plan += [("P8", t, "L1") for t in ("BS", "BR")]
    for patient, timepoint, lesion in plan:
        row = features.iloc[next(pool)].copy()
        row["patient_id"], row["timepoint"], row["lesion_id"] = patient, timepoint, lesion
        rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True)


def test_longitudinal_matches_an_independent_count(features, tmp_path, capsys):
    lesions_csv = _written(_longitudinal_cohort(features), tmp_path / "run", group_by=("timepoint",))
    lesions = pd.read_csv(lesions_csv, dtype={"patient_id": str})
    out = _run(["longitudinal", lesions_csv, "--out", tmp_path / "long"], capsys).out
    table = pd.read_csv(tmp_path / "long" / "longitudinal.csv", dtype={"patient_id": str}).set_index("patient_id")
    counts = pd.read_csv(tmp_path / "long" / "transitions.csv")

    expected = {}
    for patient in [f"P{p}" for p in range(1, 8)]:
        rows = lesions[lesions["patient_id"] == patient]
        keep = [l for l in rows["lesion_id"].unique() if len(rows[rows["lesion_id"] == l]) == 3]
        rows = rows[rows["lesion_id"].isin(keep)]
        by_tp = {t: rows[rows["timepoint"] == t] for t in ("BS", "FU", "BR")}
        status = {t: "inflamed" if by_tp[t]["ct_time_score"].min() > 0.5 else "uninflamed" for t in by_tp}
        volume = {t: by_tp[t]["original_shape_MeshVolume"].sum() for t in by_tp}
        expected[patient] = status
        assert table.loc[patient, "n_matched_lesions"] == len(keep) == (1 if patient == "P7" else 2)
        for t in by_tp:
            assert table.loc[patient, f"ct_time_min_{t}"] == pytest.approx(by_tp[t]["ct_time_score"].min(), abs=1e-12)
            assert table.loc[patient, f"status_min_{t}"] == status[t]
        assert table.loc[patient, "transition_BS_FU"] == f"{status['BS']} -> {status['FU']}"
        change = 100 * (volume["FU"] - volume["BS"]) / volume["BS"]
        assert table.loc[patient, "volume_change_pct_BS_FU"] == pytest.approx(change, rel=1e-9)
        assert table.loc[patient, "volumetric_response_BS_FU"] == ("Progression" if change >= 0 else "Regression")
        assert table.loc[patient, "ct_time_mean_change_BS_FU"] == pytest.approx(
            by_tp["FU"]["ct_time_score"].mean() - by_tp["BS"]["ct_time_score"].mean(), abs=1e-12)
    assert table.loc["P8", "note"].startswith("excluded")
    for row in counts.to_dict("records"):
        n = sum(s[row["from_timepoint"]] == row["from_status"] and s[row["to_timepoint"]] == row["to_status"]
                for s in expected.values())
        assert row["n_patients"] == n, row
    assert counts["n_patients"].sum() == 2 * 7 and "7 patient(s)" in out
    first = (tmp_path / "long" / "transitions.png").read_bytes()
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    _run(["longitudinal", lesions_csv, "--out", tmp_path / "again"], capsys)
    assert (tmp_path / "again" / "transitions.png").read_bytes() == first  # deterministic figure


def _batched(features):
    """Two batches; batch B's intensities 40 HU higher, as a miscalibrated scanner would give."""
    table = features.copy()
    table["batch"] = ["A" if i % 2 else "B" for i in range(len(table))]
    intensities = [f"original_firstorder_{n}" for n in ("10Percentile", "90Percentile", "Maximum", "Mean", "Median",
                                                        "Minimum")]
    table.loc[table["batch"] == "B", intensities] += 40.0
    return table


def test_combat_harmonisation_is_neurocombat_and_recorded(features, tmp_path):
    from neuroCombat import neuroCombat

    table = _batched(features)
    harmonised = pd.read_csv(_written(table, tmp_path / "h", harmonize_by="batch"))
    plain = pd.read_csv(_written(table, tmp_path / "p"))
    version = harmonization.package_version()
    assert (harmonised["standardization"].str.startswith(f"ComBat across 'batch' (neuroCombat {version}), then "
                                                         "cohort z-score over 24 lesions")).all()
    record = json.loads((tmp_path / "h" / "run.json").read_text())
    assert record["harmonization"] == {"method": "ComBat (parametric empirical Bayes, no covariates)",
                                       "package": "neuroCombat", "package_version": version, "batch_column": "batch"}
    assert "harmonization" not in json.loads((tmp_path / "p" / "run.json").read_text())
    assert np.allclose(harmonised[P90], table[P90], rtol=1e-12)  # lesions.csv keeps the raw features
    assert not np.allclose(harmonised[f"z_{P90}"], plain[f"z_{P90}"])

    # Independent: neuroCombat called directly on every finite, non-constant original_* feature, then R's scale().
    columns = [c for c in table.columns if c.startswith("original_")]
    values = table[columns].astype(float)
    values = values.loc[:, np.isfinite(values).all() & (values.groupby(table["batch"]).std().min() > 0)]
    direct = neuroCombat(values.to_numpy().T, pd.DataFrame({"batch": table["batch"]}), "batch")["data"].T
    direct = pd.DataFrame(direct, columns=values.columns)
    for name in signature.load_model().features:
        z = (direct[name] - direct[name].mean()) / direct[name].std(ddof=1)
        assert np.allclose(harmonised[f"z_{name}"], z, rtol=0, atol=1e-9), name
    gap = lambda frame: abs(frame.loc[table["batch"] == "A", P90].mean() - frame.loc[table["batch"] == "B", P90].mean())
    assert gap(direct) < 0.5 * gap(table)  # most of the 40 HU batch effect is gone

    with pytest.raises(CTTimeError, match="no column 'scanner'"):
        pipeline.rescore(table, tmp_path / "x", pipeline.Options(harmonize_by="scanner"))
    with pytest.raises(CTTimeError, match="at least 2 batches"):
        pipeline.rescore(table.assign(batch="A"), tmp_path / "x", pipeline.Options(harmonize_by="batch"))
    assert commands.main(["rescore", str(tmp_path / "p" / "lesions.csv"), "--standardize", "cohort", "--harmonize",
                          "batch", "--out", str(tmp_path / "cli")]) == 0
    assert json.loads((tmp_path / "cli" / "run.json").read_text())["harmonization"]["batch_column"] == "batch"


def test_cohort_command_harmonises_across_the_manifest_batch(shared_sts, tmp_path, capsys):
    folders = sorted(shared_sts.glob("STS_*"), key=lambda p: (p / "CT_mask.nii.gz").stat().st_size)[:4]
    manifest = pd.DataFrame({"patient_id": [p.name for p in folders], "timepoint": "BS",
                             "image": [str(p / "CT_image.nii.gz") for p in folders],
                             "segmentation": [str(p / "CT_mask.nii.gz") for p in folders],
                             "batch": ["soft", "soft", "sharp", "sharp"]})
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    _run(["cohort", tmp_path / "manifest.csv", "--standardize", "cohort", "--harmonize", "batch", "--out",
          tmp_path / "run", "--no-segmentation", "--workers", "1", "--no-cache", "--quiet"], capsys)
    lesions = pd.read_csv(tmp_path / "run" / "lesions.csv")
    assert list(lesions["batch"]) == list(manifest["batch"])
    assert lesions["standardization"].str.startswith("ComBat across 'batch' (neuroCombat ").all()
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["harmonization"]["package"] == "neuroCombat" and record["harmonization"]["batch_column"] == "batch"
    # The same table rescored without harmonisation gives other scores.
    plain = pd.read_csv(_written(lesions, tmp_path / "plain"))
    assert not np.allclose(plain["ct_time_score"], lesions["ct_time_score"])


def _brute_force_delong(scores, labels):
    positives = [s for s, y in zip(scores, labels) if y == 1]
    negatives = [s for s, y in zip(scores, labels) if y == 0]
    psi = lambda x, y: 1.0 if x > y else 0.5 if x == y else 0.0
    v10 = [sum(psi(x, y) for y in negatives) / len(negatives) for x in positives]
    v01 = [sum(psi(x, y) for x in positives) / len(positives) for y in negatives]
    auc = sum(v10) / len(positives)
    s10 = sum((v - auc) ** 2 for v in v10) / (len(v10) - 1)
    s01 = sum((v - auc) ** 2 for v in v01) / (len(v01) - 1)
    return auc, s10 / len(positives) + s01 / len(negatives)


def test_delong_against_brute_force_and_sklearn():
    rng = np.random.default_rng(3)
    for _ in range(5):
        labels = rng.integers(0, 2, 15)
        labels[:2] = (0, 1)
        scores = np.round(rng.random(15), 1)  # ties on purpose
        auc, variance = evaluation.delong(scores, labels)
        expected_auc, expected_variance = _brute_force_delong(scores, labels)
        assert auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        assert auc == pytest.approx(expected_auc, abs=1e-12)
        assert variance == pytest.approx(expected_variance, rel=1e-10)


def test_hosmer_lemeshow_by_hand():
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.35, 0.65])
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1, 0, 1])
    result = evaluation.hosmer_lemeshow(p, y, groups=5, min_size=2)
    order = np.argsort(p, kind="stable")
    statistic = 0.0
    for index in np.array_split(order, 5):
        e1, o1 = p[index].sum(), y[index].sum()
        e0, o0 = len(index) - e1, len(index) - o1
        statistic += (o1 - e1) ** 2 / e1 + (o0 - e0) ** 2 / e0
    assert result["statistic"] == pytest.approx(statistic, rel=1e-12) and result["df"] == 3


def _labels(lesions, seed=0):
    """Labels that follow the real features: strong 90th percentile, low elongation -> 1 (and some noise)."""
    rng = np.random.default_rng(seed)
    z = lambda c: (lesions[c] - lesions[c].mean()) / lesions[c].std()
    signal = z(P90) - 0.5 * z(ELONG) + rng.normal(0, 0.6, len(lesions))
    return (signal > np.median(signal)).astype(int)


def test_evaluate_lesion_and_patient_labels(features, tmp_path, capsys):
    lesions_csv = _written(features, tmp_path / "run")
    lesions = pd.read_csv(lesions_csv)
    labels = lesions[["patient_id", "lesion_id"]].assign(label=_labels(lesions))
    labels.to_csv(tmp_path / "labels.csv", index=False)
    out = _run(["evaluate", lesions_csv, "--labels", tmp_path / "labels.csv", "--out", tmp_path / "ev"], capsys).out
    result = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert result["auc"] == pytest.approx(roc_auc_score(labels["label"], lesions["ct_time_score"]), abs=1e-12)
    low, high = result["auc_ci95"]
    assert low < result["auc"] < high and result["ci_method"].startswith("DeLong")
    predicted = lesions["ct_time_score"] > 0.5
    assert result["sensitivity"] == pytest.approx((predicted & (labels["label"] == 1)).sum() / labels["label"].sum())
    assert result["specificity"] == pytest.approx((~predicted & (labels["label"] == 0)).sum()
                                                  / (labels["label"] == 0).sum())
    assert f"AUC {result['auc']:.3f}" in out and "DeLong" in out and "Hosmer-Lemeshow" in out
    assert (tmp_path / "ev" / "roc.png").stat().st_size > 1000

    # Per-patient labels on a multi-lesion cohort: compared with each patient's minimum score.
    multi = _written(_longitudinal_cohort(features).query("timepoint == 'BS'"), tmp_path / "multi")
    scored = pd.read_csv(multi)
    minimum = scored.groupby("patient_id")["ct_time_score"].min()
    patient_labels = pd.DataFrame({"patient_id": minimum.index, "label": np.arange(len(minimum)) % 2})
    patient_labels.to_csv(tmp_path / "patients.csv", index=False)
    _run(["evaluate", multi, "--labels", tmp_path / "patients.csv", "--out", tmp_path / "evp"], capsys)
    result = json.loads((tmp_path / "evp" / "evaluation.json").read_text())
    assert result["level"] == "patient" and result["aggregate"] == "min"
    assert result["auc"] == pytest.approx(roc_auc_score(patient_labels["label"], minimum.to_numpy()), abs=1e-12)

    bad = labels.assign(label=2)
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert commands.main(["evaluate", str(lesions_csv), "--labels", str(tmp_path / "bad.csv"), "--out",
                          str(tmp_path / "x")]) == 2
    assert "must hold 0 or 1" in capsys.readouterr().err


def _clinical(lesions, seed=1):
    """PFS longer for higher (inflamed) scores; some patients censored."""
    rng = np.random.default_rng(seed)
    score = lesions.groupby("patient_id")["ct_time_score"].min()
    pfs = rng.exponential(2.0 + 20.0 * score.to_numpy())
    return pd.DataFrame({"patient_id": score.index, "pfs_months": np.round(pfs, 2),
                         "event": (rng.random(len(score)) < 0.85).astype(int)})


def test_survival_cox_and_kaplan_meier(features, tmp_path, capsys):
    lesions_csv = _written(features, tmp_path / "run")
    clinical = _clinical(pd.read_csv(lesions_csv))
    clinical.to_csv(tmp_path / "clinical.csv", index=False)
    out = _run(["survival", lesions_csv, "--clinical", tmp_path / "clinical.csv", "--out", tmp_path / "s"], capsys).out
    cox = pd.read_csv(tmp_path / "s" / "survival_cox.csv").set_index("aggregate")
    logrank = pd.read_csv(tmp_path / "s" / "survival_logrank.csv").set_index("aggregate")
    assert list(cox.index) == ["mean", "median", "min", "max"]
    assert (cox["hr_per_0_1"] < 1).all() and (cox["events"] == clinical["event"].sum()).all()
    assert (cox["hr_ci_low"] < cox["hr_per_0_1"]).all() and (cox["hr_per_0_1"] < cox["hr_ci_high"]).all()
    lesions = pd.read_csv(lesions_csv)
    assert logrank.loc["min", "n_inflamed"] == (lesions["ct_time_score"] > 0.5).sum()
    assert 0 <= logrank.loc["min", "logrank_p"] <= 1
    assert "log-rank p" in out and (tmp_path / "s" / "kaplan_meier.png").stat().st_size > 1000


def test_train_writes_a_model_that_signature_scores_like_sklearn(features, tmp_path, capsys):
    lesions_csv = _written(features, tmp_path / "run")
    lesions = pd.read_csv(lesions_csv)
    lesions[["patient_id", "lesion_id"]].assign(label=_labels(lesions)).to_csv(tmp_path / "labels.csv", index=False)
    out = _run(["train", lesions_csv, "--labels", tmp_path / "labels.csv", "--out", tmp_path / "t", "--alphas",
                "0.55,1", "--lambdas", "0.02,0.05", "--repeats", "2"], capsys).out
    payload = json.loads((tmp_path / "t" / "model.json").read_text())
    model = signature.load_model(tmp_path / "t" / "model.json")
    assert set(payload) == set(json.loads(MODEL_FILE.read_text()))  # CT-TIME.json's format
    assert payload["provenance"]["cv"]["repeats"] == 2 and "Trained CT-TIME-retrained" in out

    # The written file, through signature.Model.score, reproduces scikit-learn's predict_proba of label 1.
    labels = pd.read_csv(tmp_path / "labels.csv")
    settings = training.Settings(alphas=(0.55, 1.0), lambdas=(0.02, 0.05), repeats=2)
    result = training.train(lesions, labels, "labels.csv", settings)
    assert result["model"]["coefficients"] == pytest.approx(payload["coefficients"], rel=1e-12)
    expected = result["sklearn"].predict_proba(result["z"].to_numpy())[:, 1]
    assert np.allclose(model.score(result["z"]).to_numpy(), expected, rtol=0, atol=1e-12)
    assert roc_auc_score(result["labels"], expected) > 0.75  # the labels follow the features

    # reference.json + model.json score the training lesions again through the ordinary pipeline.
    pipeline.rescore(lesions, tmp_path / "again", pipeline.Options(standardize=str(tmp_path / "t" / "reference.json"),
                                                                   model_file=str(tmp_path / "t" / "model.json")))
    again = pd.read_csv(tmp_path / "again" / "lesions.csv")
    assert np.allclose(again["ct_time_score"], expected, atol=1e-9)

    # No feature pair above the cutoff survives; a robustness table restricts the candidates.
    kept, dropped = training.remove_correlated(lesions[[c for c in lesions if c.startswith("original_firstorder")]],
                                               0.59)
    corr = lesions[kept].corr().abs().to_numpy()
    assert dropped and (corr[~np.eye(len(kept), dtype=bool)] <= 0.59).all()
    robust = pd.DataFrame({"feature": [P90, ELONG, "original_glcm_MaximumProbability"], "ccc": [0.9, 0.8, 0.5]})
    restricted = training.train(lesions, labels, "labels.csv", settings, robust, "robust.csv")
    assert set(restricted["model"]["coefficients"]) <= {P90, ELONG}
    assert restricted["model"]["provenance"]["selection"]["robust"] == 2


def _full_report(cohort, folder, capsys):
    """(lesions table, report.html) of ``cohort`` z-scored per time point, with labels and outcomes at BS."""
    lesions_csv = _written(cohort, folder / "run", group_by=("timepoint",))
    lesions = pd.read_csv(lesions_csv)
    baseline = lesions[lesions["timepoint"] == "BS"]
    minimum = baseline.groupby("patient_id")["ct_time_score"].min()
    pd.DataFrame({"patient_id": minimum.index, "label": (minimum.rank() > 4).astype(int).to_numpy()}).to_csv(
        folder / "labels.csv", index=False)
    _clinical(baseline).to_csv(folder / "clinical.csv", index=False)
    _run(["cohort-report", lesions_csv, "--out", folder / "report.html", "--labels", folder / "labels.csv",
          "--clinical", folder / "clinical.csv", "--timepoint", "BS"], capsys)
    return lesions, folder / "report.html"


def test_cohort_report_is_one_html_file_with_every_section(features, tmp_path, capsys):
    lesions, report = _full_report(_longitudinal_cohort(features), tmp_path, capsys)
    baseline = lesions[lesions["timepoint"] == "BS"]
    text = report.read_text()
    assert text.count('src="data:image/png;base64,') == 5  # location, heterogeneity, Sankey, ROC, KM
    assert "src=\"http" not in text and "<link" not in text
    for heading in ("Scores by lesion location", "Per-patient heterogeneity", "Longitudinal", "Evaluation against",
                    "Progression-free survival"):
        assert heading in text
    assert "NOT CLINICALLY CALIBRATED" in text  # per-time-point z-scores over fewer than 20 lesions
    assert standardization.MIN_RELIABLE_LESIONS > len(baseline)

    # Without labels, outcomes or several time points, only the sections that apply.
    single = _written(features, tmp_path / "single")
    _run(["cohort-report", single, "--out", tmp_path / "single.html"], capsys)
    text = (tmp_path / "single.html").read_text()
    assert text.count("data:image/png;base64,") == 2 and "Longitudinal" not in text
    # the sarcomas' 3.27 mm slices are their one warning, shown once for all 24 studies
    assert text.count("<b>WARNING:</b>") == 1 and "slice spacing 3.27 mm" in text and "(24 studies:" in text


@pytest.mark.parametrize("command", ["longitudinal", "evaluate", "survival", "train", "cohort-report"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        commands.main([command, "--help"])
    assert exit_info.value.code == 0
    assert "LESIONS.csv" in capsys.readouterr().out


def test_every_analysis_repeats_the_runs_warnings(features, tmp_path, capsys):
    """A cohort scored against the demo reference, one lesion drawn with too little soft tissue and one that
    failed: longitudinal, evaluate, survival, train and cohort-report print and write those warnings (the run's
    in run.json, the lesion's with its patient and time point) and an incomplete patient aggregate."""
    cohort = _longitudinal_cohort(features)
    first = (cohort["patient_id"] == "P1") & (cohort["lesion_id"] == "L1")
    cohort["soft_tissue_share"] = np.where(first & (cohort["timepoint"] == "BS"), 0.3, 0.98)
    cohort["error"] = np.where((cohort["patient_id"] == "P2") & (cohort["lesion_id"] == "L2")
                               & (cohort["timepoint"] == "BS"), "Lesion L2 is empty", "")
    lesions_csv = _written(cohort, tmp_path / "run", standardize="demo")
    lesions = pd.read_csv(lesions_csv)
    baseline = lesions[lesions["timepoint"] == "BS"]
    minimum = baseline.groupby("patient_id")["ct_time_score"].min()
    pd.DataFrame({"patient_id": minimum.index, "label": np.arange(len(minimum)) % 2}).to_csv(
        tmp_path / "labels.csv", index=False)
    _clinical(baseline).to_csv(tmp_path / "clinical.csv", index=False)
    run_wide, lesion = "NOT CLINICALLY CALIBRATED: demo reference", "P1 BS: lesion L1: soft-tissue share 0.30 (< 0.5)"
    incomplete = "P2 BS (INCOMPLETE: 1 of 2 lesions scored)"

    out = _run(["longitudinal", lesions_csv, "--out", tmp_path / "long"], capsys).out
    assert f"WARNING: {run_wide}" in out and f"WARNING: {lesion}" in out
    table = pd.read_csv(tmp_path / "long" / "longitudinal.csv", keep_default_na=False).set_index("patient_id")
    assert run_wide in table.loc["P3", "warning"] and "soft-tissue share" not in table.loc["P3", "warning"]
    assert "BS: lesion L1: soft-tissue share 0.30" in table.loc["P1", "warning"]
    assert table.loc["P2", "n_lesions_BS"] == 2 and table.loc["P2", "n_matched_lesions"] == 1

    out = _run(["evaluate", lesions_csv, "--labels", tmp_path / "labels.csv", "--timepoint", "BS", "--out",
                tmp_path / "ev"], capsys).out
    result = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert run_wide in result["warnings"] and lesion in " ".join(result["warnings"])
    assert any(incomplete in note for note in result["notes"]) and f"WARNING: {run_wide}" in out
    scores = pd.read_csv(tmp_path / "ev" / "evaluation_scores.csv", keep_default_na=False).set_index("patient_id")
    assert scores.loc["P2", "aggregate_coverage"] == "INCOMPLETE: 1 of 2 lesions scored"

    out = _run(["survival", lesions_csv, "--clinical", tmp_path / "clinical.csv", "--timepoint", "BS", "--out",
                tmp_path / "s"], capsys).out
    result = json.loads((tmp_path / "s" / "survival.json").read_text())
    assert run_wide in result["warnings"] and result["n_incomplete"] == 1
    assert any(incomplete in w for w in result["warnings"]) and f"WARNING: {lesion}" in " ".join(out.splitlines())

    out = _run(["train", lesions_csv, "--labels", tmp_path / "labels.csv", "--timepoint", "BS", "--out",
                tmp_path / "t", "--alphas", "1", "--lambdas", "0.01", "--repeats", "1", "--folds", "2"], capsys).out
    assert f"WARNING: {lesion}" in out
    assert any(lesion in w for w in json.loads((tmp_path / "t" / "model.json").read_text())["provenance"][
        "input_warnings"])

    out = _run(["cohort-report", lesions_csv, "--out", tmp_path / "report.html"], capsys).out
    text = (tmp_path / "report.html").read_text()
    assert run_wide in text and "lesion L1: soft-tissue share 0.30" in text and "INCOMPLETE: 1 of 2" in text
    assert f"WARNING: {lesion}" in out


def _damaged_inputs(features, folder):
    """The lesions tables and labels of the analytics' bad inputs, from the real rows."""
    scored = _written(features, folder / "run")
    lesions = pd.read_csv(scored)
    two = pd.concat([lesions, lesions.assign(timepoint="FU")])
    two.to_csv(folder / "two.csv", index=False)
    lesions.iloc[:0].to_csv(folder / "header_only.csv", index=False)
    constant = lesions.assign(**{c: 1.0 for c in lesions if c.startswith("original_")})
    (folder / "constant").mkdir()
    constant.to_csv(folder / "constant" / "lesions.csv", index=False)
    lesions[["patient_id", "lesion_id"]].assign(label=_labels(lesions)).to_csv(folder / "labels.csv", index=False)
    _clinical(lesions).to_csv(folder / "clinical.csv", index=False)
    (folder / "typed").mkdir()
    record = json.loads((folder / "run" / "run.json").read_text())
    (folder / "typed" / "run.json").write_text(json.dumps(dict(record, harmonization="ComBat", warnings=[3])))
    lesions.to_csv(folder / "typed" / "lesions.csv", index=False)
    return scored


@pytest.mark.parametrize("argv, words", [
    (["longitudinal", "two.csv", "--timepoints", "BS,BS"], ["Time point BS is given more than once"]),
    (["survival", "header_only.csv", "--clinical", "clinical.csv"], ["header_only.csv has no scored lesion"]),
    (["train", "run/lesions.csv", "--labels", "labels.csv", "--lambdas", "1e308", "--repeats", "1"],
     ["lambda 1e+308 cannot be used with 24 lesions", "smaller lambdas"]),
    (["train", "constant/lesions.csv", "--labels", "labels.csv", "--repeats", "1"],
     ["No original_* feature of the 24 labelled lesions", "varies"]),
    (["cohort-report", "typed/lesions.csv"], ["typed/run.json: 'warnings' should be a list of texts, not [3]",
                                              "remove it"]),
])
def test_bad_analytics_input_is_a_message_not_a_traceback(argv, words, features, tmp_path, capsys, monkeypatch):
    _damaged_inputs(features, tmp_path)
    monkeypatch.chdir(tmp_path)
    code = commands.main(argv + ["--out", "out.html" if argv[0] == "cohort-report" else "out"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


def test_small_samples_say_they_cannot_conclude(features, tmp_path, capsys):
    """Six real patients whose PFS follows their score exactly (perfect separation): no hazard ratio, p or C is
    presented; eight patients: no Hosmer-Lemeshow on groups of one; evaluate at BS repeats no FU lesion's warning."""
    lesions_csv = _written(features, tmp_path / "run")
    lesions = pd.read_csv(lesions_csv).sort_values("ct_time_score")
    six = lesions.iloc[::4].head(6)
    pd.DataFrame({"patient_id": six["patient_id"], "pfs_months": [3.0, 5.0, 8.0, 12.0, 20.0, 30.0],
                  "event": 1}).to_csv(tmp_path / "six.csv", index=False)
    out = _run(["survival", lesions_csv, "--clinical", tmp_path / "six.csv", "--out", tmp_path / "s"], capsys).out
    cox = pd.read_csv(tmp_path / "s" / "survival_cox.csv")
    assert cox[["hr_per_0_1", "hr_ci_low", "hr_ci_high", "p", "concordance"]].isna().all().all()
    assert cox["note"].str.startswith("cannot conclude: perfect separation").all()
    assert not re.search(r"HR \d|C = \d", out) and out.count("cannot conclude: perfect separation") == 4
    assert "(cannot conclude: 6 event(s), fewer than 10)" in out
    result = json.loads((tmp_path / "s" / "survival.json").read_text())
    assert all(row["hr_per_0_1"] is None and row["note"] for row in result["cox"])

    cohort = _longitudinal_cohort(features)  # 8 patients at BS; one FU lesion with little soft tissue
    cohort["soft_tissue_share"] = np.where((cohort["patient_id"] == "P1") & (cohort["timepoint"] == "FU"), 0.3, 0.98)
    multi = _written(cohort, tmp_path / "multi", group_by=("timepoint",))
    baseline = pd.read_csv(multi).query("timepoint == 'BS'")
    minimum = baseline.groupby("patient_id")["ct_time_score"].min()
    pd.DataFrame({"patient_id": minimum.index, "label": np.arange(len(minimum)) % 2}).to_csv(
        tmp_path / "labels.csv", index=False)
    out = _run(["evaluate", multi, "--labels", tmp_path / "labels.csv", "--timepoint", "BS", "--out",
                tmp_path / "ev"], capsys).out
    result = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert result["hosmer_lemeshow"]["statistic"] is None and not result["hosmer_lemeshow"]["groups"]
    assert "Hosmer-Lemeshow calibration not computed: 8 scores make fewer than 3 groups of at least 5" in out
    assert "soft-tissue share" not in out and not any("FU" in w for w in result["warnings"])
    out = _run(["evaluate", multi, "--labels", tmp_path / "labels.csv", "--timepoint", "FU", "--out",
                tmp_path / "evfu"], capsys).out
    assert "WARNING: P1 FU: lesion L1: soft-tissue share 0.30" in out  # the lesion that was used is still named


class _Tables(HTMLParser):
    """The tables of an HTML text: a list of (headers, rows of cell texts)."""

    def __init__(self, text):
        super().__init__()
        self.tables, self._cell = [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(([], []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("th", "td"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            headers, rows = self.tables[-1]
            (headers if tag == "th" else rows[-1]).append(self._cell)
            self._cell = None


def _page_measure(html_path, tmp_path, width=1400):
    """What headless Chromium measures of a page at ``width`` px: page, body and table right edges (px)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        message = "needs Debian's chromium (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    probe = tmp_path / "probe.html"
    probe.write_text(html_path.read_text().replace("</body>", """<script>
window.addEventListener('load', function () {
  var out = document.createElement('pre'); out.id = 'measure';
  out.textContent = JSON.stringify({page: document.documentElement.scrollWidth, body: document.body.scrollWidth,
    window: window.innerWidth, body_right: document.body.getBoundingClientRect().right,
    tables: Array.from(document.querySelectorAll('table')).map(function (t) {
      return t.getBoundingClientRect().right; })});
  document.body.appendChild(out); });</script></body>"""))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--window-size={width},900",
                          "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'<pre id="measure">([^<]*)</pre>', dom)
    assert found, dom[-2000:]
    return json.loads(found.group(1))


def test_cohort_report_fits_1400_px_with_readable_tables_and_each_warning_once(features, tmp_path, capsys):
    """BS, FU and BR of 8 real-feature patients, the same lesion warning at five studies, labels and outcomes: the
    page does not overflow at 1400 px in Chromium, headers are words, one number format per kind, every warning is
    shown once (the repeated one with its count) and locations are split by time point."""
    cohort = _longitudinal_cohort(features)
    low = cohort["patient_id"].isin(["P1", "P2", "P3", "P4", "P5"]) & (cohort["lesion_id"] == "L1") & (
        cohort["timepoint"] == "BS")
    cohort["soft_tissue_share"] = np.where(low, 0.3, 0.98)
    lesions, report = _full_report(cohort, tmp_path, capsys)
    text = report.read_text()

    measure = _page_measure(report, tmp_path)
    assert measure["page"] <= measure["window"] and measure["body"] <= measure["body_right"], measure
    assert max(measure["tables"]) <= measure["body_right"] + 1, measure

    warnings = re.findall(r"<p><b>WARNING:</b> ([^<]*)</p>", text)
    repeated = [w for w in warnings if w.startswith("lesion L1: soft-tissue share 0.30 (&lt; 0.5)")]
    assert len(repeated) == 1 and repeated[0].endswith("(5 studies: P1 BS, P2 BS, P3 BS, P4 BS, P5 BS)"), warnings
    assert len(warnings) == len(set(warnings)) >= 2
    for warning in warnings:
        assert text.count(warning.split(" (")[0]) == 1, warning  # not again under a section or figure

    tables, checked = _Tables(text).tables, 0
    formats = {"Change of": r"[+-]\d\.\d{3}", "CT-TIME": r"\d\.\d{3}", "Lesions": r"\d+", "Patients": r"\d+",
               "Events": r"\d+", "Volume change": r"[+-]\d+\.\d", "HR ": r"\d+\.\d{3}"}
    for headers, rows in tables:
        assert headers and not any("_" in h for h in headers), headers  # words, not column names
        for column, header in enumerate(headers):
            pattern = next((p for key, p in formats.items() if key in header and "Status" not in header), None)
            cells = [row[column] for row in rows if row and row[column]]
            if pattern:  # (no hazard ratio here: 8 patients are too few to conclude)
                assert all(re.fullmatch(pattern, c) for c in cells), (header, cells[:5])
                checked += len(cells)
    assert checked > 100
    locations = next(rows for headers, rows in tables if headers[:2] == ["Location", "Time point"])
    counts = lesions.groupby("timepoint").size()
    assert sorted((r[1], int(r[2])) for r in locations if r) == sorted(counts.items())  # BS, FU and BR each alone
    assert "CT-TIME by lesion location and time point" not in text  # the figure's title is in the image only
