"""A `cttime score --marks` run against the same run with the manual mask: wall time of each and their ratio.

    .venv/bin/python benchmarks/bench_marks_run.py [--cases STS_019 STS_025] [--repeats 3] [--features all]

Each sample case's RECIST line is derived from its mask (``delineation.marks_from_mask``) and written as a CSV;
then `cttime score` runs, alternating, with --segmentation (the mask) and with --marks (the lesion proposed from the
line), each in a fresh process and a fresh output folder (no cache), with the demo reference and the default
perturbations. Prints the median wall time of each and the ratio (target: at most 2.5). Figures depend on the
machine and on what else runs on it; the alternation keeps a busy machine's drift out of the ratio.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "CTTime"))

import SimpleITK as sitk  # noqa: E402

from CTTimeLib.core.resources import SAMPLE_DATA  # noqa: E402
from CTTimeLib.delineation import marks_from_mask  # noqa: E402


def write_marks(case, path):
    image = sitk.ReadImage(str(SAMPLE_DATA / case / "CT_image.nii.gz"))
    mark = marks_from_mask(sitk.ReadImage(str(SAMPLE_DATA / case / "CT_mask.nii.gz")), image, "tumour")
    path.write_text("lesion_id,x1,y1,z1,x2,y2,z2\ntumour," + ",".join(repr(v) for v in (*mark.start, *mark.end))
                    + "\n")
    return path


def timed(arguments):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "CTTimeLib.cli", "score", *arguments], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(HERE.parent / "CTTime")))
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 3):
        sys.exit(f"cttime score failed ({done.returncode}): {done.stderr}")
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["STS_019", "STS_025"], help="sample cases")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--features", default="all", choices=("all", "signature"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for case in args.cases:
            marks = write_marks(case, folder / f"{case}.csv")
            common = ["--image", str(SAMPLE_DATA / case / "CT_image.nii.gz"), "--patient", case, "--reference",
                      "demo", "--features", args.features]
            times = {"mask": [], "marks": []}
            for repeat in range(args.repeats):
                times["mask"].append(timed(common + ["--segmentation", str(SAMPLE_DATA / case / "CT_mask.nii.gz"),
                                                     "--label-name", "1=tumour", "--out",
                                                     str(folder / f"{case}_mask_{repeat}")]))
                times["marks"].append(timed(common + ["--marks", str(marks), "--out",
                                                      str(folder / f"{case}_marks_{repeat}")]))
            mask, marked = (statistics.median(times[k]) for k in ("mask", "marks"))
            print(f"{case} (--features {args.features}, {args.repeats} runs each): manual mask {mask:.2f} s, "
                  f"--marks {marked:.2f} s, ratio {marked / mask:.2f} (target <= 2.5)")


if __name__ == "__main__":
    main()
