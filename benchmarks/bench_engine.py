"""CTTime's engine side by side with pyradiomics (and flash-radiomics): the 10-lesion chest CT and the 36 sarcomas.

    .venv/bin/python benchmarks/bench_engine.py [--datasets chest sts] [--cache DIR] [--data ../shared/data/sts-ct]

For each data set, in one run, each method in a fresh process (its peak resident memory is that process's own):

    pyradiomics loop, all           RadiomicsFeatureExtractor.execute per lesion, CTTime's parameter file (107)
    pyradiomics loop, signature     the same loop with only the four signature features enabled
    flash-radiomics loop, all / signature   the same loops with flash-radiomics 1.0 (optional: install it with
                                    `pip install flash-radiomics==1.0 h5py`; skipped with a message when missing)
    cttime --features all           pyradiomics through CTTime (per-lesion crop resampling, two lesions prepared ahead)
    cttime --features signature     CTTime's engine

"in process" times the extraction alone with the CTs already in memory (as in Slicer); "end to end" is the wall
time of the whole process: interpreter start, imports, reading, extraction and, for cttime, scoring and every
output (`cttime score` for the chest CT, `cttime cohort --workers 1` for the sarcomas). Each engine run is checked
against pyradiomics: the largest relative difference over the four signature features is printed. Targets (issue
#12): chest in process < 0.4 s; `--features signature` end to end >= 25x faster than the pyradiomics loop (chest);
sarcoma cohort with one worker >= 4x faster than `--features all`; faster than flash-radiomics on both. The
machine's load moves every figure: run it twice.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIBRARY = HERE.parent / "CTTime"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(LIBRARY))

SIGNATURE = {"shape": ["Elongation"], "firstorder": ["90Percentile"], "glcm": ["MaximumProbability"],
             "glszm": ["SizeZoneNonUniformity"]}

CHILD = r"""
import io, json, contextlib, logging, sys, time
sys.path.insert(0, {library!r})
method, dataset = {method!r}, {dataset!r}
started = time.perf_counter()
from CTTimeLib.core.geometry import whole_mask
from CTTimeLib.core.resources import PARAMETER_FILE
from CTTimeLib.io.images import read_image
from CTTimeLib.io.segmentations import read_lesions
studies = [(image, read_lesions(segmentation, image)) for image, segmentation in
           ((read_image(i), s) for i, s in dataset)]
rows = []
if method in ("engine", "pyradiomics-path"):
    from CTTimeLib.run.study import extract_lesions
    from CTTimeLib.scoring.extractors import extractor_for
    extractor = extractor_for("signature" if method == "engine" else "all")
    clock = time.perf_counter()
    for image, lesions in studies:
        rows += extract_lesions(image, lesions, extractor, {{}})
else:
    tool, features = method.split(":")
    module = __import__("radiomics.featureextractor" if tool == "pyradiomics" else "flash_radiomics.featureextractor",
                        fromlist=["RadiomicsFeatureExtractor"])
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    logging.getLogger("flash_radiomics").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        extractor = module.RadiomicsFeatureExtractor(str(PARAMETER_FILE))
    if features == "signature":
        extractor.disableAllFeatures()
        extractor.enableFeaturesByName(**{signature!r})
    clock = time.perf_counter()
    for image, lesions in studies:
        for lesion in lesions:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                result = extractor.execute(image, whole_mask(lesion.mask, image), label=1)
            rows.append({{k: float(v) for k, v in result.items() if k.startswith("original_")}})
seconds = time.perf_counter() - clock
peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
keep = ("original_shape_Elongation", "original_firstorder_90Percentile", "original_glcm_MaximumProbability",
        "original_glszm_SizeZoneNonUniformity")
print(json.dumps({{"seconds": seconds, "peak_mb": peak, "lesions": len(rows),
                  "signature": [[row.get(k) for k in keep] for row in rows]}}))
"""

CLI = r"""
import sys
sys.path.insert(0, {library!r})
from CTTimeLib.cli.commands import main
code = main({argv!r})
peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
print("PEAK_MB", peak, file=sys.stderr)
sys.exit(code)
"""


def chest(cache):
    """The 512 x 512 x 61 lung CT with ten lesions (benchmarks/bench_multilesion.py fetches and builds it)."""
    import SimpleITK as sitk

    import bench_multilesion

    image, label = bench_multilesion.lung_data(cache, "lung2")
    labelmap = cache / "lung2_10lesions.nrrd"
    if not labelmap.exists():
        sitk.WriteImage(bench_multilesion.ten_lesions(sitk.ReadImage(str(image)), sitk.ReadImage(str(label))),
                        str(labelmap), True)
    return [(str(image), str(labelmap))]


def sarcomas(folder):
    return [(str(p / "CT_image.nii.gz"), str(p / "CT_mask.nii.gz")) for p in sorted(Path(folder).iterdir())
            if (p / "CT_image.nii.gz").is_file()]


def in_child(method, dataset):
    """Run one method in a fresh process, in a temporary folder (flash-radiomics writes HDF5 files into the working
    folder): (its figures, the process's wall time)."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run([sys.executable, "-c", CHILD.format(library=str(LIBRARY), method=method,
                                                                 dataset=dataset, signature=SIGNATURE)],
                              capture_output=True, text=True, cwd=folder)
    wall = time.perf_counter() - start
    if done.returncode:
        return None, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
    return dict(json.loads(done.stdout.strip().splitlines()[-1]), wall=wall), None


def cttime(dataset, features, folder):
    """`cttime score` (one study) or `cttime cohort --workers 1` end to end: (seconds, peak MB). No robustness
    intervals (``--perturbations 0``; on by default with the engine), so both paths compute what the loops do."""
    out = str(Path(folder) / features)
    if len(dataset) == 1:
        argv = ["score", "--image", dataset[0][0], "--segmentation", dataset[0][1], "--patient", "P",
                "--standardize", "cohort", "--features", features, "--perturbations", "0", "--out", out]
    else:
        manifest = Path(folder) / "manifest.csv"
        manifest.write_text("patient_id,timepoint,image,segmentation\n" + "".join(
            f"P{n:03d},BS,{image},{mask}\n" for n, (image, mask) in enumerate(dataset)))
        argv = ["cohort", str(manifest), "--standardize", "cohort", "--features", features, "--workers", "1",
                "--perturbations", "0", "--quiet", "--out", out]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CLI.format(library=str(LIBRARY), argv=argv)], capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 3):
        raise SystemExit(f"cttime {' '.join(argv)} failed: {done.stderr}")
    peak = float(next(line.split()[1] for line in done.stderr.splitlines() if line.startswith("PEAK_MB")))
    return seconds, peak


def largest_difference(rows, reference):
    worst = 0.0
    for row, expected in zip(rows, reference):
        for a, b in zip(row, expected):
            if a is not None and b is not None and a != b:
                worst = max(worst, abs(a - b) / max(abs(a), abs(b)))
    return worst


def bench(name, dataset):
    print(f"\n== {name}: {len(dataset)} CT(s)")
    figures = {}
    methods = [("pyradiomics:all", "pyradiomics loop, all 107"),
               ("pyradiomics:signature", "pyradiomics loop, signature"),
               ("flash:all", "flash-radiomics loop, all"), ("flash:signature", "flash-radiomics loop, signature"),
               ("pyradiomics-path", "cttime --features all"), ("engine", "cttime --features signature")]
    for method, title in methods:
        result, error = in_child(method, dataset)
        if error is not None:
            print(f"  {title:32s} skipped: {error}")
            continue
        figures[method] = result
    reference = figures["pyradiomics:all"]["signature"]
    with tempfile.TemporaryDirectory() as folder:
        ends = {features: cttime(dataset, features, folder) for features in ("all", "signature")}
    engine, loop = figures["engine"], figures["pyradiomics:all"]
    print(f"  {'method':32s} {'in process':>11s} {'end to end':>11s} {'peak MB':>8s}  max rel. diff of the signature"
          f" vs pyradiomics ({engine['lesions']} lesions)")
    for method, title in methods:
        if method not in figures:
            continue
        result = figures[method]
        end, peak = result["wall"], result["peak_mb"]
        if method in ("pyradiomics-path", "engine"):
            end, peak = ends["signature" if method == "engine" else "all"]
        print(f"  {title:32s} {result['seconds']:10.2f}s {end:10.2f}s {peak:8.0f}  "
              f"{largest_difference(result['signature'], reference):.2g}")
    signature_end, all_end = ends["signature"][0], ends["all"][0]
    print(f"  engine in process: {engine['seconds']:.2f} s for {engine['lesions']} lesions "
          f"({1000 * engine['seconds'] / engine['lesions']:.0f} ms a lesion, resampling included)")
    print(f"  end to end, --features signature vs the pyradiomics loop: {loop['wall'] / signature_end:.1f}x; "
          f"vs the signature-only loop: {figures['pyradiomics:signature']['wall'] / signature_end:.1f}x; "
          f"vs --features all: {all_end / signature_end:.1f}x")
    for method in ("flash:all", "flash:signature"):
        if method in figures:
            print(f"  vs {method.replace('flash', 'flash-radiomics')}: in process "
                  f"{figures[method]['seconds'] / engine['seconds']:.1f}x, end to end "
                  f"{figures[method]['wall'] / signature_end:.1f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=("chest", "sts"), default=["chest", "sts"])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "cttime-bench",
                        help="folder of the lung CT (default ~/.cache/cttime-bench; fetched once with pip download)")
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "sts-ct",
                        help="the sarcoma cohort (default ../shared/data/sts-ct)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU(s); load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if "chest" in args.datasets:
        bench("chest CT, 512 x 512 x 61, 10 lesions", chest(args.cache))
    if "sts" in args.datasets:
        if not args.data.is_dir():
            print(f"\n== sarcomas skipped: {args.data} not found")
        else:
            bench("sarcomas", sarcomas(args.data))


if __name__ == "__main__":
    main()
