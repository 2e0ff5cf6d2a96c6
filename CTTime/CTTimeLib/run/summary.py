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
    """Lesions ok and failed, failures by kind of error, studies flagged by the acquisition check."""
    failed = lesions[lesions["error"] != ""]
    kinds = Counter(str(kind) or "other" for kind in (failed["error_kind"] if "error_kind" in failed
                                                      else ["other"] * len(failed)))
    summary = dict(extra, lesions=len(lesions), ok=len(lesions) - len(failed), failed=len(failed),
                   failed_by_kind=dict(sorted(kinds.items())))
    robust = [robust_text(value) for value in lesions.get("ct_time_status_robust", ())]
    if any(robust):
        summary["status_robust"] = {"robust": robust.count("robust"), "with_interval": sum(map(bool, robust))}
    if "acquisition_warning" in lesions:
        flagged = lesions[lesions["acquisition_warning"].fillna("").astype(str) != ""]
        summary["studies_outside_training_domain"] = sorted(
            f"{p} {t}: {w}" for p, t, w in flagged[["patient_id", "timepoint", "acquisition_warning"]]
            .drop_duplicates().itertuples(index=False))
    return summary


def patient_line(row):
    """One patient and time point in a line: lesions, minimum (the paper's predictor, and whether its status
    survives re-delineation when known), median, heterogeneity."""
    robust = robust_text(row.get("status_min_robust"))
    status = row["status_min"] + {"robust": ", robust", "uncertain": ", flips under re-delineation"}.get(robust, "")
    return (f"{row['patient_id']} {row['timepoint']}: {row['n_lesions']} lesion(s), CT-TIME min "
            f"{row['ct_time_min']:.3f} ({status}), median {row['ct_time_median']:.3f}, heterogeneity "
            f"{row['heterogeneity']}")


def patient_lines(patients):
    """Every patient's line, and a line for each patient with failed lesions."""
    lines = []
    for row in patients.to_dict("records"):
        if row["n_lesions"]:
            lines.append(patient_line(row))
        if row["n_failed"]:
            lines.append(f"{row['patient_id']} {row['timepoint']}: {row['n_failed']} lesion(s) failed (see Note)")
    return lines


def print_report(result, stream=None, quiet=False):
    """Print a run's outcome (warnings go to standard error) and return its exit status."""
    say = functools.partial(print, file=stream or sys.stdout)
    say(f"Scored {len(result.lesions) - result.n_failed} lesion(s), {result.n_failed} failed"
        + "".join(f", {n} {kind}" for kind, n in result.summary.get("failed_by_kind", {}).items()) + ".")
    robust = result.summary.get("status_robust")
    if robust:
        say(f"Status robust to re-delineation: {robust['robust']} of {robust['with_interval']} lesion(s) with a "
            "score interval.")
    flagged = result.summary.get("studies_outside_training_domain", [])
    if flagged:
        say(f"{len(flagged)} study(ies) outside CT-TIME's training domain (scores less certain):")
        for line in flagged:
            say(f"  {line}")
    for row in (() if quiet else result.patients.to_dict("records")):
        if row["n_lesions"]:
            say(f"  {patient_line(row)}")
    for row in (() if quiet else result.lesions[result.lesions["error"] != ""].to_dict("records")):
        say(f"  FAILED {row['patient_id']} {row['timepoint']} {row['lesion_id'] or '(study)'}: {row['error']}")
    for warning in result.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    say(f"Results in {result.out_dir}: " + ", ".join(Path(f).name for f in result.files))
    if result.leftovers:
        say(f"NOTE: {len(result.leftovers)} file(s) in {result.out_dir} are not from this run (an earlier run's, "
            f"listed in run.json as leftovers); delete them or use a new output folder: {', '.join(result.leftovers)}")
    return EXIT_SOME_FAILED if result.n_failed else EXIT_OK
