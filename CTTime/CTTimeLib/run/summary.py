"""What a run says when it ends: its summary (run.json), the printed report and exit status, patient lines.

Exit statuses, shared by ``cttime`` and the Slicer batch script: 0 every lesion scored, 3 some lesions failed
(their rows carry the reason), 2 a bad command line, input file or option, 130 interrupted.
"""

import functools
import sys
from collections import Counter
from pathlib import Path

from ..core.errors import Cancelled, CTTimeError
from ..core.tags import robust_text
from ..core.lesions import is_default_label_name
from ..scoring.reference_interval import mismatch
from ..scoring.soft_tissue import COLUMN as SHARE, SHARE_THRESHOLD
from .run_folder import SUPERSEDED_DIR

NOT_CHECKED = "not checked: no DICOM header"

EXIT_OK, EXIT_USAGE, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 0, 2, 3, 130


def exit_status(program, action):
    """``action()``'s exit status; a user error prints ``program: error: ...`` (2), an interruption (Ctrl-C,
    SIGINT, a cancel) ``program: interrupted`` (130). Never a traceback for either."""
    try:
        return action()
    except CTTimeError as exc:
        print(f"{program}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (Cancelled, KeyboardInterrupt):
        print(f"{program}: interrupted; files already written are complete.", file=sys.stderr)
        return EXIT_INTERRUPTED


def run_summary(lesions, **extra):
    """Lesions ok and failed, failures by kind of error; the studies outside CT-TIME's training domain and those
    the acquisition check could not check (no DICOM header: NIfTI, NRRD); lesions with a low soft-tissue share;
    unnamed labelmap lesions left at location "other"; the reference's and the lesions' reference-robust statuses,
    and when at least half the lesions lie outside the reference, that it does not describe them."""
    failed = lesions[lesions["error"] != ""]
    kinds = Counter(str(kind) or "other" for kind in (failed["error_kind"] if "error_kind" in failed
                                                      else ["other"] * len(failed)))
    summary = dict(extra, lesions=len(lesions), ok=len(lesions) - len(failed), failed=len(failed),
                   failed_by_kind=dict(sorted(kinds.items())))
    robust = [robust_text(value) for value in lesions.get("ct_time_status_robust", ())]
    if any(robust):
        summary["status_robust"] = {"robust": robust.count("robust"), "with_interval": sum(map(bool, robust))}
    robust = [robust_text(value) for value in lesions.get("ct_time_status_reference_robust", ())]
    if any(robust):
        summary["status_reference_robust"] = {"robust": robust.count("robust"), "with_interval": sum(map(bool, robust))}
    if mismatch(lesions):
        summary["reference_mismatch"] = mismatch(lesions)
    read = lesions[lesions["lesion_id"].fillna("").astype(str) != ""]  # a study that could not be read: unknown
    acquired = read["acquisition_warning"] if "acquisition_warning" in read else [None] * len(read)
    missing = read["acquisition_not_checked"] if "acquisition_not_checked" in read else [None] * len(read)
    outside, unchecked = set(), set()
    for patient_id, timepoint, warning, lacking in zip(read["patient_id"], read["timepoint"], acquired, missing):
        if isinstance(lacking, str) and lacking:
            unchecked.add(f"{patient_id} {timepoint}: not checked: {lacking}")
        elif not isinstance(warning, str):  # a table from before the slice-spacing check
            unchecked.add(f"{patient_id} {timepoint}: {NOT_CHECKED}")
        if isinstance(warning, str) and warning:
            outside.add(f"{patient_id} {timepoint}: {warning}")
    summary["studies_outside_training_domain"] = sorted(outside)
    summary["studies_not_checked_for_training_domain"] = sorted(unchecked)
    shares = read[SHARE].astype(float) if SHARE in read else None
    low = read[shares < SHARE_THRESHOLD] if shares is not None else read.iloc[:0]
    summary["low_soft_tissue_share"] = [f"{r['patient_id']} {r['timepoint']} {r['lesion_id']}: {r[SHARE]:.2f}"
                                        for r in low.to_dict("records")]
    summary["unnamed_labels_located_other"] = [
        f"{r['patient_id']} {r['timepoint']} {r['lesion_id']}" for r in read.to_dict("records")
        if is_default_label_name(r["lesion_id"]) and r.get("location") == "other"]
    return summary


def patient_line(row):
    """One patient and time point in a line: what the aggregates stand on, the minimum (the paper's predictor,
    whether its status survives re-delineation when known or flips within the reference's uncertainty, and the
    lesion that sets it), median, heterogeneity."""
    head = f"{row['patient_id']} {row['timepoint']}: "
    if not row["n_scored"]:
        return head + str(row["aggregate_coverage"])
    stands_on = f"{row['n_scored']} of {row['n_lesions']} lesion(s) scored" if row["aggregate_complete"] else \
        f"{row['aggregate_coverage']} (aggregates over the scored lesions only)"
    robust = {"robust": ", robust", "uncertain": ", flips under re-delineation"}.get(
        robust_text(row.get("status_min_robust")), "")
    if robust_text(row.get("status_min_reference_robust")) == "uncertain":
        robust += ", uncertain with this reference"
    return (f"{head}{stands_on}, CT-TIME min {row['ct_time_min']:.3f} ({row['status_min']}{robust}, set by "
            f"{row['min_lesion_id']}), median {row['ct_time_median']:.3f}, heterogeneity {row['heterogeneity']}")


def patient_lines(patients):
    """Every patient's line, and a line for each patient with failed lesions."""
    lines = []
    for row in patients.to_dict("records"):
        lines.append(patient_line(row))
        if row["n_failed"] and row["n_scored"]:
            lines.append(f"{row['patient_id']} {row['timepoint']}: {row['n_failed']} lesion(s) failed (see Note)")
    return lines


def print_report(result, stream=None, quiet=False):
    """Print a run's outcome (warnings go to standard error) and return its exit status."""
    say = functools.partial(print, file=stream or sys.stdout)
    say(f"Scored {len(result.lesions) - result.n_failed} lesion(s), {result.n_failed} failed"
        + "".join(f", {n} {kind}" for kind, n in result.summary.get("failed_by_kind", {}).items()) + ".")
    summary = result.summary
    robust = summary.get("status_robust")
    if robust:
        say(f"Status robust to re-delineation: {robust['robust']} of {robust['with_interval']} lesion(s) with a "
            "score interval.")
    robust = summary.get("status_reference_robust")
    if robust:
        say(f"Status robust to the reference's sampling uncertainty: {robust['robust']} of {robust['with_interval']} "
            "lesion(s).")
    if summary.get("reference_mismatch"):
        print(f"WARNING: {summary['reference_mismatch']}.", file=sys.stderr)
    flagged = summary.get("studies_outside_training_domain", [])
    if flagged:
        say(f"{len(flagged)} study(ies) outside CT-TIME's training domain (scores less certain):")
        for line in flagged:
            say(f"  {line}")
    unchecked = summary.get("studies_not_checked_for_training_domain", [])
    if unchecked:
        say(f"Note: training domain not fully checked for {len(unchecked)} study(ies) without DICOM headers (NIfTI, "
            "NRRD...): their kVp, kernel and contrast are unknown (check them yourself); their slice spacing stands "
            "in for the slice thickness.")
    unnamed = summary.get("unnamed_labels_located_other", [])
    if unnamed:
        say(f"Note: {len(unnamed)} unnamed labelmap lesion(s) got location \"other\" ({', '.join(unnamed[:5])}"
            f"{', ...' if len(unnamed) > 5 else ''}): name the labels (--label-name 1=LU_1, the manifest's labels or "
            "a colour table beside the labelmap) or give the study's location (--location lung, the manifest's "
            "location column).")
    for row in (() if quiet else result.patients.to_dict("records")):
        say(f"  {patient_line(row)}")
    for row in (() if quiet else result.lesions[result.lesions["error"] != ""].to_dict("records")):
        say(f"  FAILED {row['patient_id']} {row['timepoint']} {row['lesion_id'] or '(study)'}: {row['error']}")
    for note in result.notes:
        print(f"NOTE: {note}", file=sys.stderr)
    for warning in result.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    incomplete = [f"{row['patient_id']} {row['timepoint']} ({row['aggregate_coverage']})"
                  for row in result.patients.to_dict("records") if not row["aggregate_complete"]]
    if incomplete:
        print(f"WARNING: {len(incomplete)} patient aggregate(s) stand on an incomplete set of lesions or on none: "
              + "; ".join(incomplete), file=sys.stderr)
    low = summary.get("low_soft_tissue_share", [])
    if low:
        print(f"WARNING: {len(low)} lesion(s) with a soft-tissue share below {SHARE_THRESHOLD:g} (most of the drawn "
              "voxels lie outside -100..300 HU; their features describe a minority of the drawing): "
              + "; ".join(low), file=sys.stderr)
    say(f"Results in {result.out_dir}: " + ", ".join(Path(f).name for f in result.files))
    if result.leftovers:
        say(f"NOTE: {len(result.leftovers)} file(s) of an earlier run that this run did not write again moved to "
            f"{Path(result.out_dir) / SUPERSEDED_DIR} (listed in run.json as leftovers): {', '.join(result.leftovers)}")
    return EXIT_SOME_FAILED if result.n_failed else EXIT_OK
