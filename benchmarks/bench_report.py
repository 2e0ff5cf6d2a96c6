"""Benchmark: tumour-board figures per patient once the features exist (target: < 2 s per patient).

    .venv/bin/python benchmarks/bench_report.py [--cache DIR] [--patients 6] [--pdf]

Two run folders are scored first (not timed): (1) N sarcoma CTs of ../shared/data/sts-ct, one lesion each;
(2) a full-size 512 x 512 x 61 chest CT with 10 lesions (pyradiomics' lung2 data with nine soft-tissue spheres
added, built by bench_multilesion.py's helpers). Then, per patient and time point, it times reading the CT and
the coloured .seg.nrrd (``tumour_board.load_case``) and drawing + writing the PNG (``tumour_board.write_board``),
and prints each time and the worst. Timings on a shared machine are noisy; run it twice.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import SimpleITK as sitk

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "CTTime"))

from bench_multilesion import SHARED_STS, lung_data, ten_lesions  # noqa: E402
from CTTimeLib.core.resources import DEMO_REFERENCE  # noqa: E402
from CTTimeLib.figures import tumour_board  # noqa: E402
from CTTimeLib.run import pipeline  # noqa: E402


def time_boards(run_dir, pdf):
    lesions = tumour_board.read_table(run_dir / "lesions.csv", "lesions table")
    patients = tumour_board.read_table(run_dir / "patients.csv", "patients table")
    times = []
    for (patient, timepoint), rows in lesions.groupby(["patient_id", "timepoint"], sort=False):
        start = time.perf_counter()
        image, masks, reason = tumour_board.load_case(run_dir, rows)
        loaded = time.perf_counter()
        tumour_board.write_board(run_dir, patient, timepoint, lesions, patients, image, masks, pdf=pdf,
                                 image_reason=reason)
        done = time.perf_counter()
        times.append(done - start)
        print(f"  {patient} {timepoint}: {len(rows)} lesion(s), image {image.GetSize() if image else None}: "
              f"load {loaded - start:.2f} s + draw/write {done - loaded:.2f} s = {done - start:.2f} s")
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "cttime-bench",
                        help="folder for the lung2 data (default ~/.cache/cttime-bench)")
    parser.add_argument("--patients", type=int, default=6, help="sarcoma patients to draw (default 6)")
    parser.add_argument("--pdf", action="store_true", help="also write PDFs")
    args = parser.parse_args()
    options = pipeline.Options(standardize=str(DEMO_REFERENCE))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folders = sorted(p for p in SHARED_STS.iterdir() if (p / "CT_image.nii.gz").exists())[:args.patients]
        cases = [pipeline.Case(f.name, "BS", str(f / "CT_image.nii.gz"), str(f / "CT_mask.nii.gz")) for f in folders]
        pipeline.run(cases, tmp / "sts", options)
        image_path, label_path = lung_data(args.cache, "lung2")
        labelmap = ten_lesions(sitk.ReadImage(str(image_path)), sitk.ReadImage(str(label_path)))
        sitk.WriteImage(labelmap, str(tmp / "lung2_10.nrrd"))
        pipeline.run([pipeline.Case("LUNG2", "BS", str(image_path), str(tmp / "lung2_10.nrrd"))], tmp / "lung", options)
        print(f"Sarcoma CTs ({len(cases)} patients, one lesion each):")
        times = time_boards(tmp / "sts", args.pdf)
        print("Full-size chest CT with 10 lesions:")
        times += time_boards(tmp / "lung", args.pdf)
    print(f"Worst {max(times):.2f} s per patient and time point, mean {sum(times) / len(times):.2f} s "
          f"(target < 2 s).")


if __name__ == "__main__":
    main()
