"""Benchmark: what the delineation-robustness intervals cost, and what they say on the 36 sarcomas.

    .venv/bin/python benchmarks/bench_robustness.py [--perturbations 10] [--cache DIR] [--out DIR]
                                                    [--workers 1] [--skip-cost] [--skip-cohort]

Part 1 (cost): the 10-lesion study of ``bench_multilesion.py`` (the pyradiomics lung2 CT, its tumour and nine
5-10 mm spheres). Per lesion: the perturbation generator (set-up once, then per perturbed mask) and the run's
extractor restricted to the signature's four features (``prepare`` + ``features`` per perturbed mask). Then
``pipeline.run`` on the study with 0 and with N perturbations (cache off, one process): the seconds the intervals
add to a 10-lesion patient. The generator's share is what remains once the extractor is fast.

Part 2 (what the intervals say): the 36 sts-ct sarcomas scored as one cohort (``--standardize cohort``) with N
perturbations: the share of lesions whose status is robust, the interval widths, the patients whose status
flips. The run folder (``--out``) keeps its cache, so a second run with the same or fewer perturbations reads
them back and a run with more computes only the missing ones.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "CTTime"))
sys.path.insert(0, str(REPO / "benchmarks"))
SHARED_STS = REPO.parent / "shared" / "data" / "sts-ct"


def cost(cache, perturbations):
    """Part 1: per-lesion and per-patient cost of N perturbed delineations on the 10-lesion study."""
    from bench_multilesion import lung_data, ten_lesions

    from CTTimeLib.io.images import read_image
    from CTTimeLib.io.segmentations import read_lesions
    from CTTimeLib.run import pipeline
    from CTTimeLib.scoring import robustness
    from CTTimeLib.scoring.extraction import FeatureExtractor
    from CTTimeLib.scoring.signature import load_model

    image_path, label_path = lung_data(cache, "lung2")
    labelmap_path = cache / "lung2_ten_lesions.nrrd"
    if not labelmap_path.exists():
        sitk.WriteImage(ten_lesions(sitk.ReadImage(str(image_path)), sitk.ReadImage(str(label_path))),
                        str(labelmap_path), True)
    image = read_image(image_path)
    lesions = read_lesions(labelmap_path, image)
    extractor = FeatureExtractor().restricted(load_model().features)
    print(f"Part 1: {len(lesions)}-lesion study {image_path.name} {image.GetSize()}, {perturbations} perturbations "
          f"per lesion, extractor {type(extractor).__name__} restricted to the 4 signature features")
    print(f"{'lesion':>10} {'voxels':>8} {'set-up ms':>10} {'mask ms':>8} {'prepare ms':>11} {'features ms':>12} "
          f"{'lesion s':>9}")
    totals = {"setup": 0.0, "masks": 0.0, "extraction": 0.0}
    for lesion in lesions:
        start = time.perf_counter()
        generator = robustness.Perturbations(image, lesion.mask)
        setup = time.perf_counter() - start
        start = time.perf_counter()
        masks = [generator.mask(index) for index in range(perturbations)]
        mask_seconds = time.perf_counter() - start
        prepare = features = 0.0
        for index, mask in enumerate(masks):
            start = time.perf_counter()
            prepared = extractor.prepare(image, mask, f"{lesion.lesion_id} p{index}")
            middle = time.perf_counter()
            extractor.features(prepared)
            prepare += middle - start
            features += time.perf_counter() - middle
        totals["setup"] += setup
        totals["masks"] += mask_seconds
        totals["extraction"] += prepare + features
        per_mask = mask_seconds / max(perturbations, 1)
        voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(lesion.mask)))
        print(f"{lesion.lesion_id:>10} {voxels:8d} {setup * 1e3:10.1f} {per_mask * 1e3:8.2f} "
              f"{prepare / perturbations * 1e3:11.1f} {features / perturbations * 1e3:12.1f} "
              f"{setup + mask_seconds + prepare + features:9.2f}")
    generator_seconds = totals["setup"] + totals["masks"]
    print(f"Generator per patient: {generator_seconds:.3f} s ({totals['setup']:.3f} set-up + {totals['masks']:.3f} "
          f"masks); extraction of the perturbed masks: {totals['extraction']:.2f} s")
    seconds = {}
    for count in (0, perturbations):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            pipeline.run([pipeline.Case("LUNG2", "BS", str(image_path), str(labelmap_path))], out,
                         pipeline.Options(perturbations=count, cache=False, write_segmentations=False))
            seconds[count] = time.perf_counter() - start
    print(f"pipeline.run of the 10-lesion patient: {seconds[0]:.2f} s without, {seconds[perturbations]:.2f} s with "
          f"{perturbations} perturbations: +{seconds[perturbations] - seconds[0]:.2f} s "
          f"(+{(seconds[perturbations] - seconds[0]) / len(lesions):.2f} s per lesion)")


def cohort(out, perturbations, workers):
    """Part 2: the sts-ct sarcomas as one cohort: how many statuses are robust, how wide the intervals are."""
    from CTTimeLib.run import pipeline

    folders = sorted(p for p in SHARED_STS.iterdir() if (p / "CT_image.nii.gz").exists())
    cases = [pipeline.Case(p.name, "BS", str(p / "CT_image.nii.gz"), str(p / "CT_mask.nii.gz")) for p in folders]
    start = time.perf_counter()
    result = pipeline.run(cases, out, pipeline.Options(perturbations=perturbations, workers=workers,
                                                       write_segmentations=False))
    seconds = time.perf_counter() - start
    lesions = result.lesions[result.lesions["error"] == ""]
    width = (lesions["ct_time_score_high"] - lesions["ct_time_score_low"]).astype(float)
    robust = lesions["ct_time_status_robust"].astype(bool)
    margin = (lesions["ct_time_score"].astype(float) - 0.5).abs()
    print(f"Part 2: {len(lesions)} sarcomas of {SHARED_STS} as one cohort (cohort z-scores), {perturbations} "
          f"perturbations each, {seconds:.0f} s ({result.summary.get('studies_from_cache', 0)} studies from the cache "
          f"in {out})")
    print(f"  status robust: {int(robust.sum())}/{len(lesions)} lesions ({robust.mean():.0%})")
    print(f"  interval width: median {width.median():.3f}, quartiles {width.quantile(0.25):.3f}-"
          f"{width.quantile(0.75):.3f}, max {width.max():.3f}")
    flipped = lesions[~robust].sort_values("ct_time_score")
    for row in flipped.itertuples():
        print(f"  uncertain: {row.patient_id} score {row.ct_time_score:.3f}, interval {row.ct_time_score_low:.3f}-"
              f"{row.ct_time_score_high:.3f}")
    if len(flipped):
        print(f"  the uncertain lesions lie {margin[~robust].min():.3f}-{margin[~robust].max():.3f} from 0.5; the "
              f"robust ones {margin[robust].min():.3f}-{margin[robust].max():.3f}")
    print(f"  median perturbed delineations scored per lesion: {statistics.median(lesions['ct_time_perturbations'])}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--perturbations", type=int, default=10)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "cttime-bench")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "cttime-bench-robustness")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--skip-cohort", action="store_true")
    args = parser.parse_args()
    if not args.skip_cost:
        cost(args.cache, args.perturbations)
    if not args.skip_cohort:
        cohort(args.out, args.perturbations, args.workers)


if __name__ == "__main__":
    main()
