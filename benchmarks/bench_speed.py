"""Issue #22's targets side by side in one run: score intervals at about the cost of the bare score.

    .venv/bin/python benchmarks/bench_speed.py [--cache DIR] [--data ../shared/data/sts-ct] [--runs 3]
                                               [--parts startup chest inprocess sarcomas] [--library DIR]

startup     `cttime --version` and `import CTTimeLib.cli.commands` (the parser and run commands every command but
            --version loads; fresh processes), and `python -X importtime`'s
            cumulative seconds for pandas, numpy, SimpleITK, ...; --library times another checkout's (before/after).
            Target: `cttime --version` within 0.3 s.
chest       the 10-lesion 512 x 512 x 61 chest CT of bench_multilesion.py: the per-lesion pyradiomics loop (a fresh
            process, `execute` per lesion on the whole CT) against `cttime score --features signature` end to end
            (a fresh process: start, imports, reading, extraction, scoring, every output) with the default
            perturbations (3), with 0 and with 10. Target: default >= 25x faster than the loop.
inprocess   the same CT already in memory (Slicer's case): the engine's ``extract_lesions`` of the 10 lesions with
            10 perturbed delineations each (and with none). Target: <= 1 s.
sarcomas    the first 12 of the 36 sarcomas, `cttime cohort --workers 1 --no-cache` with the defaults:
            `--features signature` (engine, 3 perturbations) against `--features all` (pyradiomics, none).
            Target: >= 4x.

Every figure is the median of ``--runs`` runs; the CPU seconds (user + system of the process, or of this process
for "inprocess") are printed beside the wall time because on a shared machine the load moves wall times far more
than CPU times. Ratios come from runs made side by side, alternating.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIBRARY = HERE.parent / "CTTime"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(LIBRARY))
ENV = dict(os.environ, PYTHONPATH=str(LIBRARY))

LOOP = r"""
import sys
sys.path.insert(0, {here!r}); sys.path.insert(0, {library!r})
from bench_multilesion import pyradiomics_loop
pyradiomics_loop({image!r}, {labels!r})
"""


def child(argv):
    """Run a fresh Python process: (wall seconds, CPU seconds of that process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], env=ENV, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cttime(*argv):
    return child(["-m", "CTTimeLib.cli", *argv])


def medians(runs, methods):
    """{name: (median wall, median CPU)} of ``methods`` ({name: () -> (wall, cpu)}), run alternating."""
    times = {name: [] for name in methods}
    for _ in range(runs):
        for name, method in methods.items():
            times[name].append(method())
    return {name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
            for name, values in times.items()}


def report(title, results, baseline):
    print(title)
    base_wall, base_cpu = results[baseline]
    for name, (wall, cpu) in results.items():
        print(f"  {name:<52} {wall:7.2f} s wall ({base_wall / wall:5.1f}x)  {cpu:7.2f} s CPU ({base_cpu / cpu:5.1f}x)")


def startup(runs):
    """`cttime --version` and `import CTTimeLib.cli.commands` in fresh processes, and what the import spends its
    time on (``python -X importtime``: cumulative microseconds of the first import of each module)."""
    results = medians(runs, {"cttime --version": lambda: cttime("--version"),
                             "python -c 'import CTTimeLib.cli.commands'":
                                 lambda: child(["-c", "import CTTimeLib.cli.commands"])})
    report(f"start-up ({ENV['PYTHONPATH']}):", results, "cttime --version")
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import CTTimeLib.cli.commands"], env=ENV,
                          capture_output=True, text=True)
    cumulative = {}
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            cumulative.setdefault(parts[2].strip(), int(parts[1]) / 1e6)
    print("  python -X importtime -c 'import CTTimeLib.cli.commands' (cumulative s): " + ", ".join(
        f"{name} {cumulative[name]:.3f}" for name in ("CTTimeLib.cli.commands", "pandas", "numpy", "SimpleITK",
                                                     "matplotlib", "dask", "highdicom", "sklearn")
        if name in cumulative))


def chest_data(cache):
    import SimpleITK as sitk

    from bench_multilesion import lung_data, ten_lesions

    image, tumour = lung_data(cache, "lung2")
    labels = cache / "lung2_10lesions.nrrd"
    if not labels.exists():
        sitk.WriteImage(ten_lesions(sitk.ReadImage(str(image)), sitk.ReadImage(str(tumour))), str(labels), True)
    return image, labels


def chest(cache, runs):
    image, labels = chest_data(cache)
    with tempfile.TemporaryDirectory() as out:
        def score(*extra):
            return lambda: cttime("score", "--image", str(image), "--segmentation", str(labels), "--patient", "P",
                                  "--standardize", "cohort", "--features", "signature", *extra, "--out",
                                  str(Path(out) / "_".join(extra or ("default",))))
        methods = {"pyradiomics loop (per lesion, whole CT)": lambda: child(
                       ["-c", LOOP.format(here=str(HERE), library=str(LIBRARY), image=str(image), labels=str(labels))]),
                   "cttime score --features signature (3 perturbations)": score(),
                   "  the same, --perturbations 0": score("--perturbations", "0"),
                   "  the same, --perturbations 10": score("--perturbations", "10")}
        report("chest CT, 10 lesions, end to end (fresh processes):", medians(runs, methods),
               "pyradiomics loop (per lesion, whole CT)")


def in_process(cache, runs):
    from CTTimeLib.io.images import read_image
    from CTTimeLib.io.segmentations import read_lesions
    from CTTimeLib.run.study import extract_lesions
    from CTTimeLib.scoring.engine import EngineExtractor
    from CTTimeLib.scoring.signature import load_model

    image_path, labels = chest_data(cache)
    image = read_image(image_path)
    lesions = read_lesions(labels, image)
    extractor = EngineExtractor()
    perturbed = extractor.restricted(load_model().features)

    def timed(count):
        def run():
            wall, cpu = time.perf_counter(), time.process_time()
            rows = extract_lesions(image, lesions, extractor, {}, perturbations=count, perturbation_extractor=perturbed)
            assert not any(row["error"] for row in rows)
            return time.perf_counter() - wall, time.process_time() - cpu
        return run

    timed(10)()  # warm up (imports, caches)
    report("chest CT in memory, engine, 10 lesions:", medians(runs, {
        "no perturbations": timed(0), "10 perturbed delineations each": timed(10)}), "no perturbations")
    print(f"  shared grid against each mask on its own grid: largest relative difference "
          f"{per_mask_difference(image, lesions, perturbed, 10):.2g} over the signature's features")


def per_mask_difference(image, lesions, extractor, count):
    """Largest relative difference between the perturbed features on the shared grid and those of each perturbed
    mask resampled onto its own grid (the definition before the shared grid); inf when their failures differ."""
    from CTTimeLib.core.errors import CTTimeError
    from CTTimeLib.scoring import robustness

    largest = 0.0
    for lesion in lesions:
        shared = robustness.perturbed_features(image, lesion.mask, lesion.lesion_id, extractor, count)
        perturbations = robustness.Perturbations(image, lesion.mask)
        for index, found in enumerate(shared):
            try:
                own = extractor.features(extractor.prepare(image, perturbations.mask(index), "own grid"))
            except CTTimeError:
                own = {"error": True}
            if ("error" in own) != ("error" in found):
                return float("inf")
            for name, value in own.items():
                if name != "error":
                    largest = max(largest, abs(found[name] - value) / max(abs(value), 1e-300))
    return largest


def sarcomas(data, runs, count=12):
    studies = sorted(p for p in Path(data).iterdir() if (p / "CT_image.nii.gz").is_file())[:count]
    with tempfile.TemporaryDirectory() as out:
        manifest = Path(out) / "manifest.csv"
        manifest.write_text("patient_id,timepoint,image,segmentation\n" + "".join(
            f"{p.name},BS,{p / 'CT_image.nii.gz'},{p / 'CT_mask.nii.gz'}\n" for p in studies))

        def cohort(features):
            return lambda: cttime("cohort", str(manifest), "--standardize", "cohort", "--features", features,
                                  "--workers", "1", "--no-cache", "--quiet", "--out", str(Path(out) / features))
        report(f"{len(studies)} sarcomas, `cttime cohort --workers 1 --no-cache`, defaults:", medians(runs, {
            "--features all (pyradiomics, no perturbations)": cohort("all"),
            "--features signature (engine, 3 perturbations)": cohort("signature")}),
            "--features all (pyradiomics, no perturbations)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "cttime-bench")
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "sts-ct"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parts", nargs="+", default=["startup", "chest", "inprocess", "sarcomas"],
                        choices=["startup", "chest", "inprocess", "sarcomas"])
    parser.add_argument("--library", type=Path, default=LIBRARY,
                        help="the CTTime folder whose `cttime` start-up is timed (e.g. an older checkout's)")
    args = parser.parse_args(argv)
    ENV["PYTHONPATH"] = str(args.library)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    if "startup" in args.parts:
        startup(args.runs)
    if "chest" in args.parts:
        chest(args.cache, args.runs)
    if "inprocess" in args.parts:
        in_process(args.cache, args.runs)
    if "sarcomas" in args.parts:
        sarcomas(args.data, args.runs)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
