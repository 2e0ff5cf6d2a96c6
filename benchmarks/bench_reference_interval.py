"""Benchmark: how much the reference decides the score, on the 36 sarcomas (docs/method.md, worked example).

    .venv/bin/python benchmarks/bench_reference_interval.py [--orders 20] [--features signature|all]

The 36 sts-ct sarcomas are extracted once (CTTime's engine by default, equal to pyradiomics on these lesions).
References of 10, 20 and 36 lesions are built from them (the first n of a random order; ``--orders`` orders, seeded
0, 1, ...; the 36-lesion reference is the same in every order) and all 36 lesions are scored against each:
the median width of the standardisation interval (``ct_time_score_ref_high - ct_time_score_ref_low``) and how many
statuses are uncertain (the interval crosses 0.5), as the median and range over the orders. Also printed: how
many of the 36 lesions lie outside each reference (|z| > 3 on a signature feature), the Monte Carlo error (the
36-lesion reference's intervals drawn with 10 other seeds) and how long scoring the 36 lesions takes.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "CTTime"))
SHARED_STS = REPO.parent / "shared" / "data" / "sts-ct"
SIZES = (10, 20, 36)


def sarcoma_rows(feature_set):
    """Raw rows of the 36 sarcomas, one lesion each."""
    from CTTimeLib.run import pipeline, study
    from CTTimeLib.scoring.extractors import make_extractor

    extractor, _ = make_extractor(feature_set)
    rows = []
    for folder in sorted(p for p in SHARED_STS.iterdir() if (p / "CT_mask.nii.gz").exists()):
        case = pipeline.Case(folder.name, "BS", str(folder / "CT_image.nii.gz"), str(folder / "CT_mask.nii.gz"))
        rows += study.extract_case(case, extractor)
    table = pd.DataFrame(rows)
    failed = table[table["error"] != ""]
    if len(failed):
        raise SystemExit(f"{len(failed)} sarcoma(s) failed: {failed['error'].tolist()}")
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20, help="random orders of the lesions (default 20)")
    parser.add_argument("--features", default="signature", choices=("signature", "all"))
    args = parser.parse_args(argv)
    if not SHARED_STS.is_dir():
        raise SystemExit(f"needs the 36 sarcoma CTs of {SHARED_STS}")
    from CTTimeLib.scoring import lesion_scores, reference_interval, standardization
    from CTTimeLib.scoring.signature import load_model

    model = load_model()
    start = time.perf_counter()
    table = sarcoma_rows(args.features)
    print(f"{len(table)} sarcomas extracted ({args.features} features) in {time.perf_counter() - start:.1f} s")
    found = {n: {"width": [], "uncertain": [], "outside": []} for n in SIZES}
    for order in range(args.orders):
        chosen = np.random.default_rng(order).permutation(len(table))
        for n in SIZES:
            reference = standardization.build(table.iloc[chosen[:n]], model.features, f"{n} sarcomas", model.name,
                                              "bench")
            scored = lesion_scores.score_table(table, model, reference)
            width = scored["ct_time_score_ref_high"] - scored["ct_time_score_ref_low"]
            found[n]["width"].append(float(width.median()))
            found[n]["uncertain"].append(int((~scored["ct_time_status_reference_robust"].astype(bool)).sum()))
            found[n]["outside"].append(int(scored["outside_reference"].astype(bool).sum()))
    print(f"{'reference':>10} {'median width':>22} {'uncertain statuses':>22} {'lesions outside':>18}")
    for n in SIZES:
        widths, uncertain, outside = (found[n][k] for k in ("width", "uncertain", "outside"))
        print(f"{n:>4} lesions {statistics.median(widths):>9.3f} ({min(widths):.3f}-{max(widths):.3f})"
              f" {statistics.median(uncertain):>9g} of 36 ({min(uncertain)}-{max(uncertain)})"
              f" {statistics.median(outside):>9g} ({min(outside)}-{max(outside)})")
    reference = standardization.build(table, model.features, "36 sarcomas", model.name, "bench")
    widths, uncertain = [], []  # Monte Carlo error: the 36-lesion reference drawn with other seeds
    own = lesion_scores.score_table(table, model, reference)["ct_time_score"].to_numpy()
    for seed in range(10):
        drawn = reference_interval.draw_scores(table, reference, model, seed=seed)
        low, high = (np.array(v) for v in zip(*(reference_interval.interval(d) for d in drawn.values())))
        widths.append(float(np.median(high - low)))
        uncertain.append(int(sum(not reference_interval.robust(s, lo, hi, model.threshold)
                                 for s, lo, hi in zip(own, low, high))))
    print(f"Monte Carlo error ({reference_interval.DRAWS} draws), 36-lesion reference, 10 other seeds: median width "
          f"{min(widths):.3f}-{max(widths):.3f}, uncertain statuses {min(uncertain)}-{max(uncertain)}")
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        lesion_scores.score_table(table, model, reference)
        timings.append(time.perf_counter() - start)
    print(f"score_table of the 36 lesions with the interval: {min(timings) * 1000:.0f} ms (best of 5)")


if __name__ == "__main__":
    main()
