"""Benchmark: one full-size CT with 10 lesions, `cttime score` end to end vs a per-lesion pyradiomics loop.

    .venv/bin/python benchmarks/bench_multilesion.py [--cache DIR] [--runs 3] [--cohort-sizes 1 5 20]
                                                     [--voxel-margins 24 32 40 48]

Data: ``lung2_image.nrrd`` (512 x 512 x 61 chest CT, int16; ``--case lung1``: 512 x 512 x 48, float) and its label
from the pyradiomics 3.0.1 source distribution. The script finds them in the cache folder, or fetches the sdist
once with ``pip download`` (the package index is the only network it uses) and keeps only those two files. Ten
lesions: the labelled lung tumour plus nine spheres (5-10 mm radius) placed deterministically in soft tissue,
written as one labelmap.

Part 1 times, side by side in one run: (a) a loop calling pyradiomics' ``RadiomicsFeatureExtractor.execute`` once
per lesion with CTTime's parameter file (in this process: image reading included, interpreter start not - which
favours the loop); (b) ``cttime score`` as a subprocess (interpreter start, reading, all outputs included), the
median of ``--runs`` runs. It prints the times, the speed-up and the largest relative difference over the 107
features x 10 lesions. ``--voxel-margins`` also counts, for this study's lesions and every sts-ct case, the
resampled voxels that differ from pyradiomics' whole-image resampling at each crop margin.

Part 2 runs ``pipeline.run`` sequentially (cache off) over N copies of the 10-lesion study, each N in a fresh
process, and prints that process's peak resident memory: it should not grow with the number of lesions (10 to
200 by default). Timings on a shared machine are noisy; run it twice.
"""

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "CTTime"))

SDIST = "pyradiomics==3.0.1"
CASES = ("lung2", "lung1")  # lung2: the 512 x 512 x 61 chest CT of the issue; lung1: 512 x 512 x 48
N_LESIONS = 10
SHARED_STS = REPO.parent / "shared" / "data" / "sts-ct"


def lung_data(cache, case):
    """Paths of a lung case's image and label, fetched into ``cache`` by ``pip download`` when missing."""
    cache.mkdir(parents=True, exist_ok=True)
    data_files = (f"{case}_image.nrrd", f"{case}_label.nrrd")
    paths = [cache / name for name in data_files]
    if all(path.exists() for path in paths):
        return paths
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "--no-build-isolation", "--quiet", SDIST, "-d", tmp], check=True)
        (archive,) = Path(tmp).glob("pyradiomics-*.tar.gz")
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and name in data_files and Path(member.name).parent.name == "data":
                    (cache / name).write_bytes(tar.extractfile(member).read())
    return paths


def ten_lesions(image, tumour):
    """A labelmap: label 1 the tumour, labels 2-10 spheres in soft tissue, apart from each other and the tumour."""
    values = sitk.GetArrayFromImage(sitk.Median(image, [2, 2, 1]))
    spacing = np.array(image.GetSpacing())[::-1]  # z, y, x
    labels = (sitk.GetArrayFromImage(tumour) != 0).astype(np.uint8)
    zz, yy, xx = np.indices(values.shape, sparse=True)
    rng = np.random.default_rng(7)
    soft = np.argwhere((values > 0) & (values < 100))
    placed = [np.argwhere(labels).mean(axis=0) * spacing]
    for candidate in rng.permutation(len(soft)):
        if labels.max() == N_LESIONS:
            break
        centre = soft[candidate]
        radius = 5.0 + 5.0 * rng.random()
        if min(np.linalg.norm(centre * spacing - p) for p in placed) < 2 * radius + 25:
            continue
        ball = (((zz - centre[0]) * spacing[0]) ** 2 + ((yy - centre[1]) * spacing[1]) ** 2
                + ((xx - centre[2]) * spacing[2]) ** 2) <= radius ** 2
        inside = values[ball]
        if inside.size < 50 or np.mean((inside > -100) & (inside < 300)) < 0.95:
            continue  # keep lesions soft tissue, as CT-TIME's lesions are
        labels[ball & (labels == 0)] = labels.max() + 1
        placed.append(centre * spacing)
    labelmap = sitk.GetImageFromArray(labels)
    labelmap.CopyInformation(image)
    return labelmap


def pyradiomics_loop(image_path, labelmap_path):
    """Features of every label, one ``execute`` per lesion on the whole image (as per-segment tools do)."""
    import logging

    import radiomics
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    from CTTimeLib.core.resources import PARAMETER_FILE

    radiomics.setVerbosity(logging.ERROR)
    start = time.perf_counter()
    extractor = RadiomicsFeatureExtractor(str(PARAMETER_FILE))
    image, labelmap = sitk.ReadImage(str(image_path)), sitk.ReadImage(str(labelmap_path))
    labels = sitk.GetArrayViewFromImage(labelmap)
    rows = {}
    for label in range(1, N_LESIONS + 1):
        mask = sitk.GetImageFromArray((labels == label).astype(np.uint8))
        mask.CopyInformation(image)
        rows[f"lesion_{label}"] = extractor.execute(image, mask, label=1)
    return time.perf_counter() - start, rows


def extraction_layer(image_path, labelmap_path):
    """CTTime's extraction layer alone, in this process: read the study, extract every lesion."""
    from CTTimeLib.scoring.extraction import FeatureExtractor
    from CTTimeLib.io.images import read_image
    from CTTimeLib.io.segmentations import read_lesions
    from CTTimeLib.run.study import extract_lesions

    start = time.perf_counter()
    extractor = FeatureExtractor()
    image = read_image(image_path)
    rows = extract_lesions(image, read_lesions(labelmap_path, image), extractor, {})
    return time.perf_counter() - start, pd.DataFrame(rows)


def cttime_score(image_path, labelmap_path, *extra):
    """`cttime score` on the study as a subprocess, timed from process start until it has exited."""
    cttime = Path(sys.executable).with_name("cttime")
    command = [str(cttime)] if cttime.exists() else [sys.executable, "-c",
                                                     "from CTTimeLib.cli import console; console()"]
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run(command + ["score", "--image", str(image_path), "--segmentation", str(labelmap_path),
                                  "--patient", "LUNG1", "--standardize", "cohort", "--out", out, *extra],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        table = pd.read_csv(Path(out) / "lesions.csv", dtype={"lesion_id": str})
    failed = table["error"].fillna("").astype(str) != ""
    if failed.any():
        raise SystemExit(f"cttime score failed on lesions {', '.join(table.loc[failed, 'lesion_id'])}")
    return seconds, table


def max_relative_difference(loop_rows, table, feature_names):
    """The largest relative difference between a table's features and the loop's, over lesions and features."""
    worst = 0.0
    for row in table.to_dict("records"):
        reference = loop_rows[row["lesion_id"]]
        for name in feature_names:
            a, b = float(row[name]), float(reference[name])
            if a != b:
                worst = max(worst, abs(a - b) / max(abs(a), abs(b)))
    return worst


def median_of(runs, function, *args):
    """``function(*args)`` ``runs`` times: the median seconds, all seconds, and the last result's table."""
    results = [function(*args) for _ in range(runs)]
    seconds = sorted(result[0] for result in results)
    return seconds[len(seconds) // 2], seconds, results[-1][1]


def resampled_voxels(margins, image_path, labelmap_path):
    """How many voxels of CTTime's crop-and-resample differ from pyradiomics' own whole-image resampling at each
    crop margin (voxels), and by how much at most: {data set: {margin: [voxels, differing, largest]}} for the
    lesions of this benchmark's study and for every sts-ct case."""
    from CTTimeLib.core.geometry import whole_mask
    from CTTimeLib.io.images import read_image
    from CTTimeLib.io.segmentations import read_lesions

    image = read_image(image_path)
    studies = {"this study": [(image, whole_mask(lesion.mask, image)) for lesion in read_lesions(labelmap_path, image)]}
    studies[SHARED_STS.name] = []
    for folder in sorted(p for p in SHARED_STS.iterdir() if (p / "CT_image.nii.gz").exists()):
        ct = read_image(folder / "CT_image.nii.gz")
        mask = sitk.Cast(sitk.ReadImage(str(folder / "CT_mask.nii.gz")) > 0, sitk.sitkUInt8)
        mask.CopyInformation(ct)
        studies[SHARED_STS.name].append((ct, mask))
    return {name: _voxel_differences(lesions, margins) for name, lesions in studies.items()}


def _voxel_differences(lesions, margins):
    from radiomics import imageoperations

    from CTTimeLib.scoring import resampling

    totals = {margin: [0, 0, 0.0] for margin in margins}
    for image, mask in lesions:
        expected, _ = imageoperations.resampleImage(image, sitk.Cast(mask, sitk.sitkUInt32), interpolator="sitkBSpline",
                                                    resampledPixelSpacing=[1, 1, 1], padDistance=5)
        expected = sitk.GetArrayFromImage(expected).astype(float)
        grid = resampling.resampling_grid(image, resampling.label_bounding_box(mask), [1, 1, 1], 5)
        for margin in margins:
            resampled, _ = resampling.resample_lesion(image, mask, grid, sitk.sitkBSpline, margin)
            difference = np.abs(sitk.GetArrayFromImage(resampled).astype(float) - expected)
            totals[margin][0] += difference.size
            totals[margin][1] += int(np.count_nonzero(difference))
            totals[margin][2] = max(totals[margin][2], float(difference.max()))
    return totals


MEMORY_CHILD = """
import json, resource, sys, tempfile
sys.path.insert(0, {lib!r})
from CTTimeLib.run import pipeline
cases = [pipeline.Case(f"P{{n:03d}}", "BS", {image!r}, {labelmap!r}) for n in range({n})]
with tempfile.TemporaryDirectory() as out:
    result = pipeline.run(cases, out, pipeline.Options(cache=False))
try:  # this process's own peak (ru_maxrss would include the benchmark's pages it was forked from)
    peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"cases": len(cases), "lesions": len(result.lesions), "peak_rss_mb": peak}}))
"""


def cohort_memory(n, image_path, labelmap_path):
    """Peak resident memory of ``pipeline.run`` over ``n`` copies of the study (cache off), in a fresh process."""
    start = time.perf_counter()
    output = subprocess.run([sys.executable, "-c", MEMORY_CHILD.format(
        lib=str(REPO / "CTTime"), image=str(image_path), labelmap=str(labelmap_path), n=n)],
        check=True, capture_output=True, text=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    figures["seconds"] = time.perf_counter() - start
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "cttime-bench",
                        help="folder for the lung data (default ~/.cache/cttime-bench)")
    parser.add_argument("--case", choices=CASES, default=CASES[0],
                        help="chest CT of the pyradiomics source distribution (default lung2, 512 x 512 x 61)")
    parser.add_argument("--cohort-sizes", type=int, nargs="*", default=[1, 5, 20],
                        help="numbers of copies of the study for the memory check (none: skip it)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each CTTime timing; the median is shown")
    parser.add_argument("--voxel-margins", type=int, nargs="*", default=[],
                        help="also compare resampled voxels with pyradiomics' on every sts-ct case at these crop "
                             "margins (e.g. 32 40 48; ~1 min per margin)")
    args = parser.parse_args()

    from CTTimeLib.scoring.extraction import FeatureExtractor

    image_path, label_path = lung_data(args.cache, args.case)
    labelmap_path = args.cache / f"{args.case}_10lesions.nrrd"
    if not labelmap_path.exists():
        sitk.WriteImage(ten_lesions(sitk.ReadImage(str(image_path)), sitk.ReadImage(str(label_path))),
                        str(labelmap_path), True)
    image = sitk.ReadImage(str(image_path))
    voxels = np.bincount(sitk.GetArrayFromImage(sitk.ReadImage(str(labelmap_path))).ravel())[1:]
    print(f"CT {image.GetSize()} voxels of {image.GetSpacing()} mm; {len(voxels)} lesions of "
          f"{voxels.min()}-{voxels.max()} voxels")

    names = FeatureExtractor().feature_names
    loop_seconds, loop_rows = pyradiomics_loop(image_path, labelmap_path)
    print(f"pyradiomics loop, execute per lesion (in process, reading included): {loop_seconds:6.1f} s")
    print(f"CTTime (median of {args.runs} runs):")
    runs = [("CTTime extraction layer (in process, reading included)", extraction_layer, ()),
            ("cttime score (subprocess, end to end)", cttime_score, ()),
            ("cttime score --no-segmentation (subprocess, end to end)", cttime_score, ("--no-segmentation",))]
    for title, function, extra in runs:
        seconds, every, table = median_of(args.runs, function, image_path, labelmap_path, *extra)
        print(f"  {title + ':':67} {seconds:5.2f} s ({' '.join(f'{s:.2f}' for s in every)})  speed-up "
              f"{loop_seconds / seconds:5.1f}x  max relative difference over {len(names)} features x {len(table)} "
              f"lesions: {max_relative_difference(loop_rows, table, names):.2g}")

    if args.voxel_margins:
        print("Resampled voxels vs pyradiomics' whole-image resampling:")
        for study, totals in resampled_voxels(args.voxel_margins, image_path, labelmap_path).items():
            for margin, (voxels, differing, largest) in totals.items():
                print(f"  {study}, crop margin {margin:2d} voxels: {differing} of {voxels} voxels differ, by at most "
                      f"{largest:.2g}")

    for n in args.cohort_sizes:
        figures = cohort_memory(n, image_path, labelmap_path)
        print(f"cohort run, {figures['cases']:2d} cases ({figures['lesions']} lesions): peak RSS "
              f"{figures['peak_rss_mb']:.0f} MB, {figures['seconds']:.0f} s")


if __name__ == "__main__":
    main()
