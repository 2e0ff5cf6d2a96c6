"""Benchmark: lesion masks proposed from RECIST lines against the manual masks, beside the issue's baseline.

    .venv/bin/python benchmarks/bench_delineation.py [--jitter 2] [--seed 0] [--chest] [--cache DIR]

Data: the 36 sts-ct sarcomas (../shared/data/sts-ct). Each lesion's line is derived from its manual mask
(``delineation.marks_from_mask``: on the axial slice where its in-plane diameter is largest, the two boundary
points farthest apart; the short axis is the longest chord within 5 degrees of perpendicular). Rows:

- baseline: the issue's 40-line method (intensity window of +-60 HU from the line's centre, a sphere of 0.55 x
  the line's length around its centre, one binary opening, the connected part under the line's middle);
- proposed (line): ``delineation.propose`` from the long axis alone;
- proposed (line + short axis): from both axes;
- proposed (line, jittered): the long axis with each end moved ``--jitter`` mm in a random in-plane direction
  (``--seed``).

Per row: median and IQR of Dice and of the volume ratio (proposed / manual), the median |CT-TIME score
difference| and the share of lesions whose status (inflamed or not) equals the manual mask's, both scored
in-process with CTTime's engine and the stored demo reference (so a lesion's score does not depend on the
others), the share of proposals flagged, and the median and largest seconds per lesion (the proposal alone).
``--chest`` adds the two chest CTs of pyradiomics' test data (lung1, lung2; fetched once as in
bench_multilesion.py) as a second table. Timings on a shared machine are noisy: compare rows of one run.
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "CTTime"))
sys.path.insert(0, str(REPO / "benchmarks"))

from CTTimeLib.core.geometry import lesion_mask, on_image_grid, whole_mask  # noqa: E402
from CTTimeLib.core.lesions import Lesion  # noqa: E402
from CTTimeLib.core.resources import DEMO_REFERENCE  # noqa: E402
from CTTimeLib.delineation import marks_from_mask, propose  # noqa: E402
from CTTimeLib.delineation.lines import jittered, line_on_grid  # noqa: E402
from CTTimeLib.io.images import read_image  # noqa: E402
from CTTimeLib.run.study import extract_lesions  # noqa: E402
from CTTimeLib.scoring.engine import EngineExtractor  # noqa: E402
from CTTimeLib.scoring.lesion_scores import resolve_standardization, score_table  # noqa: E402
from CTTimeLib.scoring.signature import load_model  # noqa: E402

SHARED_STS = REPO.parent / "shared" / "data" / "sts-ct"
METHODS = ("baseline", "proposed (line)", "proposed (line + short axis)", "proposed (line, jittered)")


def baseline(image, mark):
    """The issue's baseline: a +-60 HU window around the value at the line's centre, within a sphere of 0.55 x
    the line's length, opened once, the connected part under the line's middle. A lesion mask."""
    line = line_on_grid(image, mark)
    values = sitk.GetArrayViewFromImage(image)
    radius = 0.55 * line.length_mm
    half = np.ceil(radius / line.spacing).astype(int) + 1
    low = np.maximum(np.round(line.centre).astype(int) - half, 0)
    high = np.minimum(np.round(line.centre).astype(int) + half + 1, values.shape)
    crop = values[tuple(slice(a, b) for a, b in zip(low, high))].astype(float)
    grid = np.ogrid[tuple(slice(a, b) for a, b in zip(low, high))]
    sphere = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, line.centre, line.spacing)) <= radius ** 2
    centre = tuple(np.clip(np.round(line.centre).astype(int) - low, 0, np.array(crop.shape) - 1))
    window = np.abs(crop - crop[centre]) <= 60
    labels, _ = ndimage.label(ndimage.binary_opening(sphere & window))
    points = np.round(line.samples(0.3, 0.7) - low).astype(int)
    points = points[np.all((points >= 0) & (points < crop.shape), axis=1)]
    touched = labels[tuple(points.T)]
    touched = touched[touched > 0]
    kept = labels == np.bincount(touched).argmax() if touched.size else np.zeros(crop.shape, bool)
    return lesion_mask(kept.astype(np.uint8), image, [int(v) for v in low[::-1]])


def dice(a, b):
    total = a.sum() + b.sum()
    return 2.0 * np.logical_and(a, b).sum() / total if total else 1.0


def sarcoma_cases():
    folders = sorted(p for p in SHARED_STS.glob("STS_*") if (p / "CT_image.nii.gz").exists())
    if not folders:
        raise SystemExit(f"No sarcoma CTs in {SHARED_STS}: this benchmark needs ../shared beside the repository.")
    return [(p.name, p / "CT_image.nii.gz", p / "CT_mask.nii.gz") for p in folders]


def chest_cases(cache):
    from bench_multilesion import lung_data

    return [(case, *lung_data(cache, case)) for case in ("lung1", "lung2")]


def evaluate(cases, jitter, seed):
    """One row per lesion and method: Dice, volume ratio, seconds, flagged; and the lesions to score."""
    rng = np.random.default_rng(seed)
    rows, lesions = [], []
    for name, image_path, mask_path in cases:
        image = read_image(image_path)
        manual = on_image_grid(sitk.Cast(sitk.ReadImage(str(mask_path)) > 0, sitk.sitkUInt8), image)
        truth = sitk.GetArrayFromImage(whole_mask(manual, image)) > 0
        mark = marks_from_mask(manual, image, name)
        line_only = replace(mark, short_axis=None)
        marks = {"proposed (line)": line_only, "proposed (line + short axis)": mark,
                 "proposed (line, jittered)": jittered(mark, image, jitter, rng)}
        lesions.append((name, "manual", image, manual))
        for method in METHODS:
            start = time.perf_counter()
            if method == "baseline":
                mask, flagged = baseline(image, line_only), False
            else:
                proposal = propose(image, marks[method])
                mask, flagged = proposal.mask, bool(proposal.warnings)
            seconds = time.perf_counter() - start
            found = sitk.GetArrayFromImage(whole_mask(mask, image)) > 0
            rows.append({"lesion": name, "method": method, "dice": dice(truth, found),
                         "volume_ratio": found.sum() / truth.sum(), "seconds": seconds, "flagged": flagged})
            lesions.append((name, method, image, mask))
        print(f"  {name}: " + ", ".join(f"{r['dice']:.2f}" for r in rows[-len(METHODS):]), file=sys.stderr)
    return pd.DataFrame(rows), lesions


def scores(lesions):
    """CT-TIME score and status per (lesion, method), each mask scored alone with the stored demo reference."""
    model = load_model()
    reference = resolve_standardization(str(DEMO_REFERENCE), model)
    extractor = EngineExtractor()
    rows = []
    for name, method, image, mask in lesions:
        rows += extract_lesions(image, [Lesion(name, mask)], extractor, {"method": method})
    table = score_table(pd.DataFrame(rows), model, reference, features_by=extractor.features_by)
    return table.set_index(["lesion_id", "method"])[["ct_time_score", "ct_time_status"]]


def summary(frame, scored):
    manual = scored.xs("manual", level="method")
    lines = []
    for method in METHODS:
        part = frame[frame["method"] == method].set_index("lesion")
        mine = scored.xs(method, level="method").reindex(part.index)
        difference = (mine["ct_time_score"] - manual["ct_time_score"].reindex(part.index)).abs()
        same = (mine["ct_time_status"] == manual["ct_time_status"].reindex(part.index))
        q1, median, q3 = np.percentile(part["dice"], [25, 50, 75])
        v1, vm, v3 = np.percentile(part["volume_ratio"], [25, 50, 75])
        lines.append(f"| {method} | {median:.3f} ({q1:.3f}-{q3:.3f}) | {part['dice'].min():.3f} | "
                     f"{vm:.2f} ({v1:.2f}-{v3:.2f}) | {np.nanmedian(difference):.3f} | "
                     f"{int(same.sum())}/{len(same)} | {int(part['flagged'].sum())}/{len(part)} | "
                     f"{part['seconds'].median():.2f} / {part['seconds'].max():.2f} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jitter", type=float, default=2.0, help="mm each end of the jittered line moves")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chest", action="store_true", help="also the lung1 and lung2 chest CTs of pyradiomics")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "cttime-bench",
                        help="folder for the chest CTs (default ~/.cache/cttime-bench)")
    args = parser.parse_args()
    sets = [("36 sts-ct sarcomas", sarcoma_cases())]
    if args.chest:
        sets.append(("chest CTs lung1, lung2 (pyradiomics test data)", chest_cases(args.cache)))
    for title, cases in sets:
        frame, lesions = evaluate(cases, args.jitter, args.seed)
        scored = scores(lesions)
        print(f"\n{title}; jitter {args.jitter:g} mm, seed {args.seed}\n")
        print("| method | Dice median (IQR) | Dice min | volume ratio median (IQR) | median abs score difference "
              "| status as manual | flagged | s per lesion median / max |")
        print("|---|---|---|---|---|---|---|---|")
        print("\n".join(summary(frame, scored)))


if __name__ == "__main__":
    main()
