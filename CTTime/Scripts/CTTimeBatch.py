"""Score a cohort inside Slicer's Python, without the GUI: the code `cttime cohort` runs.

    Slicer --no-splash --no-main-window --python-script <CTTime>/Scripts/CTTimeBatch.py \\
        --manifest manifest.csv --out results/ [--standardize cohort | --reference REF.json] [--group-by timepoint]
        [--perturbations N] [--features all | signature] [--install-requirements]

The manifest's ``marks`` column (RECIST lines: .mrk.json, CSV or DICOM SR) proposes lesions from their lines, as
`cttime cohort` does. Writes lesions.csv, patients.csv, run.json and the coloured .seg.nrrd files, and exits Slicer
with the CLI's status: 0 every lesion scored, 3 some lesions failed (their rows say why), 2 bad input or packages
missing (a fresh Slicer lacks pandas, PyYAML, pynrrd, slicerio: --install-requirements installs them), 130
cancelled, 1 an unexpected error. It always ends with slicer.util.exit: Slicer run with --no-main-window exits only
when told to.
Screenshots are not taken here: views need Slicer's main window. The script sits in Scripts/, not beside
CTTime.py, because Slicer loads every .py in a module's folder as a module at start-up.
"""

import argparse
import os
import sys
import traceback

# CTTimeLib is in this script's parent folder; Slicer sets sys.argv[0] to the script's path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(globals().get("__file__") or sys.argv[0]))))


INSTALL_OPTION = "--install-requirements"
EXIT_FAILED = 1  # an unexpected error (a defect to report): not one of `cttime cohort`'s statuses


def build_parser():
    from CTTimeLib.scoring.extraction import ALL, FEATURE_SETS

    parser = argparse.ArgumentParser(prog="CTTimeBatch.py", description="Score the cohort of a CTTime manifest "
                                     "(patient_id, timepoint, image, segmentation and/or marks) inside Slicer.")
    parser.add_argument("--manifest", required=True, help="manifest CSV (paths relative to it)")
    parser.add_argument("--out", required=True, help="output folder")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--reference", metavar="REF.json", help="z-score against this stored reference")
    group.add_argument("--standardize", choices=["cohort"], default="cohort",
                       help="cohort: z-score over all lesions of the manifest (default)")
    parser.add_argument("--group-by", metavar="COLUMN", action="append", default=[],
                        help="with cohort standardisation: z-score within groups of this column (repeatable)")
    parser.add_argument("--perturbations", type=_count, metavar="N",
                        help="perturbed delineations per lesion, for score intervals (0: off; default as `cttime "
                             "cohort`)")
    parser.add_argument(INSTALL_OPTION, action="store_true",
                        help="first install the Python packages Slicer lacks (pandas, PyYAML, pynrrd, slicerio) "
                             "with Slicer's pip, as the module's Compute does")
    parser.add_argument("--features", choices=FEATURE_SETS, default=ALL,
                        help="all: pyradiomics' 107 features (default; without pyradiomics, CTTime's engine computes "
                             "what 'signature' does and says so); signature: CTTime's engine, no compiled code")
    return parser


def _count(text):
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def main(argv):
    """Run the cohort; the exit status of `cttime cohort`."""
    from CTTimeLib.run import pipeline, progress
    from CTTimeLib.run.log import third_party_output
    from CTTimeLib.run.manifest import read_manifest
    from CTTimeLib.run.summary import EXIT_OK, EXIT_USAGE, exit_status, print_report
    from CTTimeLib.scoring.standardization import COHORT

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help or a bad option: argparse has printed why
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    options = pipeline.Options(standardize=args.reference or COHORT, group_by=tuple(args.group_by),
                               features=args.features)
    if args.perturbations is not None:
        options.perturbations = args.perturbations
    with third_party_output(args.out, "CTTimeBatch"):
        return exit_status("CTTimeBatch", lambda: print_report(
            pipeline.run(read_manifest(args.manifest), args.out, options, events=progress.Lines())))


def missing_requirements(install):
    """The pip requirements of Resources/requirements.txt (pandas, PyYAML, ...) that cannot be imported; with
    ``install``, Slicer's pip installs them first, as the module's Compute does (Slicer's pydicom kept)."""
    import importlib

    from CTTimeMRML.packages import missing_packages, pinned_requirements

    missing = missing_packages()
    if missing and install:
        import slicer

        try:
            slicer.util.pip_install(pinned_requirements(missing))
        except Exception as exc:  # pip's output is in Slicer's log
            print(f"CTTimeBatch: installing {', '.join(missing)} failed: {exc}", file=sys.stderr)
        importlib.invalidate_caches()
        missing = missing_packages()
    return missing


def run(argv):
    """``main(argv)``'s status, never an exception: missing packages (2) and unexpected errors (1) are printed."""
    try:
        from CTTimeLib.run.summary import EXIT_USAGE

        missing = missing_requirements(INSTALL_OPTION in argv)
        if missing:
            print(f"CTTimeBatch: error: Slicer's Python lacks {', '.join(missing)}. Run again with {INSTALL_OPTION} to "
                  "install them with Slicer's pip (internet needed), or install them yourself: PythonSlicer -m pip "
                  "install " + " ".join(f'"{name}"' for name in missing), file=sys.stderr)
            return EXIT_USAGE
        return main(argv)
    except KeyboardInterrupt:
        print("CTTimeBatch: interrupted.", file=sys.stderr)
        return 130  # CTTimeLib.run.summary.EXIT_INTERRUPTED
    except Exception:
        traceback.print_exc()
        print("CTTimeBatch: error: unexpected failure (above); no results are missing silently: rerun after fixing "
              "it, finished studies are reused.", file=sys.stderr)
        return EXIT_FAILED


def exit_with(status):
    """Leave Slicer (or a plain Python running this script) with ``status``: with --no-main-window, Slicer exits
    only when told to."""
    try:
        import slicer
    except ImportError:
        slicer = None
    if slicer is not None and hasattr(slicer, "app"):
        slicer.util.exit(status)
    else:
        sys.exit(status)


if __name__ != "CTTimeBatch":  # run as a script (by Slicer or Python), not imported as a module
    exit_with(run(sys.argv[1:]))
