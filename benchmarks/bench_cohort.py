"""Cohort throughput: lesions per second with 1, 2 and N local workers, and the speed-up of a rerun (resume).

    .venv/bin/python benchmarks/bench_cohort.py [--data ../shared/data/sts-ct] [--limit K] [--workers 1 2 4]

Every study folder of --data holding CT_image.nii.gz and CT_mask.nii.gz is one case. Throughput runs write no
segmentation files and use no cache (pure extraction + scoring); the resume figures are a full `cttime cohort`
run (segmentations included) into an empty folder, then the same run again, which reuses out/cache. Checks that
every run's lesions.csv is identical. Figures depend on the machine and on what else runs on it.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "CTTime"))

from CTTimeLib.run import pipeline  # noqa: E402


def cases_in(folder, limit=None):
    studies = sorted(p for p in Path(folder).iterdir() if (p / "CT_image.nii.gz").is_file()
                     and (p / "CT_mask.nii.gz").is_file())
    return [pipeline.Case(p.name, "BS", str(p / "CT_image.nii.gz"), str(p / "CT_mask.nii.gz"))
            for p in studies[:limit]]


def timed(cases, out, **options):
    start = time.perf_counter()
    result = pipeline.run(cases, out, pipeline.Options(**options))
    return time.perf_counter() - start, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "sts-ct"))
    parser.add_argument("--limit", type=int, help="only the first K studies")
    parser.add_argument("--workers", type=int, nargs="+", default=sorted({1, 2, os.cpu_count() or 1}))
    args = parser.parse_args(argv)
    cases = cases_in(args.data, args.limit)
    print(f"{len(cases)} studies from {args.data}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        tables = []
        for workers in args.workers:
            seconds, result = timed(cases, folder / f"w{workers}", workers=workers, cache=False,
                                    write_segmentations=False)
            tables.append((folder / f"w{workers}" / "lesions.csv").read_bytes())
            print(f"workers {workers:>2}: {len(result.lesions)} lesions in {seconds:6.1f} s = "
                  f"{len(result.lesions) / seconds:5.2f} lesions/s")
        workers = max(args.workers)
        cold, _ = timed(cases, folder / "resume", workers=workers)
        warm, result = timed(cases, folder / "resume", workers=workers)
        print(f"full run, {workers} workers, empty output folder: {cold:6.1f} s; rerun (all from cache): "
              f"{warm:5.1f} s = {cold / warm:.1f}x faster ({result.summary['studies_from_cache']} studies from cache)")
        identical = all(table == tables[0] for table in tables)
        print("lesions.csv identical for every worker count:", identical)
        return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
