"""The cohort-analytics subcommands of ``cttime``: longitudinal, evaluate, survival, train, cohort-report.

Each reads a lesions table written by CTTime (lesions.csv of ``cttime cohort``, ``score`` or ``rescore``).
"""

import argparse
import json
import math

from ..analytics.provenance import table_warnings, warning_lines
from ..core.errors import CTTimeError
from ..core.files import output_file, output_folder, write_table, write_text
from ..io import tables
from ..run.run_folder import read_lesions_table
from ..scoring import aggregation

LESION_COLUMNS = ("patient_id", "timepoint", "lesion_id", "ct_time_score")
LABELS_HELP = ("labels CSV: per lesion (patient_id, lesion_id, label) or per patient (patient_id, label); label 1 = "
               "positive class (e.g. GEP inflamed), 0 = negative; an optional timepoint column")
TIMEPOINT_HELP = "use the lesions of this time point (needed when patients have several and the CSV has no timepoint)"


def add_harmonize(parser):
    """--harmonize for the commands that z-score a cohort."""
    parser.add_argument("--harmonize", metavar="BATCH_COLUMN",
                        help="ComBat-harmonise the features across this column of the manifest / lesions table "
                             "(e.g. batch: scanner or reconstruction kernel) before z-scoring, with neuroCombat; "
                             "lesions.csv keeps the raw features, the standardization column and run.json record it")


def _lesions_argument(parser):
    parser.add_argument("lesions", metavar="LESIONS.csv", help="lesions table written by cttime (lesions.csv)")


def _numbers(low, high=None, low_open=False, whole=False, listed=False):
    """An argparse type: a finite number >= low (> low with ``low_open``) and <= high; whole with ``whole``;
    several separated by commas with ``listed`` (a tuple)."""
    bound = (f"> {low:g}" if low_open else f">= {low:g}") + (f" and <= {high:g}" if high is not None else "")
    expected = f"{'whole ' if whole else ''}number{'s separated by commas, each' if listed else ''} {bound}"

    def inside(value):
        return math.isfinite(value) and (value > low if low_open else value >= low) and (high is None or value <= high)

    def parse(text):
        try:
            values = [(int if whole else float)(part) for part in text.split(",")]
        except ValueError:
            values = []
        if not values or (len(values) > 1 and not listed) or not all(map(inside, values)):
            raise argparse.ArgumentTypeError(f"expected {'' if listed else 'a '}{expected}, got {text!r}")
        return tuple(values) if listed else values[0]
    return parse


def add_commands(commands):
    """Add the subcommands to the ``cttime`` parser's subparsers."""
    formatter = argparse.RawDescriptionHelpFormatter
    longitudinal = commands.add_parser(
        "longitudinal", help="follow each patient's aggregated CT-TIME over BS, FU, BR", formatter_class=formatter,
        description="Match lesions by patient and lesion ID across time points (only lesions scored at every time "
                    "point are kept, as in the paper), aggregate them per patient and time point, count the "
                    "transitions of the minimum's status, the score change and the volumetric response\n"
                    "100 * (sum MeshVolume later - sum at BS) / sum at BS (>= 0 Progression, else Regression).\n"
                    "Writes longitudinal.csv, transitions.csv and transitions.png (Sankey-style).")
    _lesions_argument(longitudinal)
    longitudinal.add_argument("--out", required=True, help="output folder")
    longitudinal.add_argument("--timepoints", default="BS,FU,BR",
                              help="time points in order, comma-separated (default BS,FU,BR; those present are used)")

    evaluate = commands.add_parser(
        "evaluate", help="AUC (DeLong 95%% CI), sensitivity, specificity, calibration against labels",
        formatter_class=formatter,
        description="Compare scores with known labels. Per-lesion labels are matched by patient_id and lesion_id; "
                    "per-patient labels are compared with an aggregate of the patient's scores (--aggregate).\n"
                    "Prints and writes evaluation.json, evaluation_scores.csv and roc.png: AUC with a 95% CI from "
                    "DeLong's variance, sensitivity and specificity at score > 0.5, Hosmer-Lemeshow calibration.")
    _lesions_argument(evaluate)
    evaluate.add_argument("--labels", required=True, metavar="LABELS.csv", help=LABELS_HELP)
    evaluate.add_argument("--out", required=True, help="output folder")
    evaluate.add_argument("--aggregate", default="min", choices=aggregation.AGGREGATES,
                          help="per-patient labels: the aggregate score compared (default min, as in the paper)")
    evaluate.add_argument("--timepoint", help=TIMEPOINT_HELP)

    survival = commands.add_parser(
        "survival", help="Cox models and Kaplan-Meier curves of PFS by aggregated CT-TIME", formatter_class=formatter,
        description="With a clinical CSV (patient_id, pfs_months, event: 1 progression/death, 0 censored): a Cox "
                    "proportional-hazards model for each aggregated score (min, median, mean, max; hazard ratio per "
                    "0.1) and Kaplan-Meier curves by each aggregate's status with the log-rank p (lifelines).\n"
                    "Writes survival_cox.csv, survival_logrank.csv, survival.json and kaplan_meier.png.")
    _lesions_argument(survival)
    survival.add_argument("--clinical", required=True, metavar="CLINICAL.csv", help="patient_id, pfs_months, event")
    survival.add_argument("--out", required=True, help="output folder")
    survival.add_argument("--timepoint", help=TIMEPOINT_HELP)

    train = commands.add_parser(
        "train", help="re-derive a signature on a labelled cohort (elastic net, as the paper)",
        formatter_class=formatter,
        description="z-score every original_* feature over the labelled lesions, optionally keep the robust ones "
                    "(--concordance), tune an elastic-net logistic regression over alpha and lambda by repeated "
                    "stratified k-fold cross-validation on ROC AUC, keep the non-zero features, drop correlated "
                    "ones (|r| > cutoff) and refit. Writes OUT/model.json (CT-TIME.json's format: usable with "
                    "--model by every command), OUT/reference.json (the training cohort's means and SDs of the "
                    "model's features) and OUT/cv_grid.csv. A re-derived model is not the published CT-TIME.")
    _lesions_argument(train)
    train.add_argument("--labels", required=True, metavar="LABELS.csv", help=LABELS_HELP)
    train.add_argument("--out", required=True, help="output folder")
    train.add_argument("--name", default="CT-TIME-retrained", help="model name (default CT-TIME-retrained)")
    train.add_argument("--concordance", metavar="ROBUSTNESS.csv",
                       help="robustness table: feature and ccc (or icc, concordance) per feature")
    train.add_argument("--min-concordance", type=_numbers(-1, 1), default=0.75,
                       help="keep features with concordance >= this (default 0.75, as the paper)")
    train.add_argument("--alphas", type=_numbers(0, 1, listed=True), default=None,
                       help="alpha (L1 share, glmnet) values to try, comma-separated (default 0.1,0.55,1)")
    train.add_argument("--lambdas", type=_numbers(0, None, low_open=True, listed=True), default=None,
                       help="lambda (penalty) values to try (default 11 values from 0.001 to 0.1, log-spaced)")
    train.add_argument("--folds", type=_numbers(2, None, whole=True), default=5,
                       help="cross-validation folds (default 5)")
    train.add_argument("--repeats", type=_numbers(1, None, whole=True), default=10,
                       help="cross-validation repeats (default 10)")
    train.add_argument("--correlation-cutoff", type=_numbers(0, 1, low_open=True), default=0.59,
                       help="drop one of two features correlated above this (default 0.59, as the paper)")
    train.add_argument("--seed", type=_numbers(0, 2 ** 32 - 1, whole=True), default=1234,
                       help="seed of the fold assignment (default 1234)")
    train.add_argument("--timepoint", help=TIMEPOINT_HELP)
    train.add_argument("--positive-class", default="inflamed", help="name of label 1 (default inflamed)")
    train.add_argument("--negative-class", default="uninflamed", help="name of label 0 (default uninflamed)")

    report = commands.add_parser(
        "cohort-report", help="one self-contained HTML report of a scored cohort", formatter_class=formatter,
        description="Write one HTML file with embedded figures: standardisation and its warnings, scores by lesion "
                    "location, per-patient heterogeneity, and when they apply the longitudinal transitions (two or "
                    "more of BS, FU, BR), the evaluation against --labels and the survival analysis against "
                    "--clinical. run.json beside the lesions table is read for its warnings and harmonisation.")
    _lesions_argument(report)
    report.add_argument("--out", required=True, metavar="REPORT.html", help="HTML file to write")
    report.add_argument("--labels", metavar="LABELS.csv", help=LABELS_HELP)
    report.add_argument("--clinical", metavar="CLINICAL.csv", help="patient_id, pfs_months, event")
    report.add_argument("--aggregate", default="min", choices=aggregation.AGGREGATES,
                        help="per-patient labels: the aggregate score compared (default min)")
    report.add_argument("--timepoint", help=TIMEPOINT_HELP + " (evaluation and survival)")


def _read_lesions(path, scored=True):
    """The lesions table; with ``scored``, one that has at least one scored lesion."""
    from ..analytics.outcomes import scored as scored_rows

    table = read_lesions_table(path, LESION_COLUMNS if scored else LESION_COLUMNS[:3])
    if scored and scored_rows(table).empty:
        raise CTTimeError(f"{path} has no scored lesion ({len(table)} row(s), none with a ct_time_score): nothing to "
                          "analyse. Give the lesions.csv of a run that scored lesions.", "input")
    return table


def _print(lines):
    for line in lines:
        print(line)


def command_longitudinal(args):
    from ..analytics import longitudinal

    timepoints = [t.strip() for t in args.timepoints.split(",") if t.strip()]
    out = output_folder(args.out)
    table, counts, warnings = longitudinal.run(_read_lesions(args.lesions), out, timepoints, lesions_path=args.lesions)
    _print(longitudinal.summary_lines(table, counts, warnings))
    print(f"Results in {args.out}: longitudinal.csv, transitions.csv, transitions.png")
    return 0


def command_evaluate(args):
    from ..analytics import evaluation

    out = output_folder(args.out)
    labels = tables.read_csv(args.labels, "Labels", ["patient_id", "label"])
    result = evaluation.run(_read_lesions(args.lesions), labels, args.labels, out, args.aggregate, args.timepoint,
                            lesions_path=args.lesions)
    _print(evaluation.summary_lines(result))
    print(f"Results in {args.out}: evaluation.json, evaluation_scores.csv, roc.png")
    return 0


def command_survival(args):
    from ..analytics import survival

    out = output_folder(args.out)
    clinical = tables.read_csv(args.clinical, "Clinical table", survival.CLINICAL_COLUMNS)
    result = survival.run(_read_lesions(args.lesions), clinical, args.clinical, out, args.timepoint,
                          lesions_path=args.lesions)
    _print(survival.summary_lines(result))
    print(f"Results in {args.out}: survival_cox.csv, survival_logrank.csv, survival.json, kaplan_meier.png")
    return 0


def command_train(args):
    from ..analytics import training

    out = output_folder(args.out)
    defaults = training.Settings()
    settings = training.Settings(alphas=args.alphas or defaults.alphas, lambdas=args.lambdas or defaults.lambdas,
                                 folds=args.folds, repeats=args.repeats, correlation_cutoff=args.correlation_cutoff,
                                 min_concordance=args.min_concordance, seed=args.seed)
    concordance = tables.read_csv(args.concordance, "Concordance table", ["feature"]) if args.concordance else None
    lesions = _read_lesions(args.lesions, scored=False)
    result = training.train(lesions, tables.read_csv(args.labels, "Labels", ["patient_id", "label"]), args.labels,
                            settings, concordance, args.concordance, args.name, args.timepoint, args.positive_class,
                            args.negative_class)
    inputs = table_warnings(lesions, args.lesions)
    if inputs:
        result["model"]["provenance"]["input_warnings"] = inputs
    write_text(out / "model.json", json.dumps(result["model"], indent=2) + "\n")
    write_text(out / "reference.json", result["reference"].to_json())
    write_table(result["grid"], out / "cv_grid.csv")
    provenance = result["model"]["provenance"]
    print(f"Trained {args.name} on {provenance['n_lesions']} lesions ({provenance['n_positive']} positive): alpha "
          f"{provenance['alpha']:g}, lambda {provenance['lambda']:g}; cross-validated AUC "
          f"{provenance['cv']['auc_mean']:.3f} (SD {provenance['cv']['auc_sd']:.3f}, {settings.repeats} x "
          f"{settings.folds}-fold)")
    for name, value in result["model"]["coefficients"].items():
        print(f"  {name}: {value:+.4f}")
    print(f"WARNING: {provenance['warning']}")
    if result["reference"].warning:
        print(f"WARNING: reference.json: {result['reference'].warning}")
    _print(warning_lines(inputs))
    print(f"Results in {out}: model.json, reference.json, cv_grid.csv")
    return 0


def command_cohort_report(args):
    from ..analytics import cohort_report
    from ..analytics.survival import CLINICAL_COLUMNS

    out = output_file(args.out, "Report file")
    labels = tables.read_csv(args.labels, "Labels", ["patient_id", "label"]) if args.labels else None
    clinical = tables.read_csv(args.clinical, "Clinical table", CLINICAL_COLUMNS) if args.clinical else None
    lesions = _read_lesions(args.lesions)
    text = cohort_report.build(lesions, args.lesions, labels, args.labels, clinical, args.clinical,
                               args.aggregate, args.timepoint)
    write_text(out, text)
    _print(warning_lines(table_warnings(lesions, args.lesions)))
    print(f"Cohort report written to {out}")
    return 0


COMMANDS = {"longitudinal": command_longitudinal, "evaluate": command_evaluate, "survival": command_survival,
            "train": command_train, "cohort-report": command_cohort_report}
