"""The ``cttime`` command: its parser and the run commands (score, cohort, rescore, reference, demo, report).

Exit codes (``run.summary``): 0 every lesion scored, 3 some lesions failed (their rows carry the reason), 2 a bad
command line, input file or option, 130 interrupted.
"""

import argparse
import dataclasses
import difflib
import logging
import os
import signal
import sys
from pathlib import Path

from .. import __version__
from ..core.errors import CTTimeError
from ..core.files import output_file, write_text
from ..core.lesions import split_warnings
from ..core.resources import DEMO_REFERENCE, MODEL_FILE, PARAMETER_FILE, SAMPLE_DATA
from ..core.version import VERSION_TEXT
from ..io.images import DEFAULT_MAX_VOXELS, MAX_VOXELS_ENV
from ..run import pipeline, progress, run_folder
from ..run.log import third_party_output
from ..run.manifest import read_manifest
from ..run.proposals import delineation_of
from ..run.run_folder import read_lesions_table
from ..run.summary import EXIT_OK, EXIT_SOME_FAILED, exit_status, print_report
from ..scoring import robustness, standardization
from ..scoring.extraction import ALL, FEATURE_PREFIX, FEATURE_SETS
from ..scoring.signature import load_model
from ..scoring.standardization import COHORT
from . import analytics

DESCRIPTION = """\
CT-TIME: a radiomics estimate of whether a tumour's immune microenvironment is T-cell inflamed
(Bernatowicz et al., J Immunother Cancer 2025;13:e009140). Four pyradiomics features of each CT lesion are
z-scored and put through the published model; a score above 0.5 means "inflamed". Scores are aggregated per
patient and time point (the minimum over lesions predicted progression-free survival best).

Z-scoring needs a reference population: either the lesions scored together (--standardize cohort, as in the
paper) or a stored reference (--reference REF.json). A score against a small or demo reference is not
clinically calibrated, and every output says so. Research use only."""


MARKS_HELP = ("RECIST lines, one per lesion (a second with the same ID is its short axis): a Slicer .mrk.json (line "
              "names = lesion IDs, LPS or RAS), a CSV lesion_id,x1,y1,z1,x2,y2,z2 in LPS mm (optional location "
              "column) or a DICOM SR (TID 1500 lengths; SCOORD lines need --image as the DICOM series); a lesion is "
              "proposed from each (see docs/delineation.md)")


def _add_standardization(parser, required=True):
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--reference", metavar="REF.json",
                       help="z-score against this reference (per-feature mean and SD; see `cttime reference build`); "
                            "`--reference demo` is the demo reference shipped with CTTime (not clinically "
                            "calibrated; its path: `cttime info`)")
    group.add_argument("--standardize", choices=[COHORT],
                       help="cohort: z-score over all lesions scored together (mean, sample SD), as the paper did")
    parser.add_argument("--group-by", metavar="COLUMN", action="append", default=[],
                        help="with --standardize cohort only: z-score within groups of this column, e.g. timepoint "
                             "or batch (repeatable)")
    parser.add_argument("--model", default=str(MODEL_FILE), metavar="MODEL.json",
                        help="model file (default: the published CT-TIME model)")


def _add_extraction(parser):
    parser.add_argument("--features", choices=FEATURE_SETS, default=ALL,
                        help="all: pyradiomics' 107 features (default; where pyradiomics is not installed, CTTime's "
                             "engine computes what 'signature' does and says so); signature: CTTime's engine, "
                             "compiled-code-free, the signature's four features and the shape class only (equal to "
                             "pyradiomics' to 1e-12, the other columns left empty), for the fixed parameter file")
    parser.add_argument("--params", default=str(PARAMETER_FILE), metavar="PARAMS.yaml",
                        help="pyradiomics parameter file (default: the fixed Table-2 file; scores are only valid "
                             "with it)")
    parser.add_argument("--no-segmentation", action="store_true",
                        help="do not write the coloured <patient>_<timepoint>_cttime.seg.nrrd files")
    parser.add_argument("--dicom", action="store_true",
                        help="also write <patient>_<timepoint>_cttime_seg.dcm (DICOM SEG) and _cttime_sr.dcm (DICOM "
                             "SR, TID 1500) for each study whose CT is a DICOM series, to send to PACS")
    parser.add_argument("--max-voxels", type=_positive, metavar="N",
                        help="refuse images and segmentations larger than N voxels before reading them (default: "
                             f"${MAX_VOXELS_ENV}, else {DEFAULT_MAX_VOXELS:,})")


def _add_perturbations(parser):
    defaults = ", ".join(f"{n} with --features {name}" for name, n in robustness.DEFAULT_PERTURBATIONS.items())
    parser.add_argument("--perturbations", type=_count, metavar="N",
                        help="score N perturbed delineations of every lesion (grown, shrunk, contour randomised by "
                             "about one voxel) for a score interval and whether the status is robust; 0 switches it "
                             f"off (default: {defaults}; see docs/robustness.md)")


def _count(text):
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _positive(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _add_no_cache(parser):
    parser.add_argument("--no-cache", action="store_true",
                        help="extract everything again: do not reuse or keep raw results in OUT/cache (by default "
                             "a rerun skips studies and lesions already done, e.g. after an interruption)")


class _Parser(argparse.ArgumentParser):
    """argparse, naming an unknown option of a command (with the option it most resembles) before any other error:
    argparse would first complain that a required option is missing when the unknown one is its misspelling."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if self._subparsers:  # the options before the command are this parser's, the rest the command's
            command = next((n for n, arg in enumerate(args) if not arg.startswith("-")), len(args))
            self._check_options(args[:command])
        else:
            self._check_options(args)
        return super().parse_known_args(args, namespace)

    def _check_options(self, args):
        known = [option for option in self._option_string_actions if option.startswith("--")]
        for arg in args:
            if arg == "--":
                break
            name = arg.split("=", 1)[0]
            if not name.startswith("--") or name in self._option_string_actions or \
                    (self.allow_abbrev and any(option.startswith(name) for option in known)):
                continue
            close = difflib.get_close_matches(name, known, n=1)
            self.error(f"unrecognized option {name}" + (f": did you mean {close[0]}?" if close else
                                                        f" (see {self.prog} --help)"))


def _add_execution(parser):
    parser.add_argument("--workers", type=_positive, default=os.cpu_count() or 1, metavar="N",
                        help="local processes extracting studies in parallel (default: the CPU count, "
                             f"{os.cpu_count()} here); results are identical for any N")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="run the extraction on this Dask distributed cluster instead (workers need CTTime of "
                             "the same version and the same paths to images and output folder)")
    _add_no_cache(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress display and no per-patient listing")
    parser.add_argument("--log-json", nargs="?", const="-", metavar="FILE",
                        help="write progress events as JSON lines to FILE, or to standard output without FILE "
                             "(the human-readable report then goes to standard error)")


def build_parser():
    parser = _Parser(prog="cttime", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=VERSION_TEXT)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    commands.add_parser("info", help="where the model, parameter file and demo reference are, and which feature "
                                     "engines are available",
                        description="List CTTime's version, the model, the fixed parameter file and the demo "
                                    "reference (paths and SHA-256 checksums), the sample data and the feature "
                                    "engines available.")

    score = commands.add_parser("score", help="score the lesions of one CT study",
                                description="Score every lesion of one CT image and its segmentation, and/or the "
                                            "lesions proposed from RECIST lines (--marks).")
    score.add_argument("--image", required=True, help="CT volume (NRRD, NIfTI, ...) or DICOM series folder")
    score.add_argument("--segmentation",
                       help="Slicer .seg.nrrd (segment names = lesion IDs), labelmap (one label per lesion) or "
                            "binary mask (needed unless --marks is given)")
    score.add_argument("--marks", metavar="MARKS", help=MARKS_HELP + "; with --segmentation, for the lesions it "
                                                                    "lacks")
    score.add_argument("--patient", required=True, help="patient ID")
    score.add_argument("--timepoint", default="BS", help="time point: BS baseline, FU follow-up, BR best response "
                                                         "(default BS)")
    score.add_argument("--label-name", action="append", default=[], metavar="VALUE=NAME",
                       help="lesion ID for a labelmap value, e.g. 2=liver_1 (repeatable; default: the label's name "
                            "in a colour table beside the labelmap, e.g. mask_ColorTable.ctbl, else lesion_<value>)")
    score.add_argument("--location", action="append", default=[], metavar="[LESION=]LOCATION",
                       help="location of a lesion (LESION=LOCATION, repeatable) or, without LESION=, of every lesion "
                            "the segment's tag or name does not place (e.g. --location lung for a chest CT): lung, "
                            "liver, lymph node, bone or other (default: from the segment's tag or the lesion name, "
                            "e.g. LU_1 -> lung, else other)")
    score.add_argument("--out", required=True, help="output folder")
    _add_standardization(score)
    _add_extraction(score)
    _add_perturbations(score)
    _add_no_cache(score)

    delineate = commands.add_parser(
        "delineate", help="propose lesion masks from RECIST lines, for editing",
        description="Propose a 3D mask of each lesion from its RECIST long axis (and short axis, when drawn) and "
                    "write them as <patient>_<timepoint>_proposed.seg.nrrd into --out: one segment per line, named "
                    "by it, tagged as proposed, with each proposal's warnings. Edit them in Slicer's Segment "
                    "Editor, then score with --segmentation; or score them at once with `cttime score --marks`.")
    delineate.add_argument("--image", required=True, help="CT volume (NRRD, NIfTI, ...) or DICOM series folder")
    delineate.add_argument("--marks", required=True, metavar="MARKS", help=MARKS_HELP)
    delineate.add_argument("--patient", required=True, help="patient ID")
    delineate.add_argument("--timepoint", default="BS", help="time point (default BS)")
    delineate.add_argument("--out", required=True, help="output folder")

    cohort = commands.add_parser("cohort", help="score every study listed in a manifest",
                                 description="Score a cohort. The manifest CSV has the columns patient_id, "
                                             "timepoint, image, segmentation (paths relative to the manifest); "
                                             "optional columns: marks (RECIST lines, lesions proposed from them; "
                                             "may stand in for the segmentation), batch (scanner or kernel group), "
                                             "location (of the lesions their tag or name does not place, e.g. "
                                             "lung), locations "
                                             "(e.g. LU_1=lung;liver_2=liver), labels (labelmap values, e.g. "
                                             "1=LU_1;2=liver_2). Images may be DICOM series folders, "
                                             "segmentations DICOM SEG or RTSTRUCT. Studies run in parallel; "
                                             "a rerun into the same --out resumes where the last one stopped.")
    cohort.add_argument("manifest", help="manifest CSV")
    cohort.add_argument("--out", required=True, help="output folder")
    _add_standardization(cohort)
    analytics.add_harmonize(cohort)
    _add_extraction(cohort)
    _add_perturbations(cohort)
    _add_execution(cohort)

    rescore = commands.add_parser("rescore", help="score an existing lesions table again, without re-extracting",
                                  description="Re-score a lesions table (e.g. lesions.csv of an earlier run) with "
                                              "another standardisation or model. Needs patient_id, timepoint, "
                                              "lesion_id and the signature's four features. The score intervals "
                                              "are scored again from perturbations.csv beside the table, when "
                                              "it is there (else they are left empty).")
    rescore.add_argument("lesions", help="lesions CSV")
    rescore.add_argument("--out", required=True, help="output folder")
    _add_standardization(rescore)
    analytics.add_harmonize(rescore)

    reference = commands.add_parser("reference", help="build a standardisation reference")
    reference_commands = reference.add_subparsers(dest="reference_command", metavar="ACTION")
    reference_commands.required = True
    build = reference_commands.add_parser("build", help="build a reference JSON from a lesions table",
                                          description="Per-feature mean and sample SD of every original_* "
                                                      "feature over the table's lesions that have no error.")
    build.add_argument("lesions", help="lesions CSV (e.g. lesions.csv of a cohort run)")
    build.add_argument("-o", "--output", required=True, help="reference JSON to write")
    build.add_argument("--source", help="description of the cohort (default: the table's path)")
    build.add_argument("--demo", action="store_true", help="mark the reference as a demo (not clinically calibrated)")
    build.add_argument("--model", default=str(MODEL_FILE), metavar="MODEL.json", help="model the reference is for")

    demo = commands.add_parser("demo", help="score the sample data shipped with CTTime",
                               description="Score the sample sarcoma CTs inside CTTime against the demo reference "
                                           "and print where the results are.")
    demo.add_argument("--out", default="cttime-demo", help="output folder (default: ./cttime-demo)")

    board = commands.add_parser("board", aliases=["report"],
                                help="draw the tumour-board figure of each patient and time point (alias: report)",
                                description="Write <patient>_<timepoint>_board.png (and .pdf) into a run folder "
                                            "written by `cttime score` or `cttime cohort`: each lesion on the axial "
                                            "slice through its largest cross-section, coloured by score, with the "
                                            "patient's aggregates, the colour bar and the trend over time points.")
    board.add_argument("run_dir", metavar="RUN_DIR", help="run folder (lesions.csv, patients.csv, run.json)")
    board.add_argument("--pdf", action="store_true", help="also write a PDF of each board")
    board.add_argument("--patient", metavar="ID", help="only this patient (default: every patient)")
    board.add_argument("--window", choices=("auto", "soft", "lung"), default="auto",
                       help="CT window of the lesion images: auto (default) lung window W 1500 / L -600 for lung "
                            "lesions, soft-tissue window W 400 / L 40 for the others; soft or lung for every lesion")
    dicom = commands.add_parser("dicom-export", help="write DICOM SEG + SR of a run folder's studies (for PACS)",
                                description="Write <patient>_<timepoint>_cttime_seg.dcm (DICOM SEG: one segment "
                                            "per lesion, in its CT-TIME colour) and _cttime_sr.dcm (DICOM SR, TID "
                                            "1500 measurement report: scores, features, volumes, status, patient "
                                            "aggregates, standardisation and warnings) into a run folder written by "
                                            "`cttime score` or `cttime cohort`, for each study whose CT is a DICOM "
                                            "series. Both reference that series and carry its patient and study.")
    dicom.add_argument("run_dir", metavar="RUN_DIR", help="run folder (lesions.csv, patients.csv, run.json)")
    analytics.add_commands(commands)
    return parser


def _pairs(items, option):
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise CTTimeError(f"{option} expects KEY=VALUE, got {item!r}.", "input")
        pairs[key.strip()] = value.strip()
    return pairs


def _options(args):
    return pipeline.Options(standardize=args.reference or COHORT, group_by=tuple(args.group_by),
                            model_file=args.model, parameter_file=getattr(args, "params", str(PARAMETER_FILE)),
                            features=getattr(args, "features", ALL),
                            write_segmentations=not getattr(args, "no_segmentation", False),
                            harmonize_by=getattr(args, "harmonize", None),
                            perturbations=getattr(args, "perturbations", None),
                            max_voxels=getattr(args, "max_voxels", None))


def _check_dicom(args):
    """--dicom and dicom-export need highdicom (an optional dependency): say so before any work."""
    import importlib.util

    if getattr(args, "dicom", True) and importlib.util.find_spec("highdicom") is None:
        raise CTTimeError("DICOM SEG + SR export needs the highdicom package: pip install highdicom (or "
                          "pip install 'cttime[dicom]').", "input")


def _label_names(items):
    names = _pairs(items, "--label-name")
    wrong = [key for key in names if not key.isdigit()]
    if wrong:
        raise CTTimeError(f"--label-name expects LABEL_VALUE=LESION_ID with a whole-number label value, got "
                          f"{', '.join(f'{key}={names[key]}' for key in wrong)}.", "input")
    return {int(key): value for key, value in names.items()}


def _locations(items):
    """--location: the LESION=LOCATION pairs and the study's location (an item without "=", at most one)."""
    from ..core.lesions import study_location

    alone = [item for item in items if "=" not in item]
    if len(alone) > 1:
        raise CTTimeError(f"--location without LESION= gives the location of the study's lesions, once; got "
                          f"{', '.join(alone)}.", "input")
    return _pairs([item for item in items if "=" in item], "--location"), study_location(alone[0] if alone else "")


def command_score(args):
    _check_dicom(args)
    if not args.segmentation and not args.marks:
        raise CTTimeError("cttime score needs the lesions: --segmentation FILE, --marks FILE (RECIST lines), or "
                          "both.", "input")
    locations, location = _locations(args.location)
    case = pipeline.Case(args.patient, args.timepoint, args.image, args.segmentation or "",
                         names=_label_names(args.label_name), locations=locations, marks=args.marks or "",
                         location=location)
    options = dataclasses.replace(_options(args), cache=not args.no_cache)
    options.strict = True  # one study: an image or segmentation that cannot be used is bad input (exit 2)
    code = print_report(pipeline.run([case], args.out, options, events=progress.Lines()))
    return _with_dicom(args, [case], code)


def _with_dicom(args, cases, code):
    """With --dicom: the DICOM SEG + SR of the run just written; a study without them turns exit 0 into 3."""
    if not args.dicom:
        return code
    written = _dicom_export(args.out, cases)
    return EXIT_SOME_FAILED if code == EXIT_OK and not written else code


def _dicom_export(run_dir, cases=()):
    """Write and report the DICOM SEG + SR of a run folder; True when every study has them."""
    from ..run.dicom_results import export_run

    result = export_run(run_dir, cases)
    if result.files:
        print(f"DICOM SEG + SR in {run_dir}: " + ", ".join(Path(f).name for f in result.files))
    for message in result.skipped:
        print(f"No DICOM SEG/SR for {message}", file=sys.stderr)
    return not result.skipped


def command_delineate(args):
    path, lesions = pipeline.delineate(args.image, args.marks, args.patient, args.timepoint, args.out)
    print(f"{len(lesions)} lesion(s) proposed from {args.marks}: {path}")
    for lesion in lesions:
        delineation, warnings = delineation_of(lesion)
        print(f"  {lesion.lesion_id}: {delineation}")
        for warning in split_warnings(warnings):
            print(f"WARNING: {warning}", file=sys.stderr)
    print("Check and edit them in Slicer's Segment Editor before scoring them with --segmentation.")
    return EXIT_OK


def command_cohort(args):
    _check_dicom(args)
    cases = read_manifest(args.manifest)
    options = dataclasses.replace(_options(args), workers=args.workers, scheduler=args.scheduler,
                                  cache=not args.no_cache)
    log = None
    if args.log_json and args.log_json != "-":
        log = _open_log(args.log_json)
    try:
        json_lines = progress.JsonLines(sys.stdout if args.log_json == "-" else log) if args.log_json else None
        display = None if args.quiet else progress.ProgressBar() if sys.stderr.isatty() else progress.Lines()
        result = pipeline.run(cases, args.out, options, events=progress.combine(json_lines, display))
    finally:
        if log:
            log.close()
    code = print_report(result, sys.stderr if args.log_json == "-" else None, args.quiet)
    return _with_dicom(args, cases, code)


def _open_log(path):
    """The --log-json FILE opened for appending, or a CTTimeError saying why it cannot be."""
    try:
        return open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise CTTimeError(f"--log-json {path}: cannot write to it ({exc.strerror or exc}); give a file in a folder "
                          "that exists and can be written to.", "input") from None


def command_rescore(args):
    perturbations = run_folder.read_perturbations_table(Path(args.lesions).parent)
    return print_report(pipeline.rescore(read_lesions_table(args.lesions), args.out, _options(args), perturbations))


def command_reference_build(args):
    output = output_file(args.output, "Reference file")
    model = load_model(args.model)
    table = read_lesions_table(args.lesions)
    if "error" in table:
        table = table[table["error"] == ""]
    others = [c for c in table.columns  # columns an extractor left empty (the engine's) are no features
              if c.startswith(FEATURE_PREFIX) and c not in model.features and table[c].notna().any()]
    reference = standardization.build(table, model.features, args.source or str(args.lesions), model.name,
                                      __version__, demo=args.demo, optional=others)
    write_text(output, reference.to_json())
    left_out = reference.extra.get("left_out", {})
    unused = len(table) - reference.n_lesions
    print(f"Reference of {reference.n_lesions} lesions, {len(reference.means)} features written to {output}"
          + (f" ({unused} lesion(s) without finite model features not used)." if unused else "."))
    if left_out:
        print(f"Note: {len(left_out)} feature(s) the model does not use left out: "
              + "; ".join(f"{name} ({why})" for name, why in left_out.items()))
    if reference.warning:
        print(f"WARNING: {reference.warning}", file=sys.stderr)
    return EXIT_OK


def command_demo(args):
    cases = read_manifest(SAMPLE_DATA / "manifest.csv")
    options = pipeline.Options(standardize=str(DEMO_REFERENCE))
    print(f"CTTime demo: {len(cases)} sample sarcoma CT(s) from the IBSI/TCIA Soft-tissue-Sarcoma data "
          f"(CC BY 3.0), scored against the demo reference {DEMO_REFERENCE} (--reference demo).")
    code = print_report(pipeline.run(cases, args.out, options, events=progress.Lines()))
    _write_boards(args.out)
    return code


def _write_boards(run_dir, pdf=False, patient=None, window="auto"):
    from ..figures.tumour_board import stale_boards, write_run_boards

    files = write_run_boards(run_dir, pdf=pdf, patient=patient, window=window)
    print(f"Tumour-board figures in {run_dir}: " + ", ".join(Path(f).name for f in files))
    for line in stale_boards(run_dir, files):
        print(f"WARNING: {line}", file=sys.stderr)


def command_board(args):
    _write_boards(args.run_dir, args.pdf, args.patient, args.window)
    return EXIT_OK


def info_lines():
    """CTTime's resources with their checksums, and the feature engines available."""
    import importlib.util
    import platform

    from ..core.files import digest

    model = load_model()
    demo = standardization.load(DEMO_REFERENCE, model.features, model.name)
    lines = [f"cttime {__version__} (Python {platform.python_version()})",
             f"Model:          {MODEL_FILE}", f"                sha256 {digest(MODEL_FILE)} ({model.name}, "
             f"{len(model.features)} features)",
             f"Parameter file: {PARAMETER_FILE}", f"                sha256 {digest(PARAMETER_FILE)} (the fixed "
             "Table-2 file; scores are only valid with it)",
             f"Demo reference: {DEMO_REFERENCE}", f"                sha256 {digest(DEMO_REFERENCE)} ({demo.n_lesions} "
             "lesions; --reference demo; not clinically calibrated)",
             f"Sample data:    {SAMPLE_DATA}", "Feature engines:"]
    try:
        import radiomics

        lines.append(f"  pyradiomics {radiomics.__version__}: available (the reference implementation)")
    except ImportError as exc:
        lines.append(f"  pyradiomics: NOT available ({exc}); install it to score")
    engine = importlib.util.find_spec(f"{__package__.rsplit('.', 1)[0]}.scoring.engine")
    lines.append("  CTTime's own engine (scoring.engine): " + ("available" if engine else "not in this version"))
    return lines


def command_info(args):
    print("\n".join(info_lines()))
    return EXIT_OK


def command_dicom_export(args):
    _check_dicom(args)
    return EXIT_OK if _dicom_export(args.run_dir) else EXIT_SOME_FAILED


COMMANDS = {"score": command_score, "delineate": command_delineate, "cohort": command_cohort, "rescore": command_rescore,
            "reference": command_reference_build, "demo": command_demo, "board": command_board,
            "report": command_board, "dicom-export": command_dicom_export, "info": command_info}
COMMANDS.update(analytics.COMMANDS)


def _log_folder(args):
    """The folder of a command's outputs, where its cttime.log goes (None: a command that writes nothing)."""
    if args.command in ("board", "report"):
        return args.run_dir
    if args.command == "reference":
        return Path(args.output).parent
    if args.command == "cohort-report":
        return Path(args.out).parent
    return getattr(args, "out", None)


def main(argv=None):
    args = build_parser().parse_args(argv)
    with third_party_output(_log_folder(args), f"cttime {args.command}"):
        return exit_status("cttime", lambda: COMMANDS[args.command](args))


def _terminated(signum, frame):
    raise KeyboardInterrupt


def console():
    """The ``cttime`` command: ``main``, then exit at once. Every output is written and closed by then, and
    Python's own tear-down of pandas, SimpleITK and pyradiomics would add 0.15-0.3 s to every command. SIGTERM
    stops a run as Ctrl-C does (exit 130, workers stopped, a rerun resumes)."""
    signal.signal(signal.SIGTERM, _terminated)
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    console()
